"""The layout preview: an unsaved layout around the sample, in light and dark mode."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from transactional_mail.default_layout import default_layout_values
from transactional_mail.rendering.compiled import _cache
from transactional_mail.rendering.layout_preview import (
    SAMPLE_CONTEXT,
    dark_mode,
    layout_draft,
    preview_layout,
)

pytestmark = pytest.mark.usefixtures("pure")

VALUES = {**default_layout_values(), "primary_color": "#1a73e8",
          "background_color": "#f4f4f5", "text_color": "#1f2937",
          "font_family": "Arial, sans-serif"}


def test_the_sample_has_a_heading_a_paragraph_a_button_and_a_table():
    preview = preview_layout(VALUES)
    assert preview.errors == ()
    html = preview.html
    assert "<h1" in html and "<p" in html and 'class="button"' in html and "<table" in html
    assert SAMPLE_CONTEXT["order"]["items"][1]["name"] in html
    assert "Order A-1001 is confirmed: here is" in html  # the preheader slot filled
    assert not _cache  # an unsaved layout is never cached


def test_a_template_and_its_context_replace_the_sample():
    template = SimpleNamespace(subject="Hi {{ n }}", html="<p>Body {{ n }}</p>", text="")
    preview = preview_layout(VALUES, template=template, context={"n": "Bo"}, language="fr")
    assert preview.subject == "Hi Bo" and "Body Bo" in preview.html
    assert 'lang="fr"' in preview.html and "Thanks for your order" not in preview.html


def test_dark_mode_turns_dark_rules_on_and_light_rules_off():
    html = ('<html><head><meta name="color-scheme" content="light dark"><style>'
            "@media (prefers-color-scheme: dark) { body { color: white } }"
            "@media only screen and (PREFERS-COLOR-SCHEME:light) { body { color: black } }"
            "</style></head><body></body></html>")
    dark = dark_mode(html)
    assert "@media (min-width: 0) { body { color: white } }" in dark
    assert "@media only screen and (max-width: 0) { body { color: black } }" in dark
    assert dark.count("color-scheme") == 1
    assert dark.startswith('<html><head><meta name="color-scheme" content="dark">')


def test_dark_mode_of_a_fragment_declares_the_scheme_first():
    assert dark_mode("<p>x</p>") == '<meta name="color-scheme" content="dark"><p>x</p>'


def test_a_url_without_a_scheme_is_https_like_the_form():
    draft, errors = layout_draft({**VALUES, "help_url": "help.example.com"})
    assert errors == [] and draft.help_url == "https://help.example.com"


def test_every_mistake_is_listed_not_raised():
    preview = preview_layout({**VALUES, "primary_color": "nope", "text_color": "",
                              "logo_url": "ftp://x"})
    assert sorted(error.field for error in preview.errors) == [
        "logo_url", "primary_color", "text_color"]
    assert preview.html == ""
