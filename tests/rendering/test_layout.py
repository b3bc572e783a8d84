"""Tests of transactional_mail.rendering.layout: brand values, footer and CSS of a layout."""

from __future__ import annotations

import pytest

from tests.rendering.helpers import layout, template
from transactional_mail.rendering import render_email
from transactional_mail.rendering.compiled import _compiled

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
