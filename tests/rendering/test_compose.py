"""Tests of transactional_mail.rendering.compose: render_email and its RenderedEmail."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError

import pytest

from tests.rendering.helpers import layout, template
from transactional_mail.exceptions import RenderError
from transactional_mail.rendering import RenderedEmail, render_email
from transactional_mail.rendering.compose import one_line

pytestmark = pytest.mark.usefixtures("pure")


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


@pytest.mark.parametrize(("language", "expected"), [
    ("fr", "29 novembre 2026 · 1\u202f234,5"),
    ("de", "29. November 2026 · 1.234,5"),
    ("en", "Nov. 29, 2026 · 1,234.5"),
    (None, "Nov. 29, 2026 · 1,234.5"),
    ("xx-unknown", "Nov. 29, 2026 · 1,234.5"),
])
def test_dates_and_numbers_use_the_formats_of_the_emails_language(language, expected):
    """The default date format and localised numbers follow the email's language; an
    unknown language falls back to LANGUAGE_CODE without an error."""
    tpl = template('{{ d|as_datetime|date }} · {{ n|floatformat:"1g" }}',
                   subject="{{ d|as_datetime|date }}")
    rendered = render_email(tpl, None, {"d": "2026-11-29", "n": 1234.5}, language=language)
    assert rendered.html.replace("\xa0", "\u202f") == expected.replace("\xa0", "\u202f")
    assert rendered.subject == expected.split(" · ")[0]


@pytest.mark.parametrize(("language", "expected"), [
    ("fr", '<html lang="fr" dir="ltr">'), ("ar", '<html lang="ar" dir="rtl">'),
    (None, '<html lang="en" dir="ltr">'), ("xx", '<html lang="en" dir="ltr">'),
])
def test_a_layout_gets_each_emails_language_direction_and_preheader(language, expected):
    """The layout renders once per revision; its language, direction and preheader
    markers become each email's, the preheader escaped and only in the HTML."""
    shell = layout('<html lang="{{ brand.language }}" dir="{{ brand.direction }}"><body>'
                   '<div class="pre">{{ brand.preheader }}</div>{{ content }}</body></html>')
    tpl = template("<p>x</p>", subject="S {{ brand.preheader }}")
    rendered = render_email(tpl, shell, {"preheader": "<b>Soon</b>\nthere"}, language=language)
    assert rendered.html.startswith(expected)
    assert '<div class="pre">&lt;b&gt;Soon&lt;/b&gt; there</div>' in rendered.html
    assert rendered.subject == "S" and "Soon" not in rendered.text


def test_template_without_layout_or_style_is_rendered_as_is():
    tpl = template("Hi {{ name }},\n<p>text</p>")
    assert render_email(tpl, None, {"name": "Ada"}).html == "Hi Ada,\n<p>text</p>"


def test_stored_template_that_does_not_compile_raises_render_error():
    with pytest.raises(RenderError, match="Line 2: "):
        render_email(template("ok\n{% if x %}"), None, {})
    with pytest.raises(RenderError, match="subject"):
        render_email(template("ok", subject="{% debug %}"), None, {})
    with pytest.raises(RenderError, match="content slot"):
        render_email(template("x"), layout(html="<p>no slot</p>"), {})


def _preheader(html: str) -> str:
    match = re.search(r'<div class="preheader">(.*?)</div>', html)
    return match.group(1) if match else ""


PREHEADER_LAYOUT = ('<html><body><div class="preheader">{{ brand.preheader }}</div>'
                    "{{ content }}</body></html>")


def test_the_templates_preheader_is_rendered_like_the_subject_and_wins():
    revision = template("<p>x</p>")
    revision.preheader = "Total {{ total }} &\n {{ note }}"
    rendered = render_email(revision, layout(PREHEADER_LAYOUT),
                            {"total": "€9", "note": "<b>soon</b>", "preheader": "Context's"})
    # One line, the email's context, escaped once in the HTML.
    assert _preheader(rendered.html) == "Total €9 &amp; &lt;b&gt;soon&lt;/b&gt;"
    assert "Context's" not in rendered.html


@pytest.mark.parametrize("preheader", ["", "   ", None])
def test_a_blank_preheader_uses_the_contexts_as_before(preheader):
    revision = template("<p>x</p>")
    revision.preheader = preheader
    rendered = render_email(revision, layout(PREHEADER_LAYOUT), {"preheader": "From context"})
    assert _preheader(rendered.html) == "From context"
