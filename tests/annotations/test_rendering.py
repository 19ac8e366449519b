from __future__ import annotations

import pytest

from annotations.rendering import markdown_render, markdown_render_many
from neurons.models import Model


@pytest.mark.parametrize(
    ("hostile", "forbidden"),
    [
        ("<script>alert('x')</script>hello", ["<script", "alert("]),
        ("[click](javascript:alert(1))", ["javascript:"]),
        ("[click](JaVaScRiPt:alert(1))", ["javascript:", "JaVaScRiPt"]),
        ('<a href="javascript:alert(1)">x</a>', ["javascript:"]),
        ('<img src="x" onerror="alert(1)">', ["onerror", "alert("]),
        ("![x](javascript:alert(1))", ["javascript:"]),
        ('<iframe src="https://evil.example"></iframe>', ["<iframe"]),
        ('<div style="position:fixed" onclick="steal()">x</div>', ["style=", "onclick", "<div"]),
        ("<svg><script>alert(1)</script></svg>", ["<svg", "<script"]),
        ('<form action="/accounts/logout/"><button>x</button></form>', ["<form", "<button"]),
        ("[x](data:text/html;base64,PHNjcmlwdD4=)", ["data:"]),
        ("<style>body{display:none}</style>", ["<style", "display:none"]),
        (
            '<a href="https://ok.example" class="notice" target="_top">ok</a>',
            ['class="notice', "_top"],
        ),
    ],
)
def test_hostile_markdown_is_neutralized(hostile: str, forbidden: list[str]) -> None:
    html = markdown_render(hostile)
    for bad in forbidden:
        assert bad not in html, html


def test_ordinary_markdown_still_renders() -> None:
    html = markdown_render(
        "**bold** and `code`\n\n- one\n- two\n\n[paper](https://distill.pub/2020/circuits/)"
    )
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert "<li>one</li>" in html
    assert 'href="https://distill.pub/2020/circuits/"' in html
    assert 'rel="nofollow noopener noreferrer"' in html


def test_raw_html_text_is_escaped_not_run() -> None:
    html = markdown_render("if a < b && c > d then <b>bold</b>")
    assert "&lt; b &amp;&amp; c &gt; d" in html
    assert "<b>bold</b>" in html  # on the allowlist: harmless


def test_neuron_references_become_links_to_their_canonical_pages(inceptionv1: Model) -> None:
    html = markdown_render(
        "Windows (4b:373) and wheels (inceptionv1/mixed4b:237); not 4b:9999 or 4z:1, "
        "nor `4b:1` in code, nor https://example.com:8080/4b:2.",
        model=inceptionv1,
    )
    assert (
        '<a class="neuron-ref" href="/models/inceptionv1/mixed4b/373/" '
        'title="inceptionv1/4b:373" rel="nofollow noopener noreferrer">4b:373</a>'
    ) in html
    assert 'href="/models/inceptionv1/mixed4b/237/"' in html
    assert ">inceptionv1/mixed4b:237</a>" in html
    assert "4b:9999" in html and "/mixed4b/9999/" not in html
    assert "<code>4b:1</code>" in html
    assert html.count('class="neuron-ref"') == 2


def test_references_across_many_texts_are_looked_up_together(
    inceptionv1: Model, django_assert_max_num_queries
) -> None:
    texts = [f"see 4b:{index} and 4c:{index}" for index in range(40)]
    with django_assert_max_num_queries(4):
        rendered = markdown_render_many(texts, model=inceptionv1)
    assert all(html.count('class="neuron-ref"') == 2 for html in rendered)
    assert "/models/inceptionv1/mixed4c/39/" in rendered[-1]


def test_bare_references_without_a_model_stay_text(inceptionv1: Model) -> None:
    html = markdown_render("4b:373 and inceptionv1/4b:1")
    assert html.count('class="neuron-ref"') == 1


@pytest.mark.parametrize(
    ("text", "forbidden"),
    [
        ("![x](https://tracker.example/pixel.png)", ["tracker.example"]),
        ('<img src="https://tracker.example/p.png">', ["tracker.example"]),
        ('<img src="/media/x.png" width="100000" height="9">', ['width="100000"']),
        ("[x](//evil.example/path)", ["evil.example"]),
        ('<a href="//evil.example">x</a>', ["evil.example"]),
        ('<a href="/\\evil.example">x</a>', ["evil.example"]),
        ('<a class="neuron-ref" href="https://evil.example/">4b:373</a>', ["neuron-ref"]),
        ('<img class="thumb" src="x.png">', ['class="thumb"']),
    ],
)
def test_a_page_asks_no_other_host_for_anything_and_only_our_links_look_like_ours(
    text: str, forbidden: list[str]
) -> None:
    html = markdown_render(text)
    for bad in forbidden:
        assert bad not in html, html


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("[" * 20_000, "[" * 20_000),  # python-markdown took 62 s on this; markdown-it, 0.3
        ("![" * 10_000, "![" * 10_000),
        ("[" * 10_000 + "]" * 10_000, "[" * 10_000 + "]" * 10_000),
        ("[x](" * 5_000, "[x](" * 5_000),
        ("<a " * 6_600, "&lt;a " * 6_599),
        (">" * 20_000 + "deep\n\nafter", "after"),  # too deep: shown as text, not dropped
        ("> " * 19 + "deep\n\nafter", "after"),
        ("\n".join("    " * depth + "- x" for depth in range(200)), "- x"),
    ],
)
def test_texts_built_to_be_slow_render_as_text(text: str, shown: str) -> None:
    """Texts as long as an argument may be (20,000 characters) render in one pass, as text:
    no run of brackets or nesting can stall a page (python-markdown's quadratic cases)."""
    assert shown in markdown_render(text)


def test_tables_and_strikethrough_keep_their_alignment_and_nothing_else() -> None:
    html = markdown_render(
        "| a | b |\n|:-|-:|\n| 1 | 2 |\n\n~~gone~~\n\n"
        '<td style="text-align:left;background:url(x)">x</td>'
    )
    assert '<th style="text-align:left">a</th>' in html
    assert '<td style="text-align:right">2</td>' in html
    assert "<s>gone</s>" in html and "background" not in html
