"""The circuit grammar: ``4c:447 = 0.8*4b:373 + 4b:237 - 4b:12``. Small and strict.

    expression := reference "=" terms
    terms      := [sign] term (sign term)*
    term       := [number "*"] reference
    sign       := "+" | "-"

References are whatever ``neurons.references`` accepts (``4b:373``, ``mixed4b:373``,
``inceptionv1/4b:373``); they are read and looked up there, not here. Every error names
what is wrong and where (a 1-based column), and the first error wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from neurons import references
from neurons.models import Model, Neuron
from neurons.references import BadReference, NeuronRef

__all__ = ["Circuit", "GrammarError", "Term", "circuit_parse", "circuit_read", "format_coefficient"]

MAX_LENGTH = 2000
MAX_TERMS = 64
EXAMPLE = "4c:447 = 4b:373 + 4b:237"
NUMBER_RE = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")  # ASCII digits only
SPACE_RE = re.compile(r"\s+")
# A layer and its ':' where no reference could be read: the error is in what follows.
BEGUN_REF_RE = re.compile(r"(?:[a-z0-9][a-z0-9_-]*/)?(?P<layer>[A-Za-z0-9_.]+)(\s*):(\s*)")
SYMBOLS = "=+-*"


class GrammarError(ValueError):
    """What is wrong with an expression, and the column (1-based) where it is."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column

    def __str__(self) -> str:
        return f"column {self.column}: {self.message}"


@dataclass(frozen=True)
class Token:
    kind: str  # "ref", "number", one of SYMBOLS, or "end"
    text: str
    column: int


@dataclass(frozen=True)
class ParsedTerm:
    """A term as written: syntax only, nothing looked up."""

    ref: NeuronRef
    coefficient: float
    column: int  # of the reference
    coefficient_column: int | None = None


@dataclass(frozen=True)
class ParsedExpression:
    target: NeuronRef
    target_column: int
    terms: tuple[ParsedTerm, ...]


@dataclass(frozen=True)
class Term:
    neuron: Neuron
    coefficient: float
    column: int


@dataclass(frozen=True)
class Circuit:
    """A resolved expression: the target neuron and its components, in the order written."""

    target: Neuron
    terms: tuple[Term, ...]

    @property
    def canonical(self) -> str:
        """Short references of the target's model, signs spelled out: ``4c:447 = 4b:373 - 4b:1``."""
        parts: list[str] = []
        for position, term in enumerate(self.terms):
            magnitude = format_coefficient(abs(term.coefficient))
            factor = "" if magnitude == "1" else f"{magnitude}*"
            negative = term.coefficient < 0
            if position == 0:
                parts.append(f"{'-' if negative else ''}{factor}{term.neuron.short_ref}")
            else:
                parts.append(f"{'-' if negative else '+'} {factor}{term.neuron.short_ref}")
        return f"{self.target.short_ref} = {' '.join(parts)}"


# What a coefficient may be: a plain decimal (no exponent) with at most COEFFICIENT_DECIMALS
# digits after the point, from 10^-COEFFICIENT_DECIMALS to COEFFICIENT_MAX. Every such
# number is stored as a float and written back (format_coefficient) as the same decimal,
# which reads again to the same float.
COEFFICIENT_DECIMALS = 6
COEFFICIENT_MAX = 10_000


def format_coefficient(value: float) -> str:
    text = f"{float(value):.{COEFFICIENT_DECIMALS}f}".rstrip("0")
    return text.removesuffix(".")


def _coefficient(token: Token) -> float:
    """A coefficient's value, or a GrammarError at its column saying what is allowed."""
    whole, _, decimals = token.text.partition(".")
    allowed = (
        f"a coefficient is a decimal from 0.{'0' * (COEFFICIENT_DECIMALS - 1)}1 to "
        f"{COEFFICIENT_MAX} with at most {COEFFICIENT_DECIMALS} decimals"
    )
    if len(decimals) > COEFFICIENT_DECIMALS or len(whole.lstrip("0")) > len(str(COEFFICIENT_MAX)):
        raise GrammarError(f"{token.text} is not allowed: {allowed}", token.column)
    value = float(token.text)
    if value == 0:
        raise GrammarError("a coefficient of 0 adds nothing; remove the term", token.column)
    if value > COEFFICIENT_MAX:
        raise GrammarError(f"{token.text} is too large: {allowed}", token.column)
    return value


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        space = SPACE_RE.match(text, position)
        if space:
            position = space.end()
            continue
        column = position + 1
        # A reference first: "4b:373" would otherwise read as the number 4.
        ref = references.REF_RE.match(text, position)
        if ref:
            tokens.append(Token("ref", ref.group(), column))
            position = ref.end()
            continue
        number = NUMBER_RE.match(text, position)
        if number:
            tokens.append(Token("number", number.group(), column))
            position = number.end()
            continue
        begun = BEGUN_REF_RE.match(text, position)
        if begun:
            _reference_begun(text, begun)
        char = text[position]
        if char in SYMBOLS:
            tokens.append(Token(char, char, column))
            position += 1
            continue
        raise GrammarError(f"unexpected character {char!r}", column)
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _reference_begun(text: str, begun: re.Match[str]) -> None:
    """Raise what is wrong with a reference that starts well and is not one."""
    for space in (2, 3):
        if begun.group(space):
            raise GrammarError(
                "a neuron reference has no spaces around ':'", begun.start(space) + 1
            )
    after = begun.end()
    rest = text[after:]
    if len(rest) - len(rest.lstrip("0123456789")) > 9:
        raise GrammarError("a channel index has at most 9 digits", after + 1)
    found = repr(text[after]) if after < len(text) else "the end"
    raise GrammarError(
        f"expected a channel index (digits 0-9) after '{begun.group('layer')}:', found {found}",
        after + 1,
    )


