"""Drafts, publishing and history in a real browser: a saved draft does not reach customers
until it is published; two revisions are compared (escaped) and an old one restored."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

import transactional_mail
from tests.browser.admin_pages import expect, log_in, type_in
from tests.factories import ORDER_CONTEXT
from transactional_mail import delivery
from transactional_mail.models import EmailTemplate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def customer_subject(esp, address: str) -> str:
    """Queue an email as the site would, deliver it, and return the subject the ESP got."""
    email = transactional_mail.send("order_confirmation", address, ORDER_CONTEXT)
    assert delivery.deliver(email.pk).status == "sent"
    [request] = esp.requests_for(email.pk)
    return request.json["Subject"]


def test_a_draft_reaches_customers_only_once_published(page, template, esp, enqueued,
                                                       screenshot):
    log_in(page, "staff")
    change = f"/admin/transactional_mail/emailtemplate/{template.pk}/change/"
    page.goto(change)
    expect(page.locator("#tm-subject")).to_have_text("Order A-1001 confirmed")
    type_in(page, "subject", " - thank you!")
    expect(page.locator("#tm-subject")).to_have_text("Order A-1001 confirmed - thank you!")
    page.fill("#id_revision_note", "A warmer subject")
    save = page.locator("input[name=_continue]")
    save.scroll_into_view_if_needed()  # a click that scrolls the page itself can miss
    save.click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    expect(page.locator("#content-main")).to_contain_text(
        "Draft #2 has unpublished changes; emails use revision #1.")

    # Saved, not published: customers still get the published subject.
    assert customer_subject(esp, "ann@example.com") == "Order A-1001 confirmed"

    publish = page.get_by_role("button", name="Publish draft #2")
    expect(publish).to_be_visible()
    page.set_viewport_size({"width": 1100, "height": 330})  # the top of the form
    page.evaluate("window.scrollTo(0, 0)")
    screenshot("publish-draft", docs=True)
    page.set_viewport_size({"width": 1400, "height": 2400})
    publish.click()
    expect(page.locator(".messagelist")).to_contain_text("revision #2 is published")
    expect(page.locator("#content-main")).to_contain_text("Revision #2 is published.")
    expect(page.get_by_role("button", name="Publish draft #2")).to_have_count(0)

    assert customer_subject(esp, "bob@example.com") == "Order A-1001 confirmed - thank you!"


def test_compare_two_revisions_and_restore_an_old_one(page, template, screenshot):
    old_html = template.html
    template.html = old_html.replace("<p>Thanks", "<p><b>Thank you</b> for")
    template.revision_note = "Bolder thanks"
    template.revision_author = User.objects.create_user("mia", "mia@example.com")
    template.save()
    log_in(page, "staff")
    page.goto(f"/admin/transactional_mail/emailtemplate/{template.pk}/change/")
    page.get_by_role("link", name="Revisions").click()
    rows = page.locator("#revisions tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#revision-2")).to_contain_text("Bolder thanks")
    expect(page.locator("#revision-2")).to_contain_text("mia")
    expect(page.locator("#revision-1")).to_contain_text("published")
    screenshot("history-revisions", docs=True, locator=page.locator("#content"))

    page.get_by_role("button", name="Compare the two chosen revisions").click()
    expect(page.locator("#content h1")).to_contain_text("revision #1 against #2")
    expect(page.locator("#content-main")).to_contain_text("No change.")  # the subject
    html_diff = page.locator("table.diff").nth(0)
    expect(html_diff).to_contain_text("<b>Thank you</b>")  # the markup shown as text
    assert page.locator("table.diff b").count() == 0  # never interpreted
    expect(html_diff.locator(".diff_chg, .diff_add").first).to_be_visible()
    screenshot("history-diff", docs=True, locator=page.locator("#content"))

    page.go_back()
    page.locator("#revision-1").get_by_role("button", name="Restore as new draft").click()
    expect(page.locator(".messagelist")).to_contain_text(
        "Revision #1 is restored as draft #3; publish it to send it.")
    template = EmailTemplate.objects.get(pk=template.pk)
    assert template.current_revision.number == 3
    assert template.current_revision.html == old_html
    assert template.published_revision.number == 1
    assert template.current_revision.note == "Restored from revision #1."


def test_publishing_a_draft_with_a_missing_variable_warns(page, template, screenshot):
    """The publish happens, and the warning names the variable, its part and its line."""
    log_in(page, "staff")
    page.goto(f"/admin/transactional_mail/emailtemplate/{template.pk}/change/")
    type_in(page, "subject", " {{ cupon.code }}")
    expect(page.locator("#tm-warnings")).to_contain_text("{{ cupon.code }} is not in")
    save = page.locator("input[name=_continue]")
    save.scroll_into_view_if_needed()
    save.click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    page.get_by_role("button", name="Publish draft #2").click()
    messages = page.locator(".messagelist")
    expect(messages.locator(".success")).to_contain_text("revision #2 is published")
    expect(messages.locator(".warning")).to_contain_text(
        "uses a variable that its sample context does not have: {{ cupon.code }} "
        "(subject, line 1)")
    screenshot("publish-warning", docs=True, locator=messages)
    assert EmailTemplate.objects.get(pk=template.pk).published_revision.number == 2
