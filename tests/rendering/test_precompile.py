"""Tests of transactional_mail.rendering.precompile: CSS inlined once per revision pair.

The proof that CSS inlined once per revision gives the same HTML as
inlining every rendered email runs over the corpus in ``tests/rendering_corpus``.

How the two HTML documents are compared (:func:`dom`): both are parsed with lxml's HTML
parser and compared node by node: the doctype, every element's tag, its attributes (names,
values *and* order), its text and tail (whitespace included), and every comment. Only
differences that parsing erases compare equal (``test_the_comparison_is_strict``):

* how a character is written: a character reference (Django's escaping writes ``&#x27;``
  and ``&quot;``) or the character itself (premailer's serialiser writes ``'`` and
  ``"``), and single or double quotes around an attribute value;
* CR and CRLF line ends inside context values: premailer's parse already turned them
  into LF, the precompiled template outputs them as given, and every HTML parser (a mail
  client's included) reads them as LF.

Byte-identical output is not possible without a per-email parse, which is the cost the
cache exists to avoid. Many corpus cases are byte-identical anyway.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from lxml import etree

from tests.rendering.helpers import CORPUS, dom, layout, render, template
from transactional_mail.rendering import render_email
from transactional_mail.rendering.compiled import _compiled
from transactional_mail.rendering.inlining import inline_css
from transactional_mail.rendering.layout import _render_layout
from transactional_mail.rendering.links import neutralize_urls
from transactional_mail.rendering.precompile import _libxml2_uri_escape

pytestmark = pytest.mark.usefixtures("pure")


def test_uri_escaping_matches_libxml2():
    """_libxml2_uri_escape gives what parsing and serialising with lxml gives."""
    rng = random.Random(1)
    alphabet = [chr(c) for c in range(1, 128)] + list("éü€😀\u00a0\u2028\r\n\t ") + ["\r\n"]
    for _ in range(400):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        escaped = value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
        html = f'<a href="{escaped}" name="{escaped}">x</a>'
        out = etree.tostring(etree.fromstring(html, etree.HTMLParser()), method="html").decode()
        expected = etree.fromstring(out, etree.HTMLParser()).find(".//a")
        ours = _libxml2_uri_escape(escaped)
        assert etree.fromstring(f'<a href="{ours}">x</a>', etree.HTMLParser()).find(".//a").get(
            "href"
        ) == expected.get("href"), repr(value)


_CORPUS = json.loads((CORPUS / "cases.json").read_text())


def _corpus_layout(name: str | None, pk: int):
    if name is None:
        return None
    spec = _CORPUS["layouts"][name]
    css = (CORPUS / spec["css"]).read_text() if spec["css"] else ""
    return layout(html=(CORPUS / spec["html"]).read_text(), css=css, pk=pk, **spec["brand"])


def _corpus_template(case: dict, pk: int):
    source = (CORPUS / "templates" / case.get("template", f"{case['name']}.html")).read_text()
    return template(source, subject=case["subject"], pk=pk)


def render_then_inline(tpl, lay, context) -> str:
    """The slow reference: render the template, put it in its layout, inline the CSS,
    neutralise the URL attributes that could run script (as render_email does)."""
    body = render(tpl.html, context)
    if lay is not None:
        before, after = _render_layout(lay)
        body = before + body + after
    return neutralize_urls(inline_css(body) if "<style" in body.lower() else body)


def _strategy(tpl, lay) -> str:
    compiled = _compiled(tpl, lay)
    if compiled.inline_per_email:
        return "per_email"
    styled = "<style" in tpl.html.lower() or (lay is not None and lay.css.strip())
    return "precompiled" if styled else "not_inlined"


_CASES = [pytest.param(case, index, id=case["name"]) for index, case in enumerate(_CORPUS["cases"])]


def test_corpus_is_large_and_mostly_precompiled():
    templates = {case.get("template", case["name"]) for case in _CORPUS["cases"]}
    assert len(templates) >= 12
    precompiled = [c for c in _CORPUS["cases"] if c["strategy"] == "precompiled"]
    assert len(precompiled) >= 10


@pytest.mark.parametrize(("case", "index"), _CASES)
def test_inline_once_then_render_equals_render_then_inline(case, index):
    """For every corpus template and context, the cached path gives the same document."""
    tpl = _corpus_template(case, pk=index + 1)
    lay = _corpus_layout(case["layout"], pk=100 + index)
    assert _strategy(tpl, lay) == case["strategy"]
    if case["strategy"] == "per_email":
        assert case["reason"] in _compiled(tpl, lay).reason
    for context in case["contexts"]:
        cached = render_email(tpl, lay, context).html
        assert dom(cached) == dom(render_then_inline(tpl, lay, context))


NASTY = [
    "<b>bold</b>",
    "a & b",
    "&copy=1",
    "&amp;",
    "\"'",
    " leading",
    "trailing ",
    "line\r\nbreak",
    "cr\ronly",
    "tab\tchar",
    "é ü 日本 😀",
    "",
    "javascript:alert(1)",
    "100%",
    "{{ x }}",
    "{% debug %}",
    "-->",
    "<!--",
    "\u2028",
    "a\x0cb",
    "\x01",
    "https://x.test/?a=1&b=2 c#d",
    "</td></tr></table>",
    "<style>p{color:red}</style>",
]


def _mutate(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        return {key: _mutate(item, rng) for key, item in value.items()}
    if isinstance(value, list):
        return [_mutate(item, rng) for item in value]
    if isinstance(value, str) and rng.random() < 0.6:
        return rng.choice(NASTY) + (value if rng.random() < 0.5 else "")
    return value


@pytest.mark.parametrize(
    ("case", "index"), [p for p in _CASES if p.values[0]["strategy"] == "precompiled"]
)
def test_inline_once_holds_for_hostile_context_values(case, index):
    """Random hostile strings in every context value keep the two paths equal."""
    rng = random.Random(index)
    tpl = _corpus_template(case, pk=index + 1)
    lay = _corpus_layout(case["layout"], pk=100 + index)
    for context in case["contexts"]:
        for _ in range(8):
            hostile = _mutate(context, rng)
            cached = render_email(tpl, lay, hostile).html
            assert dom(cached) == dom(render_then_inline(tpl, lay, hostile)), hostile


def test_the_comparison_is_strict():
    """dom() tolerates only character-reference spelling and CR, not real differences."""
    assert dom('<p title="a\'b">x&quot;y</p>') == dom("<p title='a&#x27;b'>x\"y</p>")
    assert dom("<p>a\r\nb</p>") == dom("<p>a\nb</p>")
    assert dom("<p>a b</p>") != dom("<p>a  b</p>")
    assert dom('<a href="a b">x</a>') != dom('<a href="a%20b">x</a>')
    assert dom('<p class="a" id="b">x</p>') != dom('<p id="b" class="a">x</p>')
    assert dom("<p>x</p>") != dom("<p>x</p><!--c-->")


@pytest.mark.parametrize(
    ("html", "css", "reason"),
    [
        ('<p class="{{ c }}">x</p>', ".red { color: red }", "depends on class"),
        ('<p id="p{{ n }}">x</p>', "#p1 { color: red }", "depends on id"),
        ('<a href="{{ u }}">x</a>', 'a[href^="https"] { color: red }', "depends on href"),
        (
            "<table>{% for r in rows %}<tr><td>{{ r }}</td></tr>{% endfor %}</table>",
            "tr:first-child td { color: red } td:last-child { color: blue }",
            "structural selector",
        ),
        ("{% if x %}<p>{% endif %}x{% if x %}</p>{% endif %}", "p { color: red }", "whole"),
        ("<p>{{ m|linebreaksbr }}</p>", "br { display: none }", "made by a filter"),
        ("<p>{{ m|urlize }}</p>", ".x, a { color: red }", "made by a filter"),
        ('<p {% if x %}class="a"{% endif %}>x</p>', "p { color: red }", "inside an HTML tag"),
        ("<p>&{{ x }}</p>", "p { color: red }", "bare '&'"),
        ('<p style="color: {{ c }}">x</p>', "p { margin: 0 }", "style attribute"),
        ("<p>{{ x|default:'<b>' }}</p>", "p { margin: 0 }", "may output HTML"),
        ("{% if x %}<style>p { color: red }</style>{% endif %}<p>x</p>", "", "<style>"),
        ("<p>{% filter upper %}<b>x</b>{% endfilter %}</p>", "b { color: red }", "{% filter %}"),
    ],
)
def test_templates_that_cannot_be_precompiled_fall_back_to_per_email(html, css, reason):
    """Where inlining ahead could differ, each email is inlined after rendering instead."""
    tpl, lay = template(html), layout(css=css) if css else None
    if lay is None:
        tpl.html = f"<html><head></head><body>{html}</body></html>"
    compiled = _compiled(tpl, lay)
    assert compiled.inline_per_email
    assert reason in compiled.reason
    for context in (
        {"c": "red", "n": 1, "u": "https://x", "rows": [1, 2, 3], "x": True, "m": "a\nb x.test"},
        {"c": "blue", "n": 2, "u": "http://x", "rows": [], "x": False, "m": "www.x.test"},
    ):
        assert dom(render_email(tpl, lay, context).html) == dom(
            render_then_inline(tpl, lay, context)
        )


def test_style_attribute_with_a_tag_is_fine_where_no_rule_matches():
    tpl = template('<span style="color: {{ c }}">x</span><p>y</p>')
    lay = layout(css="p { margin: 0 }")
    assert not _compiled(tpl, lay).inline_per_email
    html = render_email(tpl, lay, {"c": "#FF0000"}).html
    assert '<span style="color: #FF0000">x</span><p style="margin:0">y</p>' in html
