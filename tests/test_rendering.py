"""Tests of transactional_mail.rendering and transactional_mail.template_engine.

Pure: no database. The proof that CSS inlined once per revision gives the same HTML as
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

import datetime
import decimal
import json
import random
import re
import socket
from dataclasses import FrozenInstanceError
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.template import Context, TemplateSyntaxError
from django.utils.safestring import mark_safe
from lxml import etree

from tests.fetch_trap import FetchTrap
from transactional_mail.exceptions import RenderError
from transactional_mail.rendering import RenderedEmail, compiled, render_email
from transactional_mail.rendering.compiled import (
    _compiled,
    clear_inline_cache,
    inline_cache_key,
    invalidate_inline_cache,
)
from transactional_mail.rendering.compose import one_line
from transactional_mail.rendering.context import FrozenDict, freeze_context
from transactional_mail.rendering.engine import get_engine
from transactional_mail.rendering.inlining import inline_css
from transactional_mail.rendering.layout import _render_layout
from transactional_mail.rendering.library import (
    ALLOWED_FILTERS,
    ALLOWED_TAGS,
    allowed_library,
    as_datetime,
)
from transactional_mail.rendering.precompile import _libxml2_uri_escape
from transactional_mail.rendering.text import html_to_text
from transactional_mail.rendering.validation import (
    validate_css_source,
    validate_html_source,
    validate_layout_source,
    validate_template_source,
)

CORPUS = Path(__file__).parent / "rendering_corpus"
_REAL_CONNECT = socket.socket.connect
_REAL_CREATE_CONNECTION = socket.create_connection


@pytest.fixture(autouse=True)
def _pure(monkeypatch):
    """Every test starts with an empty cache and without network.

    pytest-django already refuses database access to tests without the ``django_db``
    mark, so each test here also shows that rendering makes no query.
    """

    def no_network(*args, **kwargs):
        raise AssertionError("rendering tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    clear_inline_cache()
    yield
    clear_inline_cache()


def template(html: str = "", subject: str = "Hello", text: str = "", pk: int | None = 1):
    """A stand-in for a TemplateRevision."""
    return SimpleNamespace(pk=pk, subject=subject, html=html, text=text)


def layout(html: str = "<html><body>{{ content }}</body></html>", css: str = "", pk=1, **brand):
    """A stand-in for a LayoutRevision."""
    fields = dict(
        name="Acme",
        logo_url="https://cdn.example.com/logo.png",
        primary_color="#ff6600",
        background_color="#f4f4f4",
        text_color="#333333",
        footer_html="",
    )
    fields.update(brand)
    return SimpleNamespace(pk=pk, html=html, css=css, **fields)


def render(source: str, context: dict | None = None, *, autoescape: bool = True) -> str:
    return (
        get_engine()
        .from_string(source)
        .render(Context(freeze_context(context or {}), autoescape=autoescape))
    )


def dom(html: str) -> list[Any]:
    """The parsed document as a list of nodes (see the module docstring)."""
    tree = etree.fromstring(html, etree.HTMLParser()).getroottree()
    nodes: list[Any] = [tree.docinfo.doctype]
    for node in tree.getroot().iter():
        if isinstance(node.tag, str):
            nodes.append((node.tag, tuple(node.attrib.items()), node.text, node.tail))
        else:
            nodes.append(("#comment", node.text, node.tail))
    return nodes


# ======================================================================================
# The restricted engine
# ======================================================================================


def test_engine_has_only_the_allow_listed_library():
    """No default builtins, no loadable libraries, no loaders: only the allow-list."""
    engine = get_engine()
    assert engine.template_builtins == [allowed_library]
    assert engine.template_libraries == {}
    assert set(allowed_library.tags) == ALLOWED_TAGS
    assert set(allowed_library.filters) <= ALLOWED_FILTERS
    assert {"date", "as_datetime", "floatformat", "urlize"} <= set(allowed_library.filters)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{% debug %}", "{% debug %}"),
        ("{% load static %}", "{% load %}"),
        ("{% load i18n %}{% trans 'x' %}", "{% load %}"),
        ('{% include "x.html" %}', "{% include %}"),
        ('{% extends "base.html" %}', "{% extends %}"),
        ("{% block x %}{% endblock %}", "{% block %}"),
        ("{% url 'admin:index' %}", "{% url %}"),
        ("{% csrf_token %}", "{% csrf_token %}"),
        ("{% lorem %}", "{% lorem %}"),
        ("{% now 'Y' %}", "{% now %}"),
        ("{{ d|timesince }}", "|timesince"),
        ("{{ d|timeuntil }}", "|timeuntil"),
        ("{% ssi '/etc/passwd' %}", "{% ssi %}"),
        ("{{ x|safe }}", "|safe"),
        ("{{ x|safeseq|join:',' }}", "|safeseq"),
        ("{{ x|pprint }}", "|pprint"),
        ("{{ x|random }}", "|random"),
        ("{{ x|json_script:'id' }}", "|json_script"),
        ("{{ x|escapejs }}", "|escapejs"),
        ("{% filter safe %}x{% endfilter %}", "|safe"),
        ("{% if x|safe %}x{% endif %}", "|safe"),
        ("{% autoescape off %}{{ x }}{% endautoescape %}", "raw markup writes it literally"),
    ],
)
def test_forbidden_tags_and_filters_are_refused_on_save(source, expected):
    """Every tag and filter outside the allow-list is refused, naming it and the line."""
    with pytest.raises(ValidationError) as info:
        validate_template_source(f"<p>Hi</p>\n\n{source}", field_name="html")
    [message] = info.value.message_dict["html"]
    assert message.startswith("Line 3: ")
    assert expected in message
    with pytest.raises(TemplateSyntaxError):
        get_engine().from_string(source)


def test_validation_error_names_the_line_of_a_syntax_error():
    """A syntax error is reported on the line of the offending tag, keyed by field."""
    source = "<h1>Hi</h1>\n<p>\n{% if order.paid %}\npaid\n</p>"
    with pytest.raises(ValidationError) as info:
        validate_template_source(source, field_name="text")
    [message] = info.value.message_dict["text"]
    assert message.startswith("Line 3: ")
    assert "if" in message

    with pytest.raises(ValidationError) as info:
        validate_template_source("a\nb\n{{ x|nosuchfilter }}")
    assert info.value.message_dict["html"] == [
        "Line 3: the filter |nosuchfilter is not available in email templates."
    ]

    with pytest.raises(ValidationError) as info:
        validate_template_source("{{ x._private }}")
    assert "Line 1: " in info.value.message_dict["html"][0]


def test_valid_templates_pass_validation():
    """The corpus and every allow-listed tag are accepted."""
    for path in (CORPUS / "templates").glob("*.html"):
        validate_template_source(path.read_text())
    validate_template_source(
        "{{ x }}{% cycle 'a' 'b' as c %}"
        "{% resetcycle %}{% firstof a b %}{% regroup l by k as g %}"
        "{% spaceless %} <b> </b> {% endspaceless %}{% templatetag openblock %}"
        "{% widthratio 1 2 100 %}{% with y=1 %}{{ y }}{% endwith %}"
        "{% for i in l %}{% ifchanged i %}{{ i }}{% endifchanged %}{% empty %}-{% endfor %}"
        "{% verbatim %}{{ literally }}{% endverbatim %}{% comment %}{% load x %}{% endcomment %}"
        "{% filter upper %}x{% endfilter %}"
    )
    validate_template_source("")


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("<html><body></body></html>", "must contain the content slot"),
        ("{{ content }}\n{{ content }}", "Line 2: the content slot {{ content }} can appear only"),
        ("<div>\n{{ content|upper }}</div>", "Line 2: the content slot must be written"),
        ("{% if brand.name %}\n{{ content }}\n{% endif %}", "Line 2: the content slot"),
        ("{{ content }}{% include 'x' %}", "Line 1: {% include %}"),
    ],
)
def test_layout_validation(source, error):
    """A layout has the content slot exactly once, as written, outside any block."""
    with pytest.raises(ValidationError) as info:
        validate_layout_source(source)
    assert error in info.value.message_dict["html"][0]


def test_layout_validation_accepts_a_branded_layout():
    validate_layout_source((CORPUS / "layouts" / "branded.html").read_text())
    validate_layout_source("{{content}}")
    validate_css_source((CORPUS / "layouts" / "branded.css").read_text())


def test_css_validation_refuses_template_errors_and_broken_selectors():
    with pytest.raises(ValidationError) as info:
        validate_css_source("a { color: red }\n{% debug %}")
    assert info.value.message_dict["css"][0].startswith("Line 2: {% debug %}")
    with pytest.raises(ValidationError) as info:
        validate_css_source("@namespace x url(y);\nx|p { color: red }")
    assert "cannot be inlined" in info.value.message_dict["css"][0]


def test_zero_argument_methods_cannot_mutate_or_reach_anything():
    """Django calls zero-argument methods; on the frozen context none can do harm."""
    context = {"d": {"a": 1}, "items": [1, 2, 3], "s": "abc"}
    output = render(
        "[{{ d.clear }}][{{ items.pop }}][{{ items.clear }}][{{ d.popitem }}]"
        "[{{ s.upper }}][{{ d.a }}][{{ items|length }}]"
        "{% for k, v in d.items %}({{ k }}={{ v }}){% endfor %}"
        # No copy() to clear either (a frozen mapping has none).
        "{{ d.copy.clear }}{{ d.a }}",
        context,
    )
    assert output == "[][][][][ABC][1][3](a=1)1"
    assert context == {"d": {"a": 1}, "items": [1, 2, 3], "s": "abc"}


def test_dunder_attributes_are_a_syntax_error():
    for source in ("{{ s.__class__ }}", "{{ s._x }}", "{% if d.__len__ %}{% endif %}"):
        with pytest.raises(TemplateSyntaxError):
            get_engine().from_string(source)


def test_frozen_context_is_read_only_json():
    frozen = freeze_context(
        {
            "d": {"n": [1, {"x": None}], 1: True},
            "price": decimal.Decimal("9.90"),
            "day": datetime.date(2024, 5, 1),
            "safe": mark_safe("<b>"),
        }
    )
    assert isinstance(frozen["d"], FrozenDict)
    assert frozen["d"]["n"] == (1, FrozenDict({"x": None}))
    assert frozen["d"]["1"] is True  # a JSON key is a string
    assert frozen["price"] == "9.90" and frozen["day"] == "2024-05-01"
    assert type(frozen["safe"]) is str  # a SafeString in the context is escaped
    assert render("{{ s }}", {"s": mark_safe("<b>")}) == "&lt;b&gt;"
    with pytest.raises(TypeError):
        frozen["d"]["x"] = 1
    for change in (frozen["d"].clear, frozen["d"].popitem, lambda: frozen["d"].update(x=1),
                   lambda: frozen["d"].pop("1"), lambda: frozen["d"].setdefault("x", 1)):
        with pytest.raises(TypeError):
            change()
    assert frozen["d"] == {"n": (1, {"x": None}), "1": True}
    assert not hasattr(frozen["d"]["n"], "append")


def test_frozen_data_prints_like_the_json_it_holds():
    """{{ order }} never shows a Python type name to a customer."""
    context = {"order": {"items": [{"sku": "X", "qty": 2}], "tags": ["a"]}}
    assert render("{{ order.items }}", context) == (
        "[{&#x27;sku&#x27;: &#x27;X&#x27;, &#x27;qty&#x27;: 2}]")
    assert render("{{ order.tags }}|{{ order }}", context).startswith("[&#x27;a&#x27;]|{")


def test_context_with_python_objects_is_refused():
    """A model instance (or any object) in the context never reaches a template."""
    with pytest.raises(RenderError, match=r"context\['order'\]\['customer'\] is a object"):
        freeze_context({"order": {"customer": object()}})
    with pytest.raises(RenderError):
        render_email(template("{{ x }}"), None, {"x": {1, 2}})


def test_autoescape_and_missing_values():
    assert render("{{ x }}|{{ missing }}|{{ missing.deeper }}", {"x": "<a&'\">"}) == (
        "&lt;a&amp;&#x27;&quot;&gt;||"
    )


def test_as_datetime_parses_iso_strings_from_the_snapshot():
    """JSON dates are ISO strings; as_datetime makes date/time filters work on them."""
    assert as_datetime("2024-05-01T09:30:00Z") == datetime.datetime(
        2024, 5, 1, 9, 30, tzinfo=datetime.timezone.utc
    )
    assert as_datetime("2024-05-01") == datetime.date(2024, 5, 1)
    assert as_datetime("09:30") == datetime.time(9, 30)
    assert as_datetime("2024-02-31") == "2024-02-31"
    assert as_datetime("soon") == "soon"
    assert as_datetime(42) == 42
    context = {"created": "2024-05-01T09:30:00Z", "day": "2024-12-24"}
    assert render('{{ created|as_datetime|date:"j F Y H:i" }}', context) == "1 May 2024 09:30"
    assert render('{{ day|as_datetime|date:"D j M" }}|{{ day|date:"Y" }}', context) == (
        "Tue 24 Dec|"
    )


def test_padding_filters_refuse_huge_widths():
    """A template cannot make the worker allocate gigabytes."""
    assert render('{{ s|center:"999999999" }}', {"s": "x"}) == "x"
    assert render('{{ s|ljust:"5" }}|', {"s": "x"}) == "x    |"
    assert render('{{ n|floatformat:"99999" }}', {"n": 1.5}) == "1.5"
    assert render('{{ n|stringformat:"099999999d" }}', {"n": 1}) == "1"
    assert render('{{ n|floatformat:"2" }}', {"n": 1.5}) == "1.50"


# ======================================================================================
# render_email
# ======================================================================================


def test_rendered_email_is_frozen():
    rendered = render_email(template("<p>x</p>"), None, {})
    assert rendered == RenderedEmail(subject="Hello", html="<p>x</p>", text="x")
    with pytest.raises(FrozenInstanceError):
        rendered.subject = "changed"


@pytest.mark.parametrize(
    "name", ["Ada\r\nBcc: evil@example.com", "Ada\nLovelace", "Ada\tL\u2028x\x0b\x85y", "  Ada  "]
)
def test_subject_is_one_line_whatever_the_context_holds(name):
    rendered = render_email(
        template("<p>x</p>", subject="Hi {{ name }} & {{ co }}\n"),
        None,
        {"name": name, "co": "<B&Q>"},
    )
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028]|\s{2}", rendered.subject)
    assert rendered.subject.startswith("Hi Ada") and rendered.subject.endswith("& <B&Q>")


def test_one_line_drops_control_characters():
    assert one_line(" a\r\n\tb\x00c\x1bd \u2029 e ") == "a bcd e"


def test_text_part_is_rendered_without_autoescape_when_given():
    tpl = template("<p>{{ name }}</p>", text="Hello {{ name }},\nbye")
    rendered = render_email(tpl, None, {"name": "Tom & <Jerry>"})
    assert rendered.text == "Hello Tom & <Jerry>,\nbye"
    assert rendered.html == "<p>Tom &amp; &lt;Jerry&gt;</p>"


def test_text_part_is_derived_from_the_html_when_blank():
    tpl = template(
        '<h1>Hi {{ name }}</h1><p>Your <a href="{{ url }}">order</a> is here.</p>',
        text="  \n",
    )
    rendered = render_email(tpl, None, {"name": "Ada & Co", "url": "https://x.test/o/1"})
    assert rendered.text == "Hi Ada & Co\n\nYour order (https://x.test/o/1) is here."


def test_language_override_applies_to_date_names():
    tpl = template('{{ d|as_datetime|date:"F" }}', subject='{{ d|as_datetime|date:"l" }}')
    context = {"d": "2024-05-01"}
    assert render_email(tpl, None, context, language="fr").html == "mai"
    assert render_email(tpl, None, context, language="de").subject == "Mittwoch"
    assert render_email(tpl, None, context).html == "May"


def test_template_without_layout_or_style_is_rendered_as_is():
    tpl = template("Hi {{ name }},\n<p>text</p>")
    assert render_email(tpl, None, {"name": "Ada"}).html == "Hi Ada,\n<p>text</p>"


def test_layout_brand_values_footer_and_css():
    lay = layout(
        html="<html><head><title>{{ brand.name }}</title></head>"
        '<body bgcolor="{{ brand.background_color }}"><img src="{{ brand.logo_url }}">'
        '{{ content }}<div class="f">{{ brand.footer_html }}</div></body></html>',
        css=".f { color: {{ brand.text_color }} } h1 { font-family: 'Helvetica Neue' }",
        footer_html="<b>{{ brand.name }}</b> &amp; friends",
        name="Acme & Sons",
    )
    rendered = render_email(template("<h1>{{ title }}</h1>"), lay, {"title": "Hi"})
    assert "<title>Acme &amp; Sons</title>" in rendered.html
    assert 'bgcolor="#f4f4f4"' in rendered.html
    assert '<img src="https://cdn.example.com/logo.png">' in rendered.html
    assert """<h1 style='font-family:"Helvetica Neue"'>Hi</h1>""" in rendered.html
    assert '<div class="f" style="color:#333"><b>Acme &amp; Sons</b> &amp; friends</div>' in (
        rendered.html
    )
    assert "<style" not in rendered.html  # everything was inlined


def test_layout_text_that_looks_like_template_syntax_stays_text():
    """Static HTML is never lexed again, so a layout's literal braces stay literal."""
    lay = layout(
        html="<html><body>{% verbatim %}<p>{{ secret }} {% debug %}</p>{% endverbatim %}"
        "{{ content }}</body></html>",
        css="p { margin: 0 }",
        name="{{ secret }}",
    )
    tpl = template("<p>{{ name }}</p><p>{{ brand.name }}</p>")
    rendered = render_email(tpl, lay, {"name": "Ada", "secret": "hunter2"})
    assert "<p>{{ secret }} {% debug %}</p>" in rendered.html.replace(' style="margin:0"', "")
    assert "hunter2" not in rendered.html
    assert _compiled(tpl, lay).inline_per_email is False


