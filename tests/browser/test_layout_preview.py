"""The layout preview in a real browser: it follows a colour being changed, at desktop and
mobile widths, in light and dark mode, and a layout's script never runs in it."""

from __future__ import annotations

import re

import pytest

from tests.browser.admin_pages import expect, log_in
from tests.factories import PNG, make_layout
from transactional_mail.default_layout import default_layout_values
from transactional_mail.models import Layout

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FRAMES = ("#tm-layout-desktop", "#tm-layout-mobile", "#tm-layout-desktop-dark",
          "#tm-layout-mobile-dark")
LIGHT_BACKGROUND = "rgb(244, 244, 245)"  # the default layout's background colour
DARK_BACKGROUND = "rgb(17, 24, 39)"  # its prefers-color-scheme: dark rule


@pytest.fixture
def layout():
    return make_layout(**{**default_layout_values(), "name": "Shop",
                          "footer_address": "Shop Ltd, 1 High Street, Bristol",
                          "legal_text": "You get this email because you ordered from us.",
                          "help_url": "https://shop.example.com/help"})


@pytest.fixture
def layout_form(page, layout):
    """The layout's change page, logged in as staff, preview loaded."""
    log_in(page, "staff")
    page.goto(f"/admin/transactional_mail/layout/{layout.pk}/change/")
    expect(page.locator("#tm-layout-preview")).to_be_visible()
    for frame in FRAMES:
        expect(page.frame_locator(frame).locator("h1")).to_have_text(
            "Thanks for your order, Ann!")
    return page


def button(page, frame):
    return page.frame_locator(frame).locator("a.button")


def test_the_preview_follows_a_colour_change_at_both_widths_light_and_dark(
    layout_form, layout, screenshot
):
    page = layout_form
    for frame in FRAMES:
        expect(button(page, frame)).to_have_css("background-color", "rgb(26, 115, 232)")
    assert page.locator("#tm-layout-desktop").bounding_box()["width"] == pytest.approx(800, 3)
    assert page.locator("#tm-layout-mobile").bounding_box()["width"] == pytest.approx(375, 3)
    assert page.locator("#tm-layout-desktop-dark").bounding_box()["width"] == pytest.approx(
        800, 3)
    assert page.locator("#tm-layout-mobile-dark").bounding_box()["width"] == pytest.approx(
        375, 3)
    # Light and dark: the layout's dark-mode rules apply in the dark frames only.
    for frame, background in (("#tm-layout-desktop", LIGHT_BACKGROUND),
                              ("#tm-layout-mobile", LIGHT_BACKGROUND),
                              ("#tm-layout-desktop-dark", DARK_BACKGROUND),
                              ("#tm-layout-mobile-dark", DARK_BACKGROUND)):
        expect(page.frame_locator(frame).locator("table.outer")).to_have_css(
            "background-color", background)
    # The mobile frame gets the layout's small-screen rules: the card fills the width.
    mobile_card = page.frame_locator("#tm-layout-mobile").locator("table.container")
    assert mobile_card.bounding_box()["width"] < 375

    page.fill("#id_primary_color", "#c2410c")
    for frame in FRAMES:
        expect(button(page, frame)).to_have_css("background-color", "rgb(194, 65, 12)")
        expect(button(page, frame)).to_have_css("color", "rgb(255, 255, 255)")  # readable
    page.fill("#id_background_color", "rgb(255, 237, 213)")
    expect(page.frame_locator("#tm-layout-desktop").locator("table.outer")).to_have_css(
        "background-color", "rgb(255, 237, 213)")
    expect(page.frame_locator("#tm-layout-mobile-dark").locator("table.outer")).to_have_css(
        "background-color", DARK_BACKGROUND)
    expect(page.locator("#tm-layout-status")).to_have_text("Preview up to date.")
    for frame in FRAMES:  # every frame loaded its new document
        expect(page.frame_locator(frame).locator("a.button")).to_be_visible()
    # Chromium does not paint iframes outside the viewport: one tall enough for all four.
    page.set_viewport_size({"width": 1400, "height": 6000})
    page.wait_for_timeout(500)  # let the frames paint before the picture
    screenshot("layout-preview", docs=True, locator=page.locator("#tm-layout-preview"))
    assert Layout.objects.get(pk=layout.pk).primary_color == layout.primary_color  # unsaved
    assert page.locator("#tm-layout-desktop").get_attribute("sandbox") == ""


def test_a_colour_picker_sets_the_field_and_the_preview_follows(layout_form):
    page = layout_form
    picker = page.locator("#tm-picker-primary_color")
    expect(picker).to_have_value("#1a73e8")
    picker.fill("#15803d")
    expect(page.locator("#id_primary_color")).to_have_value("#15803d")
    for frame in FRAMES:
        expect(button(page, frame)).to_have_css("background-color", "rgb(21, 128, 61)")
    page.fill("#id_text_color", "#abc")  # typed: the picker follows
    expect(page.locator("#tm-picker-text_color")).to_have_value("#aabbcc")


