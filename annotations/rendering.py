"""Markdown of arguments, reviews and comments, rendered safely, with neuron links.

Markdown becomes HTML (python-markdown), then everything not on a short allowlist is removed
(nh3): no script, no event attributes, no raw HTML that runs, links only to http(s) and
mailto. Neuron references in the text (``4b:373``, ``inceptionv1/mixed4b:373``) become links
to their canonical page, with their thumbnail where one exists (the feature visualization,
else the top dataset example's crop).
"""

from __future__ import annotations

import re
import secrets
import xml.etree.ElementTree as etree
from collections.abc import Iterable, Sequence

import markdown
import nh3
from django.db.models import Q
from django.utils.html import linebreaks
from django.utils.safestring import SafeString, mark_safe
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor

from jobs.selectors import neuron_thumbnail_urls
from neurons import references
from neurons.models import Model, Neuron
from neurons.references import BadReference, NeuronRef
from neurons.validation import whole_number

__all__ = ["markdown_render", "markdown_render_many"]

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "li", "ol", "p", "pre", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height", "loading"},
    "abbr": {"title"},
    "th": {"align"},
    "td": {"align"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Images only of ours (neuron thumbnails), and no bigger than this: a page never asks a
# third-party host for anything, and no image can stretch it.
IMAGE_PX_MAX = 64
# A reference standing alone: not inside a word, a path or a larger reference.
LINK_RE = re.compile(r"(?<![\w/:.-])" + references.REF_PATTERN + r"(?![\w:])")
SKIP_TAGS = {"a", "code", "pre"}
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


class _NeuronLinks(Treeprocessor):
    def __init__(self, md: markdown.Markdown, linker: _Linker) -> None:
        super().__init__(md)
        self.linker = linker

    def run(self, root: etree.Element) -> None:
        self._walk(root)

    def _walk(self, element: etree.Element) -> None:
        if element.tag in SKIP_TAGS:
            return
        for child in list(element):
            self._walk(child)
            if child.tail:
                child.tail, nodes = self._split(child.tail)
                position = list(element).index(child) + 1
                for offset, node in enumerate(nodes):
                    element.insert(position + offset, node)
        if element.text:
            element.text, nodes = self._split(element.text)
            for offset, node in enumerate(nodes):
                element.insert(offset, node)

    def _split(self, text: str) -> tuple[str, list[etree.Element]]:
        """The text before the first link, and the links, each with its following text."""
        head: str | None = None
        nodes: list[etree.Element] = []
        last = 0
        for match in LINK_RE.finditer(text):
            node = self.linker.link(match.group())
            if node is None:
                continue
            before = text[last : match.start()]
            if nodes:
                nodes[-1].tail = (nodes[-1].tail or "") + before
            else:
                head = before
            nodes.append(node)
            last = match.end()
        if not nodes:
            return text, []
        nodes[-1].tail = (nodes[-1].tail or "") + text[last:]
        return head or "", nodes


class _Linker(Extension):
    def __init__(
        self,
        neurons: dict[tuple[str, str, int], Neuron],
        thumbnails: dict[int, str],
        model: Model | None,
    ) -> None:
        super().__init__()
        self.neurons = neurons
        self.thumbnails = thumbnails
        self.model = model
        # Classes only this render knows: a hand-written <a class="neuron-ref"> is not one
        # of our links, and loses its class (it becomes "neuron-ref" once cleaned).
        nonce = secrets.token_hex(8)
        self.marks = {"a": f"neuron-ref-{nonce}", "img": f"thumb-{nonce}"}

    def extendMarkdown(self, md: markdown.Markdown) -> None:  # markdown's API
        # After inline patterns (20), so links and code are already elements; before unescape.
        md.treeprocessors.register(_NeuronLinks(md, self), "neuron_links", 5)

    def link(self, text: str) -> etree.Element | None:
        key = _key(references.parse(text), self.model)
        neuron = self.neurons.get(key) if key else None
        if neuron is None:
            return None
        anchor = etree.Element(
            "a",
            {"class": self.marks["a"], "href": neuron.get_absolute_url(), "title": neuron.ref},
        )
        thumbnail = self.thumbnails.get(neuron.pk)
        if thumbnail:
            image = etree.SubElement(
                anchor,
                "img",
                {
                    "class": self.marks["img"],
                    "src": thumbnail,
                    "alt": "",
                    "width": "24",
                    "height": "24",
                },
            )
            image.tail = text
        else:
            anchor.text = text
        return anchor


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
    renderer = markdown.Markdown(extensions=["fenced_code", "tables", "sane_lists", linker])
    rendered = []
    for text in texts:
        renderer.reset()
        try:
            html = renderer.convert(text)
        except RecursionError:  # nested deeper than python-markdown recurses: shown as text
            html = linebreaks(text, autoescape=True)
        rendered.append(mark_safe(_clean(html, linker)))  # cleaned by nh3
    return rendered


def markdown_render(text: str, *, model: Model | None = None) -> SafeString:
    return markdown_render_many([text], model=model)[0]