def test_media_queries_and_pseudo_classes_stay_in_a_style_element_with_important():
    lay = layout(
        css="@media (max-width: 600px) { .c { width: 100% } } a:hover { color: red } "
        ".c { width: 600px }"
    )
    rendered = render_email(template('<div class="c"><a href="#">x</a></div>'), lay, {})
    assert "width:100% !important" in rendered.html.replace(": ", ":")
    assert "a:hover {color:red !important}" in rendered.html
    assert '<div class="c" style="width:600px" width="600">' in rendered.html


def test_premailer_never_fetches_external_stylesheets(monkeypatch):
    """allow_network=False: a <link> stylesheet is left alone, never requested."""
    import requests

    def fail(*args, **kwargs):
        raise AssertionError("premailer tried the network")

    monkeypatch.setattr(requests, "get", fail)
    monkeypatch.setattr(requests.Session, "get", fail)
    html = (
        '<html><head><link rel="stylesheet" href="https://evil.example.com/x.css">'
        "<style>p { color: red }</style></head><body><p>{{ x }}</p></body></html>"
    )
    rendered = render_email(template(html), None, {"x": "y"})
    assert '<p style="color:red">y</p>' in rendered.html
    assert "evil.example.com/x.css" in rendered.html
    assert '<p style="color:red">{{ x }}</p>' in inline_css(html)