def test_a_mistake_is_shown_with_its_line_and_the_last_preview_stays(layout_form):
    page = layout_form
    page.fill("#id_primary_color", "not-a-colour")
    expect(page.locator("#tm-layout-errors")).to_contain_text(
        "[primary_color] 'not-a-colour' is not a CSS colour")
    page.fill("#id_primary_color", "#1a73e8")
    expect(page.locator("#tm-layout-errors")).to_be_empty()
    page.fill("#id_css", "p { color: red; }\n@import url(https://example.com/x.css);")
    expect(page.locator("#tm-layout-errors")).to_contain_text(re.compile(r"\[css, line 2\]"))
    expect(page.locator("#tm-layout-status")).to_contain_text("last version that rendered")
    expect(page.frame_locator("#tm-layout-desktop").locator("h1")).to_be_visible()


def test_a_chosen_template_is_shown_in_the_layout(layout_form, layout):
    from tests.factories import ORDER_CONTEXT, make_template

    make_template(layout=layout, sample_context=ORDER_CONTEXT)
    page = layout_form
    page.reload()
    page.select_option("#tm-layout-sample", label="order_confirmation")
    expect(page.frame_locator("#tm-layout-mobile").locator("body")).to_contain_text(
        "Thanks for order A-1001.")


def test_scripts_in_the_layout_never_run(layout_form):
    """A layout's script (or an event handler) stays inert in the sandboxed iframes: it
    can neither run nor touch the admin page."""
    page = layout_form
    title = page.title()
    html = page.input_value("#id_html").replace(
        "{{ content }}",
        '<script>parent.document.title = "pwned"; document.write("<p id=ran>ran</p>")'
        '</script><img alt="" src="data:," onload="document.body.id = \'handler-ran\'">'
        "<p>after the script</p>{{ content }}")
    page.fill("#id_html", html)
    for frame in FRAMES:
        expect(page.frame_locator(frame).locator("body")).to_contain_text("after the script")
    page.wait_for_timeout(300)
    for frame in FRAMES:
        assert page.frame_locator(frame).locator("#ran").count() == 0
        assert page.frame_locator(frame).locator("#handler-ran").count() == 0
    assert page.title() == title


def test_a_logo_chosen_for_upload_is_previewed_before_saving(layout_form, layout):
    page = layout_form
    logo = page.frame_locator("#tm-layout-desktop").locator("img.logo")
    expect(logo).to_have_attribute("src", "https://cdn.example.com/logo.png")
    page.set_input_files("#id_logo_file", files=[
        {"name": "logo.png", "mimeType": "image/png", "buffer": PNG}])
    expect(logo).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    expect(page.frame_locator("#tm-layout-mobile-dark").locator("img.logo")).to_have_attribute(
        "src", re.compile(r"^data:image/png;base64,"))
    assert Layout.objects.get(pk=layout.pk).logo_file.name == ""  # nothing saved

    page.set_input_files("#id_logo_file", files=[
        {"name": "logo.png", "mimeType": "image/png", "buffer": b"<html>not an image"}])
    expect(page.locator("#tm-layout-errors")).to_contain_text(
        "[logo_file] The logo is not a PNG, JPEG, GIF or WebP image.")
    expect(page.locator("#tm-layout-status")).to_have_text(
        "The preview shows the last version that rendered.")


def test_the_footer_in_another_language_is_previewed_and_saved(layout_form, layout,
                                                                screenshot):
    from tests.factories import make_template

    make_template("welcome", layout=layout, language="fr")
    page = layout_form
    page.reload()
    # The language's fieldset starts collapsed (Django 5.1+: <details>; 4.2: a link).
    page.locator("fieldset.collapse summary, fieldset.collapse a.collapse-toggle").first.click()
    field = page.locator("#id_translation__fr__legal_text")
    field.fill("Vous recevez cet e-mail car vous avez commandé chez nous.")
    expect(page.locator("#tm-layout-language")).to_have_value("fr")  # followed the focus
    frame = page.frame_locator("#tm-layout-desktop")
    expect(frame.locator("body")).to_contain_text("Vous recevez cet e-mail car vous avez")
    expect(frame.locator("html")).to_have_attribute("lang", "fr")
    page.select_option("#tm-layout-language", "")
    expect(frame.locator("body")).to_contain_text("You get this email because you ordered")
    save = page.locator("input[name=_continue]")
    save.scroll_into_view_if_needed()
    save.click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert Layout.objects.get(pk=layout.pk).translations == {"fr": {
        "legal_text": "Vous recevez cet e-mail car vous avez commandé chez nous."}}
