"""The layout the app ships (transactional_mail.default_layout), installed by migrate."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from tests.factories import make_template
from transactional_mail.default_layout import NAME, default_layout_values, install_default_layout
from transactional_mail.models import Layout
from transactional_mail.rendering import render_email
from transactional_mail.rendering.compiled import _compile

pytestmark = pytest.mark.django_db

CONTENT = ('<h1>Hello {{ name }}</h1><p>Your order is on its way.</p>'
           '<p><a class="button" href="https://shop.example.com/o/1">Track it</a></p>')


@pytest.fixture
def default():
    return Layout.objects.get(name=NAME)


def render(layout, language=None, **context):
    template = make_template(html=CONTENT, layout=layout)
    return render_email(template.published_revision, layout.published_revision,
                        {"name": "Ann", **context}, language=language)


def test_migrate_installs_and_publishes_it(default):
    assert default.published_revision == default.current_revision
    assert default.current_revision.note == "Installed by migrate."
    assert default.current_revision.created_by is None
    default.full_clean()  # the app's own layout validation, colours included


def test_installing_again_changes_nothing_staff_did(default):
    default.footer_html = "<p>Our footer</p>"
    default.save()
    install_default_layout()
    assert Layout.objects.count() == 1
    assert Layout.objects.get().footer_html == "<p>Our footer</p>"
    default.name = "Renamed by staff"
    default.save()
    install_default_layout()
    assert list(Layout.objects.values_list("name", flat=True)) == ["Renamed by staff"]


def test_it_is_installed_again_only_when_no_layout_exists(default):
    default.delete()
    install_default_layout()
    install_default_layout()
    assert Layout.objects.get().html == default_layout_values()["html"]


def test_a_database_the_app_does_not_migrate_to_gets_nothing(default, settings):
    class NoLayouts:
        def allow_migrate(self, db, app_label, **hints):
            return app_label != "transactional_mail"

    default.delete()
    settings.DATABASE_ROUTERS = [NoLayouts()]
    install_default_layout()
    assert not Layout.objects.exists()


@pytest.mark.parametrize(("language", "lang", "direction"), [
    ("fr", "fr", "ltr"), ("de", "de", "ltr"), ("ar", "ar", "rtl"), (None, "en", "ltr"),
])
def test_lang_and_dir_follow_the_emails_language(default, language, lang, direction):
    html = render(default, language).html
    root = etree.fromstring(html, etree.HTMLParser())
    assert (root.get("lang"), root.get("dir")) == (lang, direction)


def test_it_is_table_based_with_roles_and_a_hidden_escaped_preheader(default):
    html = render(default, preheader='Shipped <b>today</b> & "fast"').html
    root = etree.fromstring(html, etree.HTMLParser())
    [preheader] = root.xpath('//div[@class="preheader"]')
    assert preheader.text == 'Shipped <b>today</b> & "fast"'  # as text: escaped in the HTML
    assert "display:none" in preheader.get("style").replace(" ", "")
    assert root.xpath('//table[@role="presentation"][@width="600"]')
    assert root.xpath('//td[@role="article"]') and root.xpath('//td[@role="contentinfo"]')
    assert not root.xpath("//div[not(@class='preheader')]")  # layout boxes are tables
    assert "prefers-color-scheme: dark" in html  # kept in a <style> for the clients that can
    assert "max-width: 620px" in html
    button = root.xpath('//a[@class="button"]')[0]
    assert "background-color:#1a73e8" in button.get("style").replace(" ", "")
    # Its label is white: ".content a" (the link colour) must not win over the button's.
    assert re.search(r"(?<!-)color:#(fff|ffffff)\b", button.get("style").replace(" ", ""))


def test_without_a_preheader_in_the_context_the_slot_is_empty(default):
    rendered = render(default)
    assert '<div class="preheader"' in rendered.html
    assert "tm-email-" not in rendered.html + rendered.text + rendered.subject


def test_it_renders_through_the_precompiler(default):
    """CSS inlined once per revision pair, not per email."""
    template = make_template(html=CONTENT, layout=default)
    compiled = _compile(template.published_revision, default.published_revision)
    assert compiled.inline_per_email is False, compiled.reason


def test_the_brand_fields_reach_the_footer(default):
    default.legal_text = "You get this because you ordered."
    default.footer_address = "1 Main St\nLyon"
    default.help_url = "https://shop.example.com/help"
    default.save()
    default.publish()
    html = render(default).html
    assert "You get this because you ordered." in html
    assert "1 Main St<br>Lyon" in html
    assert 'href="https://shop.example.com/help"' in html


def _luminance(color: str) -> float:
    channels = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_its_text_colours_meet_wcag_aa_contrast(default):
    """Body text, the button and the footer: at least 4.5:1, in light and dark mode."""
    css = default.css
    assert "color: #4b5563" in css and "color: #f3f4f6" in css and "color: #d1d5db" in css
    pairs = [
        (default.text_color, "#ffffff"),  # body text on the container
        ("#ffffff", default.primary_color),  # button label
        ("#4b5563", "#ffffff"),  # footer (on the container)
        ("#f3f4f6", "#1f2937"),  # dark mode text
        ("#d1d5db", "#1f2937"),  # dark mode footer
    ]
    for foreground, background in pairs:
        assert _contrast(foreground, background) >= 4.5, (foreground, background)
    assert re.search(r"\.footer \{[^}]*color: #4b5563", css)
