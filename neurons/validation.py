"""Checks of what people type, shared by every app (``neurons`` is the lowest of them)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import TypeVar

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.paginator import Page, Paginator
from django.http import QueryDict

V = TypeVar("V", bound=Callable[..., object])

# Unicode's 66 non-characters, "not for interchange": U+FDD0-U+FDEF and the last two code
# points of each of the 17 planes (U+FFFE, U+FFFF, U+1FFFE, ... U+10FFFF).
NONCHARACTERS = "\ufdd0-\ufdef" + "".join(
    chr(plane << 16 | last) for plane in range(17) for last in (0xFFFE, 0xFFFF)
)
# Control characters (C0 but tab and newlines, DEL, C1), lone surrogates (JSON's "\ud800",
# which no database stores) and the non-characters: nothing a person types. XML (the feeds,
# an export read by another tool) cannot carry C0, surrogates, U+FFFE or U+FFFF at all. Also
# the bidi overrides U+202D and U+202E, which reverse how the text after them reads on every
# page that shows it; the embeddings and marks that right-to-left text carries stay allowed.
CONTROL_RE = re.compile(
    f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202d\u202e\ud800-\udfff{NONCHARACTERS}]"
)

# No id, page or revision has more digits, and int() would read " 1", "1_0" and "²" (and
# refuse more than 4,300 digits with an error of its own).
DIGITS_RE = re.compile(r"[0-9]{1,18}")


# The bidi embeddings (U+202A, U+202B) and isolates (U+2066-U+2068), each with what closes it.
BIDI_CLOSERS = {"\u202a": "\u202c", "\u202b": "\u202c"} | dict.fromkeys(
    "\u2066\u2067\u2068", "\u2069"
)


def bidi_left_open(value: str) -> list[str]:
    """The bidi embeddings and isolates that ``value`` opens and never closes, outermost
    first. On a page, one left open would reorder the text that follows it (the author's
    name, the next claim). A closing isolate (U+2069) also closes the embeddings within it."""
    opened: list[str] = []
    for char in value:
        if char in BIDI_CLOSERS:
            opened.append(char)
        elif char == "\u202c" and opened and opened[-1] in "\u202a\u202b":
            opened.pop()
        elif char == "\u2069" and any(c in "\u2066\u2067\u2068" for c in opened):
            while opened.pop() not in "\u2066\u2067\u2068":
                pass
    return opened


def bidi_closed(value: str) -> str:
    """``value`` with what it leaves open closed at its end (text stored before the check)."""
    return value + "".join(BIDI_CLOSERS[c] for c in reversed(bidi_left_open(value)))


# Combining marks stacked on one character: scripts need a few (Vietnamese two, Tibetan
# stacks up to about six); more is "Zalgo" text drawn over the lines above and below it.
MARKS_STACKED_MAX = 8


def _stacked_marks(value: str) -> int:
    """The most combining marks (Mn, Me) in a row in ``value``."""
    most = run = 0
    for char in value:
        run = run + 1 if unicodedata.category(char) in ("Mn", "Me") else 0
        most = max(most, run)
    return most


def control_character(value: str) -> str | None:
    """The first control character of ``value``, or the first bidi embedding or isolate it
    leaves open, written as an escape, or a stack of more combining marks than any script
    uses; else None."""
    if (found := CONTROL_RE.search(value)) is not None:
        return repr(found.group())[1:-1]
    if opened := bidi_left_open(value):
        return f"{repr(opened[0])[1:-1]} left open"
    if (stacked := _stacked_marks(value)) > MARKS_STACKED_MAX:
        return f"{stacked} combining marks on one character; at most {MARKS_STACKED_MAX}"
    return None


# What breaks a line: a label, a title or a name is shown on one line (in a list of claims,
# a page's title, after "by"). Tabs and U+2028/U+2029 are line and paragraph separators.
LINE_BREAK_RE = re.compile("[\t\n\r\u2028\u2029]")


def line_break(value: str) -> str | None:
    """The first line break or tab of ``value`` as an escape, else None."""
    found = LINE_BREAK_RE.search(value)
    return None if found is None else repr(found.group())[1:-1]


def refuse_line_breaks(value: str) -> None:
    """A form field's validator, for text shown on one line."""
    if (found := line_break(value)) is not None:
        raise ValidationError(f"must be one line (found {found})")


def one_line(value: str) -> str:
    """``value`` on one line: its line breaks and tabs as spaces (text stored before they
    were refused, on import)."""
    return LINE_BREAK_RE.sub(" ", value).strip()


def refuse_control_characters(value: str) -> None:
    """A form field's validator."""
    if (control := control_character(value)) is not None:
        raise ValidationError(f"must not contain control characters (found {control})")


def visible(value: str) -> bool:
    """Whether ``value`` shows anything: a zero-width space alone does not, nor combining
    marks with no character to sit on."""
    return any(unicodedata.category(c)[0] not in "ZCM" for c in value)


def refuse_invisible(value: str) -> None:
    """A form field's validator: text that shows nothing (a zero-width space) is no text."""
    if value and not visible(value):
        raise ValidationError("shows nothing: it holds only invisible characters")


REPLACEMENT = "\ufffd"  # what Django decodes a form's or query's invalid UTF-8 bytes to
NOT_UTF8 = "not UTF-8 text (a byte such as %FF, or an invalid sequence of them)"


def undecodable_field(data: QueryDict, files: Mapping[str, File] | None = None) -> str | None:
    """The first field of a query or a form (or of its files, by their names) that was not
    UTF-8 text: Django's parsers replace such bytes (``%FF``, a surrogate's ``%ED%A0%80``,
    an overlong ``%C0%80``) with U+FFFD, which is then refused, not stored in place of what
    the sender meant."""
    names = [(field, [upload.name or ""]) for field, upload in (files or {}).items()]
    for name, values in [*data.lists(), *names]:
        if REPLACEMENT in name or any(REPLACEMENT in value for value in values):
            return name.replace(REPLACEMENT, "?")
    return None


def repeatable(*names: str) -> Callable[[V], V]:
    """Mark a view that reads a list of these query parameters (``?id=3&id=5``) or form
    fields: others given twice are refused before any view
    (``microscope.middleware.QueryCheck``)."""

    def mark(view: V) -> V:
        view.repeatable = frozenset(names)  # type: ignore[attr-defined]
        return view

    return mark


def repeated_allowed(view: Callable[..., object]) -> frozenset[str]:
    """The parameters ``view`` (a function, or a class's ``as_view()``) reads lists of."""
    found = getattr(view, "repeatable", None)
    if found is None:
        found = getattr(getattr(view, "view_class", None), "repeatable", None)
    return found or frozenset()


def page_of(paginator: Paginator, text: str | None) -> Page:
    """The page ``?page=`` asks for (none: the first), or a ValueError saying which pages
    there are: ``abc``, ``0``, ``-1``, ``1.0``, an Arabic-Indic 5 and a page past the last
    are refused, not read as some other page."""
    if text is None:
        return paginator.page(1)
    number = whole_number(text)
    if number is None or not 1 <= number <= paginator.num_pages:
        shown = text[:20]
        raise ValueError(f"page: {shown!r} is not a page here (1 to {paginator.num_pages})")
    return paginator.page(number)


def whole_number(text: str | None) -> int | None:
    """``text`` as a whole number if it is 1 to 18 ASCII digits, else None."""
    if text is None or DIGITS_RE.fullmatch(text) is None:
        return None
    return int(text)
