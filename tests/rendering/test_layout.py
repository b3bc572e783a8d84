"""Tests of transactional_mail.rendering.layout: brand values, footer and CSS of a layout."""

from __future__ import annotations

import pytest

from tests.rendering.helpers import layout, template
from transactional_mail.rendering import render_email
from transactional_mail.rendering.compiled import _cache, _compiled

pytestmark = pytest.mark.usefixtures("pure")


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


# --- Per-language brand values (layout.translations) --------------------------------------

FOOTER_LAYOUT = ('<html><body>{{ content }}<p class="legal">{{ brand.legal_text }}</p>'
                 '<div class="f">{{ brand.footer_html }}</div>'
                 '<a href="{{ brand.help_url }}">?</a></body></html>')


def translated_layout(**translations):
    return layout(FOOTER_LAYOUT, legal_text="Why you get this email.",
                  footer_html="<b>{{ brand.name }}</b> Ltd", footer_address="",
                  help_url="https://help.example.com/", translations=translations)


def test_an_email_in_a_translated_language_gets_its_footer():
    lay = translated_layout(fr={"legal_text": "Pourquoi vous recevez cet e-mail.",
                                "footer_html": "<b>{{ brand.name }}</b> SARL",
                                "help_url": "https://help.example.com/fr/"})
    french = render_email(template("<p>x</p>"), lay, {}, language="fr").html
    assert "Pourquoi vous recevez cet e-mail." in french
    assert "<b>Acme</b> SARL" in french and 'href="https://help.example.com/fr/"' in french
    english = render_email(template("<p>x</p>"), lay, {}, language="en").html
    assert "Why you get this email." in english and "<b>Acme</b> Ltd" in english
    # A regional variant falls back to its language's translation.
    assert "SARL" in render_email(template("<p>x</p>"), lay, {}, language="fr-ca").html


def test_a_blank_translated_value_keeps_the_default():
    lay = translated_layout(de={"legal_text": "Warum Sie diese E-Mail erhalten.",
                                "footer_html": "  "})
    german = render_email(template("<p>x</p>"), lay, {}, language="de").html
    assert "Warum Sie diese E-Mail erhalten." in german and "<b>Acme</b> Ltd" in german


def test_only_the_footer_values_can_be_translated():
    lay = translated_layout(fr={"html": "<html><body>hijacked</body></html>",
                                "primary_color": "red", "legal_text": "Mentions"})
    french = render_email(template("<p>x</p>"), lay, {}, language="fr").html
    assert "hijacked" not in french and "Mentions" in french


def test_each_language_is_compiled_and_cached_apart():
    lay = translated_layout(fr={"legal_text": "Mentions légales"})
    tpl = template("<p>x</p>")
    assert "Mentions légales" in render_email(tpl, lay, {}, language="fr").html
    assert "Why you get this email." in render_email(tpl, lay, {}, language="en").html
    assert "Mentions légales" in render_email(tpl, lay, {}, language="fr").html
    assert {key[3] for key in _cache} == {"fr", ""}
