"""The template editor in a real browser: the live preview follows typing, the missing
variable warning appears, and a test send reaches the (fake) ESP."""

from __future__ import annotations

import re

import pytest

from tests.browser.admin_pages import expect, log_in, type_in
from tests.factories import PAID_ORDER_TRIGGER
from tests.testapp.models import Customer, Order
from transactional_mail import delivery
from transactional_mail.models import Email, EmailTemplate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def editor(page, template):
    """The template's change page, logged in as staff with an address, preview loaded."""
    log_in(page, "staff")
    page.goto(f"/admin/transactional_mail/emailtemplate/{template.pk}/change/")
    expect(page.locator("#tm-editor")).to_be_visible()
    expect(page.frame_locator("#tm-frame-desktop").locator("body")).to_contain_text("Hello Ann")
    return page


def test_the_preview_refreshes_while_typing(editor, template, screenshot):
    assert editor.locator(".field-html .CodeMirror-linenumber").count() > 0  # line numbers
    expect(editor.locator("#tm-subject")).to_have_text("Order A-1001 confirmed")
    expect(editor.frame_locator("#tm-frame-mobile").locator("body")).to_contain_text("Shop Ltd")
    expect(editor.locator("#tm-text")).to_contain_text("Hello Ann, thanks for order A-1001.")

    type_in(editor, "html", "<p>Welcome aboard, {{ customer.name }}!</p>")
    type_in(editor, "subject", " - thank you")
    expect(editor.frame_locator("#tm-frame-desktop").locator("body")).to_contain_text(
        "Welcome aboard, Ann!")
    expect(editor.frame_locator("#tm-frame-mobile").locator("body")).to_contain_text(
        "Welcome aboard, Ann!")
    expect(editor.locator("#tm-subject")).to_have_text("Order A-1001 confirmed - thank you")
    assert editor.locator("#tm-frame-desktop").bounding_box()["width"] == pytest.approx(800, 3)
    assert editor.locator("#tm-frame-mobile").bounding_box()["width"] == pytest.approx(375, 3)
    screenshot("editor-fields", docs=True, locator=editor.locator("fieldset.module").first)
    editor.wait_for_timeout(300)  # let the frames paint before the picture
    screenshot("editor-preview", docs=True, locator=editor.locator("#tm-editor"))
    # Nothing was saved, and the iframe runs nothing.
    assert EmailTemplate.objects.get(pk=template.pk).html == template.html
    assert editor.locator("#tm-frame-desktop").get_attribute("sandbox") == ""


def test_the_missing_variable_warning_appears(editor, screenshot):
    warnings = editor.locator("#tm-warnings")
    expect(warnings).not_to_contain_text("coupon")
    type_in(editor, "html", '<p>Your code: {{ coupon.code }}</p><img src="http://x.test/a.png">')
    expect(warnings).to_contain_text("{{ coupon.code }} is not in the sample context")
    expect(warnings).to_contain_text("An image has no alt text")
    expect(warnings).to_contain_text("uses http:")
    screenshot("editor-warnings", docs=True, locator=editor.locator("#tm-editor"))

    # Editing the sample context (JSON) is previewed too, and a mistake in it is named.
    editor.fill("#id_sample_context", '{"order": ')
    expect(editor.locator("#tm-errors")).to_contain_text("not valid JSON")
    editor.fill("#id_sample_context", '{"coupon": {"code": "SAVE10"}}')
    expect(editor.frame_locator("#tm-frame-desktop").locator("body")).to_contain_text(
        "Your code: SAVE10")
    expect(warnings).not_to_contain_text("coupon.code")
    expect(editor.locator("#tm-variables")).to_contain_text("coupon.code")


def test_a_syntax_error_is_shown_with_its_line(editor):
    type_in(editor, "html", "\n{% if %}")
    expect(editor.locator("#tm-errors")).to_contain_text(re.compile(r"\[html, line \d+\]"))
    expect(editor.locator("#tm-status")).to_contain_text("last version that rendered")