def test_stored_template_that_does_not_compile_raises_render_error():
    with pytest.raises(RenderError, match="Line 2: "):
        render_email(template("ok\n{% if x %}"), None, {})
    with pytest.raises(RenderError, match="subject"):
        render_email(template("ok", subject="{% debug %}"), None, {})
    with pytest.raises(RenderError, match="content slot"):
        render_email(template("x"), layout(html="<p>no slot</p>"), {})


def test_css_premailer_cannot_apply_fails_the_render_not_the_compile():
    """The optimiser never makes an email fail; broken CSS does, when it is inlined."""
    lay = layout(css="@namespace x url(y);\nx|p { color: red }")
    compiled = _compiled(template("<p>x</p>"), lay)
    assert compiled.inline_per_email
    assert "precompiler failed" in compiled.reason
    with pytest.raises(RenderError, match="failed to render"):
        render_email(template("<p>x</p>"), lay, {})


# ======================================================================================
# The inline cache
# ======================================================================================


@pytest.fixture
def compile_count(monkeypatch):
    calls = []
    real = compiled._compile

    def counting(tpl, lay):
        calls.append((tpl.pk, None if lay is None else lay.pk))
        return real(tpl, lay)

    monkeypatch.setattr(compiled, "_compile", counting)
    return calls