def _describe(token: Token) -> str:
    return "the end of the expression" if token.kind == "end" else repr(token.text)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> Token:
        return self.tokens[self.position]

    def take(self) -> Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def reference(self, token: Token, expected: str) -> NeuronRef:
        if token.kind != "ref":
            raise GrammarError(f"expected {expected}, found {_describe(token)}", token.column)
        return references.parse(token.text)

    def expression(self) -> ParsedExpression:
        first = self.take()
        if first.kind == "end":
            raise GrammarError(f"the expression is empty; write it as {EXAMPLE}", 1)
        target = self.reference(first, f"the target neuron first (as in {EXAMPLE})")
        equals = self.take()
        if equals.kind != "=":
            raise GrammarError(
                f"expected '=' after the target, found {_describe(equals)}", equals.column
            )
        if self.peek().kind == "end":
            raise GrammarError("expected at least one component after '='", self.peek().column)
        terms = [self.term(sign_required=False)]
        while self.peek().kind != "end":
            if self.peek().kind == "=":
                raise GrammarError("only one '=' is allowed", self.peek().column)
            if len(terms) >= MAX_TERMS:
                raise GrammarError(f"at most {MAX_TERMS} components", self.peek().column)
            terms.append(self.term(sign_required=True))
        return ParsedExpression(target, first.column, tuple(terms))

    def term(self, *, sign_required: bool) -> ParsedTerm:
        sign = 1.0
        token = self.take()
        if token.kind in ("+", "-"):
            sign = -1.0 if token.kind == "-" else 1.0
            token = self.take()
        elif sign_required:
            raise GrammarError(
                f"expected '+' or '-' between terms, found {_describe(token)}", token.column
            )
        if token.kind == "number":
            magnitude = _coefficient(token)
            star = self.take()
            if star.kind != "*":
                raise GrammarError(
                    f"expected '*' after the coefficient {token.text}, found {_describe(star)}",
                    star.column,
                )
            ref_token = self.take()
            ref = self.reference(ref_token, f"a neuron reference after '{token.text}*'")
            return ParsedTerm(ref, sign * magnitude, ref_token.column, token.column)
        ref = self.reference(token, "a neuron reference or a coefficient")
        return ParsedTerm(ref, sign, token.column)


def circuit_parse(text: str) -> ParsedExpression:
    """The syntax of an expression; no database access."""
    if len(text) > MAX_LENGTH:
        raise GrammarError(f"the expression is longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    return _Parser(tokenize(text)).expression()


def _resolve(ref: NeuronRef, model: Model, column: int) -> Neuron:
    if ref.model is not None and ref.model != model.slug:
        raise GrammarError(
            f"{ref} is in model {ref.model!r}, but this circuit is in {model.slug!r}; "
            "every term must be in the target's model",
            column,
        )
    try:
        # The model is already known (its layers prefetched): look up layer and index only.
        return references.resolve(NeuronRef(None, ref.layer, ref.index), model=model)
    except BadReference as exc:
        raise GrammarError(str(exc), column) from None


def circuit_read(
    text: str, *, target: Neuron | None = None, model: Model | str | None = None
) -> Circuit:
    """Parse and resolve an expression. ``target`` is the neuron the claim is about (its page's
    neuron); ``model`` is used when neither ``target`` nor the expression names one.

    Raises GrammarError: syntax, unknown model or layer, index out of range, a component in a
    layer not below the target's, a duplicated term, a term in another model, or a target
    that is not ``target``.
    """
    parsed = circuit_parse(text)
    column = parsed.target_column
    if target is not None:
        slug = target.layer.model.slug
    elif parsed.target.model is not None:
        slug = parsed.target.model
    elif model is not None:
        slug = model.slug if isinstance(model, Model) else model
    else:
        raise GrammarError(references.no_model(parsed.target), column)
    found_model = Model.objects.filter(slug=slug).prefetch_related("layers").first()
    if found_model is None:
        raise GrammarError(f"unknown model {slug!r}", column)

    target_neuron = _resolve(parsed.target, found_model, column)
    if target is not None and target_neuron.pk != target.pk:
        raise GrammarError(
            f"the expression's target is {target_neuron.short_ref}, "
            f"but this claim is about {target.short_ref}",
            column,
        )
    seen: dict[int, int] = {}
    terms: list[Term] = []
    for parsed_term in parsed.terms:
        neuron = _resolve(parsed_term.ref, found_model, parsed_term.column)
        if neuron.layer.position >= target_neuron.layer.position:
            raise GrammarError(
                f"{neuron.short_ref} is in {neuron.layer.name}, which is not below the "
                f"target's layer {target_neuron.layer.name}; components come from earlier layers",
                parsed_term.column,
            )
        if neuron.pk in seen:
            raise GrammarError(
                f"{neuron.short_ref} appears twice (first at column {seen[neuron.pk]}); "
                "write it once with the sum of its coefficients",
                parsed_term.column,
            )
        seen[neuron.pk] = parsed_term.column
        terms.append(Term(neuron, parsed_term.coefficient, parsed_term.column))
    return Circuit(target_neuron, tuple(terms))
