"""Tests of transactional_mail.rendering.validation: sources refused on save, naming the line."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.template import TemplateSyntaxError

from tests.rendering.helpers import CORPUS, layout
from transactional_mail.rendering.engine import get_engine
from transactional_mail.rendering.validation import (
    translation_problems,
    validate_css_source,
    validate_html_source,
    validate_layout_source,
    validate_template_source,
)

pytestmark = pytest.mark.usefixtures("pure")


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


def test_a_translated_value_that_makes_the_css_load_a_resource_is_refused_for_its_language():
    """Each translation's CSS gets the rendered-CSS check; the problem names the language."""
    lay = layout(css=".legal:after { content: \"{{ brand.legal_text }}\" }", legal_text="Why",
                 translations={"fr": {"legal_text": '"} a { background: url(file:///x) } b{"'},
                               "de": {"legal_text": "Warum"}})
    [problem] = translation_problems(lay)
    assert problem.language == "fr"
    assert "As rendered with the brand values: url(file:///x) is not allowed" in str(problem)


def test_a_css_problem_of_the_default_values_is_not_repeated_for_each_translation():
    """CSS a translation leaves as the default values render it is the css field's
    business: reported once there, not once more per language."""
    lay = layout(css="h1 { background: url({{ brand.name }}) }", name="file:///etc/passwd",
                 legal_text="Why", translations={"fr": {"legal_text": "Pourquoi"}})
    with pytest.raises(ValidationError):
        validate_css_source(lay.css, layout=lay)
    assert translation_problems(lay) == []


def test_a_layout_html_or_footer_link_stylesheet_is_refused():
    with pytest.raises(ValidationError, match="link rel"):
        validate_layout_source('<link rel="stylesheet" href="https://x.test/a.css">{{ content }}')


@pytest.mark.parametrize(
    ("source", "line", "opener"),
    [
        ("Order {{ order.number }} confirmed {{ order.number ", 1, "{{"),
        ("Hi\nthere {% if x", 2, "{%"),
        ("<p>a</p>\n<p>b</p>\n{{ name\n}}", 3, "{{"),
        ("{% if x %}\n\n  {{ {% endif %}", 3, "{{"),
    ],
)
def test_an_unclosed_opener_is_refused_naming_the_line(source, line, opener):
    """An unclosed or stray {{ / {% (which Django's lexer leaves as text, so customers
    would get the raw braces) is refused with its line."""
    with pytest.raises(ValidationError) as info:
        validate_template_source(source, field_name="subject")
    [message] = info.value.message_dict["subject"]
    assert message.startswith(f"Line {line}: {opener} is not closed")


@pytest.mark.parametrize(
    "source",
    [
        "Order {{ order.number }} confirmed",
        "{% verbatim %}{{ literal }} {% if %}{% endverbatim %}",
        "{% templatetag openvariable %} x {% templatetag closevariable %}",
        "a { b } c }} d %}",
        "<style>@media (max-width:600px){.a{color:red}}</style>",
    ],
)
def test_closed_or_literal_braces_are_accepted(source):
    """Closed tags, verbatim blocks, templatetag and lone closers or CSS braces pass."""
    validate_template_source(source, field_name="html")