def test_each_revision_pair_is_compiled_and_inlined_once(compile_count):
    tpl, lay = template("<p>{{ x }}</p>", pk=7), layout(css="p { color: red }", pk=3)
    for value in ("a", "b", "c"):
        html = render_email(tpl, lay, {"x": value}).html
        assert f'<p style="color:red">{value}</p>' in html
    assert compile_count == [(7, 3)]
    render_email(tpl, None, {"x": 1})
    assert compile_count == [(7, 3), (7, None)]


def test_unsaved_objects_are_never_cached(compile_count):
    """A preview of unsaved edits (pk None) compiles every time and leaves no entry."""
    for _ in range(2):
        render_email(template("<p>x</p>", pk=None), layout(pk=1), {})
        render_email(template("<p>x</p>", pk=1), layout(pk=None), {})
    assert len(compile_count) == 4
    assert compiled._cache == {}


def test_cache_is_bounded_by_the_setting_read_at_call_time(settings, compile_count):
    settings.TRANSACTIONAL_MAIL = {"INLINE_CACHE_SIZE": 2}
    for pk in (1, 2, 1, 3):  # 1 is used again, so 2 is the least recently used
        render_email(template("<p>x</p>", pk=pk), None, {})
    assert list(compiled._cache) == [inline_cache_key(1, None), inline_cache_key(3, None)]
    settings.TRANSACTIONAL_MAIL = {"INLINE_CACHE_SIZE": 0}
    clear_inline_cache()
    render_email(template("<p>x</p>", pk=1), None, {})
    assert compiled._cache == {}


