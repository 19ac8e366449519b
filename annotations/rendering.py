"""Markdown of arguments, reviews and comments, rendered safely, with neuron links.

Markdown becomes HTML (markdown-it-py: CommonMark with tables and strikethrough, in time
linear in the text, so 20,000 ``[`` take a fraction of a second where python-markdown
took a minute), then everything not on a short allowlist is removed
(nh3): no script, no event attributes, no raw HTML that runs, links only to http(s) and
mailto. Neuron references in the text (``4b:373``, ``inceptionv1/mixed4b:373``) become links
to their canonical page, with their thumbnail where one exists (the feature visualization,
else the top dataset example's crop).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from html import escape

import nh3
from django.db.models import Q
from django.utils.html import linebreaks
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

from jobs.selectors import neuron_thumbnail_urls
from neurons import references
from neurons.models import Model, Neuron
from neurons.references import BadReference, NeuronRef
from neurons.validation import whole_number

__all__ = ["markdown_render", "markdown_render_many"]

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height", "loading"},
    "abbr": {"title"},
    "th": {"style"},
    "td": {"style"},
}
ALIGNMENTS = {f"text-align:{side}" for side in ("left", "right", "center")}  # of table cells
URL_SCHEMES = {"http", "https", "mailto"}
# Images only of ours (neuron thumbnails), and no bigger than this: a page never asks a
# third-party host for anything, and no image can stretch it.
IMAGE_PX_MAX = 64
# A reference standing alone: not inside a word, a path or a larger reference.
LINK_RE = re.compile(r"(?<![\w/:.-])" + references.REF_PATTERN + r"(?![\w:])")
RAW_A_OPEN, RAW_A_CLOSE = re.compile(r"<a[\s>]", re.I), re.compile(r"</a[\s>]", re.I)
MAX_REFS = 200


def _key(ref: NeuronRef, default: Model | None) -> tuple[str, str, int] | None:
    slug = ref.model or (default.slug if default is not None else None)
    return None if slug is None else (slug, ref.layer, ref.index)


def neurons_for_texts(
    texts: Iterable[str], *, model: Model | None
) -> dict[tuple[str, str, int], Neuron]:
    """Every neuron referenced in ``texts`` (bare references are in ``model``), in three
    queries whatever their number; references to nothing are left out.
    """
    keys: set[tuple[str, str, int]] = set()
    for text in texts:
        for match in LINK_RE.finditer(text):
            key = _key(references.parse(match.group()), model)
            if key is not None:
                keys.add(key)
            if len(keys) >= MAX_REFS:
                break
    if not keys:
        return {}
    models = {
        found.slug: found
        for found in Model.objects.filter(slug__in={key[0] for key in keys}).prefetch_related(
            "layers"
        )
    }
    wanted: dict[tuple[int, int], tuple[str, str, int]] = {}
    for slug, layer_name, index in keys:
        if slug not in models:
            continue
        try:
            layer = references.find_layer(models[slug], layer_name)
            references.check_index(layer, index)
        except BadReference:
            continue
        wanted[(layer.pk, index)] = (slug, layer_name, index)
    if not wanted:
        return {}
    condition = Q()
    for layer_id, index in wanted:
        condition |= Q(layer_id=layer_id, index=index)
    found: dict[tuple[str, str, int], Neuron] = {}
    for neuron in Neuron.objects.filter(condition).select_related("layer__model"):
        found[wanted[(neuron.layer_id, neuron.index)]] = neuron
    return found


class _Linker:
    """Turns the neuron references in a parsed text into links: a core rule of markdown-it,
    run after inline parsing, so links, code and raw HTML links are already tokens."""

    def __init__(
        self,
        neurons: dict[tuple[str, str, int], Neuron],
        thumbnails: dict[int, str],
        model: Model | None,
    ) -> None:
        self.neurons = neurons
        self.thumbnails = thumbnails
        self.model = model
        # Classes only this render knows: a hand-written <a class="neuron-ref"> is not one
        # of our links, and loses its class (it becomes "neuron-ref" once cleaned).
        nonce = secrets.token_hex(8)
        self.marks = {"a": f"neuron-ref-{nonce}", "img": f"thumb-{nonce}"}

    def __call__(self, state: StateCore) -> None:
        for block in state.tokens:
            if block.type == "inline" and block.children:
                block.children = self._linked(block.children)

    def _linked(self, tokens: list[Token]) -> list[Token]:
        out: list[Token] = []
        inside = 0  # within a link, markdown's or raw HTML's: left as it is
        for token in tokens:
            if token.type == "link_open" or (
                token.type == "html_inline" and RAW_A_OPEN.match(token.content)
            ):
                inside += 1
            elif token.type == "link_close" or (
                token.type == "html_inline" and RAW_A_CLOSE.match(token.content)
            ):
                inside = max(inside - 1, 0)
            if token.type == "text" and not inside:
                out.extend(self._split(token))
            else:
                out.append(token)
        return out

    def _split(self, token: Token) -> list[Token]:
        text, out, last = token.content, [], 0
        for match in LINK_RE.finditer(text):
            key = _key(references.parse(match.group()), self.model)
            neuron = self.neurons.get(key) if key else None
            if neuron is None:
                continue
            if match.start() > last:
                out.append(_text_token(text[last : match.start()]))
            out.extend(self._link(neuron, match.group()))
            last = match.end()
        if not out:
            return [token]
        if last < len(text):
            out.append(_text_token(text[last:]))
        return out

    def _link(self, neuron: Neuron, text: str) -> list[Token]:
        opening = Token("link_open", "a", 1)
        opening.attrs = {
            "class": self.marks["a"],
            "href": neuron.get_absolute_url(),
            "title": neuron.ref,
        }
        inner = [_text_token(text)]
        thumbnail = self.thumbnails.get(neuron.pk)
        if thumbnail:
            image = Token("html_inline", "", 0)
            image.content = (
                f'<img class="{self.marks["img"]}" src="{escape(thumbnail)}" alt="" '
                'width="24" height="24">'
            )
            inner.insert(0, image)
        return [opening, *inner, Token("link_close", "a", -1)]


def _text_token(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


def _off_site(url: str) -> bool:
    """A protocol-relative URL (``//host/x``; browsers read ``/\\host`` alike)."""
    return url.startswith(("//", "/\\", "\\"))


def _clean(html: str, linker: _Linker) -> str:
    images = set(linker.thumbnails.values())

    def attribute(element: str, name: str, value: str) -> str | None:
        if name in ("href", "src") and _off_site(value):
            return None
        if element == "img" and name == "src" and value not in images:
            return None
        if name == "style":
            return value if value in ALIGNMENTS else None
        if element == "img" and name in ("width", "height"):
            pixels = whole_number(value)
            return value if pixels is not None and pixels <= IMAGE_PX_MAX else None
        return value

    cleaned = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=attribute,
        allowed_classes={"a": {linker.marks["a"]}, "img": {linker.marks["img"]}},
        url_schemes=URL_SCHEMES,
        link_rel="nofollow noopener noreferrer",
    )
    return cleaned.replace(linker.marks["a"], "neuron-ref").replace(linker.marks["img"], "thumb")


def markdown_render_many(texts: Sequence[str], *, model: Model | None = None) -> list[SafeString]:
    """Render several texts of one page, looking their neuron references up together."""
    neurons = neurons_for_texts(texts, model=model)
    thumbnails = neuron_thumbnail_urls(neurons=neurons.values())
    linker = _Linker(neurons, thumbnails, model)
    renderer = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    renderer.validateLink = lambda url: True  # every URL reaches nh3, which decides alone
    renderer.core.ruler.push("neuron_links", linker)
    return [mark_safe(_clean(_html(renderer, text), linker)) for text in texts]  # nh3-clean


def _html(renderer: MarkdownIt, text: str) -> str:
    """The text's HTML; nested as deep as markdown-it stops (its ``maxNesting``, where it
    drops the rest of the text), the text itself, escaped."""
    tokens = renderer.parse(text)
    if any(token.level >= renderer.options["maxNesting"] - 1 for token in tokens):
        return linebreaks(text, autoescape=True)
    return renderer.renderer.render(tokens, renderer.options, {})


def markdown_render(text: str, *, model: Model | None = None) -> SafeString:
    return markdown_render_many([text], model=model)[0]