def test_the_test_send_reaches_the_esp(editor, template, esp, enqueued, screenshot):
    expect(editor.locator("#tm-test-to")).to_have_value("staff@example.com")
    button = editor.locator("#tm-test-button")
    # Scrolled first: on Django 6.0's admin a click that scrolls the page itself missed.
    button.scroll_into_view_if_needed()
    button.click()
    expect(editor.locator("#tm-test-result")).to_contain_text("Test email queued to "
                                                              "staff@example.com")
    screenshot("editor-test-send", docs=True, locator=editor.locator("#tm-test-send"))
    email = Email.objects.get()
    assert email.tags == ["test"] and email.metadata["test"] == "1"
    assert delivery.deliver(email.pk).status == "sent"
    [request] = esp.requests_for(email.pk)
    assert request.json["To"] == "staff@example.com"
    assert request.json["Subject"] == "Order A-1001 confirmed"
    assert "Shop Ltd" in request.json["HtmlBody"]


def test_scripts_in_the_preview_never_run(editor):
    """A template's script (or an event handler) stays inert in the sandboxed iframe: it
    can neither run nor touch the admin page."""
    title = editor.title()
    type_in(editor, "html", '<script>parent.document.title = "pwned"; '
            'document.write("<p id=ran>ran</p>")</script>'
            '<img alt="" src="data:," onload="document.body.id = \'handler-ran\'">'
            "<p>after the script</p>")
    frame = editor.frame_locator("#tm-frame-desktop")
    expect(frame.locator("body")).to_contain_text("after the script")
    editor.wait_for_timeout(300)
    assert frame.locator("#ran").count() == 0
    assert frame.locator("#handler-ran").count() == 0
    assert editor.title() == title


def test_without_javascript_the_form_is_plain_and_still_saves(chromium, live_server, template):
    context = chromium.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        log_in(page, "plain")
        page.goto(f"/admin/transactional_mail/emailtemplate/{template.pk}/change/")
        expect(page.locator("#tm-editor")).to_be_hidden()
        expect(page.locator("textarea#id_html")).to_be_visible()
        page.fill("textarea#id_subject", "Plain {{ order.number }}")
        page.click("input[name=_save]")
        expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    finally:
        context.close()
    assert EmailTemplate.objects.get(pk=template.pk).subject == "Plain {{ order.number }}"


def test_a_real_object_is_picked_and_previewed(page, template, use_triggers, screenshot):
    """Staff search the trigger's objects by id, pick one, and the preview renders the
    context that trigger builds for it; back to the sample context when unpicked."""
    use_triggers(paid=PAID_ORDER_TRIGGER)
    zoe = Customer.objects.create(name="Zoë", email="zoe@example.com")
    Order.objects.create(customer=zoe, number="B-1", status="paid")
    order = Order.objects.create(customer=zoe, number="B-2", status="paid")
    template.subject = "Order {{ number }}"
    template.html = "<p>{{ number }} for {{ customer.name }}</p>"
    template.text = "Order {{ number }} for {{ customer.name }}."
    template.save()
    log_in(page, "staff")
    page.goto(f"/admin/transactional_mail/emailtemplate/{template.pk}/change/")
    frame = page.frame_locator("#tm-frame-desktop").locator("body")
    expect(frame).to_contain_text("for Ann")  # the sample context: no "number" in it
    expect(page.locator("#tm-warnings")).to_contain_text("{{ number }} is not in the sample")

    select = page.locator("#tm-object-select")
    expect(select.locator("option")).to_have_count(3)  # none + the two newest orders
    page.fill("#tm-object-q", str(order.pk))
    expect(select.locator("option")).to_have_count(2)
    select.select_option(str(order.pk))
    expect(frame).to_contain_text("B-2 for Zoë")
    expect(page.locator("#tm-subject")).to_have_text("Order B-2")
    expect(page.locator("#tm-text")).to_contain_text("Order B-2 for Zoë.")
    expect(page.locator("#tm-warnings")).not_to_contain_text("{{ number }}")
    expect(page.locator("#tm-variables")).to_contain_text("customer.name")
    screenshot("editor-real-object", docs=True, locator=page.locator("#tm-editor"))

    select.select_option("")
    expect(frame).to_contain_text("for Ann")