def test_invalidation_uses_the_same_key_function(compile_count):
    tpl, lay = template("<p>x</p>", pk=5), layout(pk=9)
    render_email(tpl, lay, {})
    assert list(compiled._cache) == [inline_cache_key(5, 9)]
    invalidate_inline_cache(5, 9)
    assert compiled._cache == {}
    render_email(tpl, lay, {})
    assert len(compile_count) == 2


def test_an_entry_is_rebuilt_when_the_object_behind_a_key_changed(compile_count):
    """Revisions never change, but a mutable object passed by mistake cannot go stale."""
    tpl = template("<p>one</p>", pk=5)
    assert render_email(tpl, None, {}).html == "<p>one</p>"
    tpl.html = "<p>two</p>"
    assert render_email(tpl, None, {}).html == "<p>two</p>"
    assert len(compile_count) == 2


# ======================================================================================
# Text part
# ======================================================================================


def test_html_to_text():
    html = """<!DOCTYPE html><html><head><title>T</title><style>p { color: red }</style>
    </head><body><span style="display: none">preheader&zwnj;</span>
    <h1>Hello &amp; welcome</h1>
    <p>First   line<br>second line</p>
    <p>Go <a href="https://x.test/a">there</a>, or <a href="https://x.test/b">https://x.test/b</a>
    or <a href="mailto:help@x.test">help@x.test</a> or <a href="#top">top</a>.</p>
    <ul><li>one</li><li>two<ol><li>a</li><li>b</li></ol></li></ul>
    <table><tr><th>Item</th><th>Price</th></tr>
    <tr><td>Widget</td><td>&euro;10</td></tr></table>
    <script>alert(1)</script><hr><p><a href="https://x.test/i"><img alt="Logo" src="l.png"></a>
    <a href="https://x.test/bare"></a></p>
    </body></html>"""
    assert html_to_text(html) == (
        "Hello & welcome\n\n"
        "First line\nsecond line\n\n"
        "Go there (https://x.test/a), or https://x.test/b or help@x.test or top.\n\n"
        "- one\n- two\n  1. a\n  2. b\n\n"
        "Item  Price\nWidget  €10\n\n"
        "--------------------\n\n"
        "Logo (https://x.test/i) https://x.test/bare"
    )
    assert html_to_text("") == ""
    assert html_to_text("plain") == "plain"
    assert html_to_text("<pre>a\n  b</pre><p>c</p>") == "a\nb\n\nc"


# ======================================================================================
# URI attributes: the precompiled template escapes like libxml2's serialiser
# ======================================================================================


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


# ======================================================================================
# The proof: cached inline-then-render == render-then-inline, on the corpus
# ======================================================================================

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
    """The slow reference: render the template, put it in its layout, inline the CSS."""
    body = render(tpl.html, context)
    if lay is not None:
        before, after = _render_layout(lay)
        body = before + body + after
    return inline_css(body) if "<style" in body.lower() else body


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


def test_autoescape_off_cannot_unescape_context_data():
    """{% autoescape off %} is not a tag: a stored revision using it does not render, and
    customer-entered markup always comes out escaped."""
    with pytest.raises(TemplateSyntaxError):
        get_engine().from_string("{% autoescape off %}{{ x }}{% endautoescape %}")
    with pytest.raises(RenderError, match="autoescape"):
        render_email(template("{% autoescape off %}{{ x }}{% endautoescape %}"), None, {})
    html = render_email(template("<p>{{ name }}</p>"), None, {"name": "<a href=x>hi</a>"}).html
    assert html == "<p>&lt;a href=x&gt;hi&lt;/a&gt;</p>"


# ======================================================================================
# Stylesheets: nothing is ever fetched, and loading constructs are refused on save
# ======================================================================================


@pytest.fixture
def trap(monkeypatch):
    """A listener and a file that must never be read (real sockets, unlike _pure's)."""
    monkeypatch.setattr(socket.socket, "connect", _REAL_CONNECT)
    monkeypatch.setattr(socket, "create_connection", _REAL_CREATE_CONNECTION)
    trap = FetchTrap()
    yield trap
    trap.close()


def test_the_trap_sees_a_fetch(trap):
    """The trap itself works: cssutils' default fetcher (what premailer used) reads both."""
    import cssutils

    sheet = cssutils.CSSParser().parseString(trap.imports())
    assert [rule.styleSheet.cssText for rule in sheet.cssRules] == [
        b"p {\n    color: blue\n    }",
        b"p {\n    color: green\n    }",
    ]
    assert len(trap.requests) == 1 and trap.file_reads == 1


def test_validation_inlining_and_rendering_never_fetch_a_stylesheet(trap):
    """Whatever is stored (rows saved before the check, or written with update()),
    rendering and inlining open no URL and no file; the rest of the CSS still applies."""
    imports = trap.imports()
    page = (
        f"<html><head><style>{imports}p {{ color: red }}</style></head>"
        "<body><p>x</p></body></html>"
    )
    assert '<p style="color:red">x</p>' in inline_css(page)

    in_template = template(f"<style>{imports}p {{ color: red }}</style><p>{{{{ x }}}}</p>")
    in_layout = layout(css=f"{imports}p {{ color: red }}")
    from_context = template("<style>{{ css }}</style><p>{{ x }}</p>", pk=2)
    for tpl, lay, context in (
        (in_template, None, {"x": "y"}),
        (template("<p>{{ x }}</p>", pk=3), in_layout, {"x": "y"}),
        (from_context, layout(css="p { color: red }", pk=2), {"x": "y", "css": imports}),
    ):
        html = render_email(tpl, lay, context).html
        assert 'style="color:red">y</p>' in html
        assert "@import" not in html

    with pytest.raises(ValidationError):
        validate_css_source(imports)
    with pytest.raises(ValidationError):
        validate_html_source(f"<style>{imports}</style>")
    trap.assert_untouched()


@pytest.mark.parametrize(
    ("css", "line", "expected"),
    [
        ('p { color: red }\n@import url("https://x.test/a.css");', 2, "@import is not allowed"),
        ("@import 'a.css';", 1, "@import"),
        ("@IMPORT url(a.css);", 1, "@import"),
        ("@i\\mport url(a.css);", 1, "@import"),  # a CSS escape is still @import
        ("@imp{# split #}ort url(a.css);", 1, "@import"),
        ("@media screen {\n  @import url(a.css);\n}", 2, "@import"),
        ("p {}\n\np { background: url(file:///etc/passwd) }", 3, "url(file:///etc/passwd)"),
        ("p { background: url('FILE:///x') }", 1, "url(FILE:///x)"),
        ("p { background: url(fil\\65:///x) }", 1, "url(file:///x)"),
        ("p { background: url('fi\\\nle:///x') }", 1, "url(file:///x)"),
        ("p { background: url('fi\tle:///x') }", 1, "url(file:///x)"),
        ("p { background: url(//smb.example/share/x.png) }", None, None),
        ("p { background: url(ftp://x.test/a.png) }", 1, "url(ftp://x.test/a.png)"),
        ("p { background: url(javascript:alert(1)) }", 1, "url(javascript:alert"),
        ("{% comment %}\n@import url(a);\n{% endcomment %}p { color: red }", None, None),
    ],
)
def test_css_that_loads_a_resource_is_refused_naming_the_line(css, line, expected):
    """@import (however spelt) and url() other than http(s)/data/cid are refused."""
    if expected is None:
        validate_css_source(css)
        validate_html_source(f"<style>{css}</style>")
        return
    with pytest.raises(ValidationError) as info:
        validate_css_source(css)
    [message] = info.value.message_dict["css"]
    assert message.startswith(f"Line {line}: ")
    assert expected in message
    with pytest.raises(ValidationError) as info:
        validate_html_source(f"<p>x</p>\n<style>\n{css}</style>")
    [message] = info.value.message_dict["html"]
    assert message.startswith(f"Line {line + 2}: ")
    assert expected in message


def test_css_urls_for_images_and_fonts_are_fine():
    """Mail clients load these; the server never does."""
    css = (
        "p { background: url(https://cdn.x.test/bg.png) }\n"
        "@font-face { font-family: X; src: url('https://fonts.x.test/x.woff2') }\n"
        "div { background-image: url(data:image/png;base64,iVBORw0KGgo=) }\n"
        "td { background: url(cid:logo) } th { background: url(images/x.png) }\n"
        "h1 { background: url({{ brand.logo_url }}) }\n"
    )
    validate_css_source(css)
    validate_html_source(f'<style>{css}</style><p style="background: url(https://x.test/a.png)">x</p>')


@pytest.mark.parametrize(
    ("html", "line", "expected"),
    [
        ('<head>\n<link rel="stylesheet" href="https://x.test/a.css">', 2, "<link rel"),
        ("<link href='/a.css' REL='alternate stylesheet'>", 1, "<link rel"),
        ("<link rel=stylesheet href=a.css>", 1, "<link rel"),
        ('<p>\n<td style="background: url(&quot;file:///etc/passwd&quot;)">', 2, "url(file:"),
        ("<style>p { color: red }</style>\n<style>\n@import 'x';</style>", 3, "@import"),
    ],
)
def test_html_that_loads_a_stylesheet_is_refused_naming_the_line(html, line, expected):
    with pytest.raises(ValidationError) as info:
        validate_html_source(html, field_name="html")
    [message] = info.value.message_dict["html"]
    assert message.startswith(f"Line {line}: ")
    assert expected in message


def test_layout_css_refused_when_brand_values_make_it_load_a_resource():
    """The CSS is also checked as rendered with the layout's brand values."""
    lay = layout(css="h1 { background: url({{ brand.name }}) }", name="file:///etc/passwd")
    with pytest.raises(ValidationError) as info:
        validate_css_source(lay.css, layout=lay)
    assert "url(file:///etc/passwd)" in info.value.message_dict["css"][0]
    validate_css_source(lay.css, layout=layout(name="https://x.test/a.png"))


def test_a_layout_html_or_footer_link_stylesheet_is_refused():
    with pytest.raises(ValidationError, match="link rel"):
        validate_layout_source('<link rel="stylesheet" href="https://x.test/a.css">{{ content }}')
