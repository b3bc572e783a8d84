"""delivery.deliver(): claim, render, send through Anymail's Postmark backend, record.

Every test sends over real HTTP to the fake Postmark API in tests/esp_server.py.
"""

from __future__ import annotations

from unittest import mock

import pytest
from anymail.signals import post_send
from django.utils import timezone

import transactional_mail
from tests.esp_server import INACTIVE_RECIPIENT, INVALID_TO, refused
from tests.factories import ORDER_CONTEXT, make_layout, make_template
from transactional_mail import delivery
from transactional_mail.models import Email, EmailStatus, Suppression, SuppressionReason

pytestmark = pytest.mark.django_db


@pytest.fixture
def template():
    return make_template(layout=make_layout())


@pytest.fixture
def quick_retries(settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "RETRY_BACKOFF": 10,
                                   "RETRY_BACKOFF_MAX": 100, "MAX_ATTEMPTS": 3}


def queue(to="ann@example.com", **options) -> Email:
    return transactional_mail.send("order_confirmation", to, ORDER_CONTEXT, **options)


def make_due(email: Email) -> None:
    Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())


def test_sends_through_anymail_and_records_the_esp_answer(template, esp):
    email = queue(cc="cc@example.com", reply_to="help@example.com", tags=["orders"],
                  metadata={"order": "A-1001"}, headers={"X-Order": "A-1001"},
                  attachments=[("invoice.pdf", b"%PDF-1.4", "application/pdf")])
    outcome = delivery.deliver(email.pk)
    assert outcome.status == EmailStatus.SENT
    [request] = esp.requests
    message = request.json
    assert message["To"] == "ann@example.com"
    assert message["Cc"] == "cc@example.com"
    assert message["ReplyTo"] == "help@example.com"
    assert message["Subject"] == "Order A-1001 confirmed"
    assert "Hello Ann," in message["HtmlBody"]
    assert 'style="' in message["HtmlBody"]  # CSS inlined
    assert '<img src="https://cdn.example.com/logo.png"' in message["HtmlBody"]  # brand
    assert "Shop Ltd" in message["HtmlBody"]  # the layout's footer
    assert "Hello Ann," in message["TextBody"]
    assert message["Metadata"] == {"order": "A-1001", "transactional_mail_id": str(email.pk),
                                   "tm_template": "order_confirmation",
                                   "tm_category": "orders"}
    assert message["Tag"] == "orders"
    assert {"Name": "X-Order", "Value": "A-1001"} in message["Headers"]
    assert message["Attachments"][0]["Name"] == "invoice.pdf"

    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    assert email.esp_name == "Postmark"
    assert email.esp_message_id == request.response["MessageID"]
    assert email.attempts == 1
    assert email.sent_at is not None
    assert email.subject == "Order A-1001 confirmed"
    assert "Hello Ann," in email.html_body
    assert email.html_compressed != email.html_body.encode()  # stored compressed
    assert email.last_error == ""


def test_a_claimed_email_is_not_sent_again(template, esp):
    email = queue()
    assert delivery.deliver(email.pk).status == EmailStatus.SENT
    assert delivery.deliver(email.pk).status is None
    assert len(esp.requests) == 1
    assert Email.objects.get(pk=email.pk).attempts == 1


def test_an_email_not_yet_due_is_not_claimed(template, esp):
    email = queue(delay="1h")
    assert delivery.deliver(email.pk).status is None
    assert esp.requests == []
    assert Email.objects.get(pk=email.pk).status == EmailStatus.SCHEDULED


def test_transient_500_is_retried_later_then_sent_once(template, esp, quick_retries):
    esp.add_response(500)
    email = queue()
    outcome = delivery.deliver(email.pk)
    email.refresh_from_db()
    assert outcome.status == EmailStatus.QUEUED
    assert 5 <= outcome.retry_in <= 10  # first backoff, jittered in its upper half
    assert email.status == EmailStatus.QUEUED
    assert email.next_attempt_at > timezone.now()
    assert "[transient]" in email.last_error and "500" in email.last_error

    make_due(email)
    assert delivery.deliver(email.pk).status == EmailStatus.SENT
    assert esp.accepted_counts() == {str(email.pk): 1}
    assert Email.objects.get(pk=email.pk).attempts == 2


def test_429_honours_retry_after(template, esp, quick_retries):
    esp.add_response(429, {"ErrorCode": 429, "Message": "Rate limit"},
                     headers={"Retry-After": "90"})
    email = queue()
    outcome = delivery.deliver(email.pk)
    assert outcome.retry_in >= 90


@pytest.mark.parametrize("body", [INVALID_TO, INACTIVE_RECIPIENT])
def test_422_refused_recipient_fails_at_once_without_retry(template, esp, body):
    esp.add_response(422, refused(body, "ann@example.com"))
    email = queue()
    outcome = delivery.deliver(email.pk)
    email.refresh_from_db()
    assert outcome.status == EmailStatus.FAILED
    assert outcome.retry_in is None
    assert email.status == EmailStatus.FAILED
    assert email.attempts == 1
    assert "[permanent]" in email.last_error
    assert body["Message"].split(":")[0].split(".")[0] in email.last_error
    assert len(esp.requests) == 1


def test_invalid_address_fails_without_an_esp_call(template, esp):
    email = queue(to="not an address")
    assert delivery.deliver(email.pk).status == EmailStatus.FAILED
    assert esp.requests == []
    email.refresh_from_db()
    assert "AnymailInvalidAddress" in email.last_error


def test_no_recipients_fails_with_the_reason(template, esp):
    email = queue(to=[])
    assert delivery.deliver(email.pk).status == EmailStatus.FAILED
    assert esp.requests == []
    email.refresh_from_db()
    assert email.last_error == "[permanent] No recipient: the email has no 'to' address."
    assert email.attempts == 1


@pytest.mark.parametrize("status", [502, 504])
def test_ambiguous_gateway_errors_are_flagged_and_retried(template, esp, quick_retries, status):
    esp.add_response(status)
    email = queue()
    outcome = delivery.deliver(email.pk)
    email.refresh_from_db()
    assert outcome.status == EmailStatus.QUEUED
    assert email.outcome_uncertain is True
    assert "[ambiguous]" in email.last_error
    first_error = email.last_error
    make_due(email)
    assert delivery.deliver(email.pk).status == EmailStatus.SENT
    email.refresh_from_db()
    assert email.outcome_uncertain is True  # the ESP may hold two copies: say why
    assert email.last_error == f"Sent. An earlier attempt's outcome is unknown: {first_error}"


def test_read_timeout_is_ambiguous(template, esp, settings, quick_retries):
    settings.ANYMAIL = {**settings.ANYMAIL, "REQUESTS_TIMEOUT": 0.3}
    esp.add_response(200, delay=2)
    email = queue()
    assert delivery.deliver(email.pk).status == EmailStatus.QUEUED
    email.refresh_from_db()
    assert email.outcome_uncertain is True
    assert "[ambiguous]" in email.last_error


def test_connection_refused_is_transient_not_ambiguous(template, settings, quick_retries):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_API_URL": "http://127.0.0.1:9/"}
    email = queue()
    assert delivery.deliver(email.pk).status == EmailStatus.QUEUED
    email.refresh_from_db()
    assert email.outcome_uncertain is False
    assert "[transient]" in email.last_error


def test_gives_up_after_max_attempts(template, esp, quick_retries):
    email = queue()
    for _ in range(3):
        esp.add_response(503)
        make_due(email)
        outcome = delivery.deliver(email.pk)
    email.refresh_from_db()
    assert outcome.status == EmailStatus.FAILED
    assert email.attempts == 3
    assert email.last_error.startswith("Gave up after 3 attempts.")
    assert len(esp.requests) == 3


def test_a_raising_post_send_receiver_does_not_cause_a_resend(template, esp):
    """Once the ESP accepted the email, its id is recorded whatever fails afterwards."""
    def explode(sender, message, status, esp_name, **kwargs):
        raise RuntimeError("analytics is down")

    post_send.connect(explode, dispatch_uid="test-explode")
    try:
        email = queue()
        outcome = delivery.deliver(email.pk)
    finally:
        post_send.disconnect(dispatch_uid="test-explode")
    email.refresh_from_db()
    assert outcome.status == EmailStatus.SENT
    assert email.esp_message_id == esp.requests[0].response["MessageID"]
    assert "analytics is down" in email.last_error
    assert delivery.deliver(email.pk).status is None
    assert len(esp.requests) == 1


def test_suppressed_address_gets_a_suppressed_row_and_no_esp_call(template, esp):
    Suppression.objects.create(address="Ann@Example.com", reason=SuppressionReason.HARD_BOUNCE)
    email = queue(to="Ann <ann@example.com>")
    assert delivery.deliver(email.pk).status == EmailStatus.SUPPRESSED
    assert esp.requests == []
    email.refresh_from_db()
    assert email.to == ["Ann <ann@example.com>"]
    assert email.last_error == "Suppressed (ann@example.com: hard bounce)."


def test_suppressed_copy_recipient_is_dropped_and_the_rest_sent(template, esp):
    Suppression.objects.create(address="cc@example.com", reason=SuppressionReason.COMPLAINT)
    email = queue(cc=["cc@example.com", "other@example.com"])
    assert delivery.deliver(email.pk).status == EmailStatus.SENT
    assert esp.requests[0].json["Cc"] == "other@example.com"
    email.refresh_from_db()
    assert email.cc == ["cc@example.com", "other@example.com"]  # the log keeps who was meant
    assert "cc@example.com: spam complaint" in email.last_error


def test_an_unexpected_error_fails_the_attempt_instead_of_leaving_it_sending(template, esp,
                                                                            quick_retries):
    email = queue()
    with mock.patch("transactional_mail.delivery.build_message",
                    side_effect=RuntimeError("boom")):
        outcome = delivery.deliver(email.pk)
    assert outcome.status == EmailStatus.QUEUED
    email.refresh_from_db()
    assert "RuntimeError: boom" in email.last_error
    assert esp.requests == []


def test_category_unsubscribe_only_blocks_that_category(template, esp):
    Suppression.objects.create(address="ann@example.com", category="newsletter",
                               reason=SuppressionReason.UNSUBSCRIBE)
    email = queue()
    assert delivery.deliver(email.pk).status == EmailStatus.SENT


def test_a_webhook_status_written_during_the_send_is_kept(template, esp):
    """If a 'delivered' webhook lands before the worker records 'sent', it stays delivered."""
    email = queue()

    def deliver_first(sender, message, status, esp_name, **kwargs):
        Email.objects.filter(pk=email.pk).update(status=EmailStatus.DELIVERED)

    post_send.connect(deliver_first, dispatch_uid="test-deliver-first")
    try:
        outcome = delivery.deliver(email.pk)
    finally:
        post_send.disconnect(dispatch_uid="test-deliver-first")
    email.refresh_from_db()
    assert outcome.status == EmailStatus.DELIVERED
    assert email.status == EmailStatus.DELIVERED
    assert email.esp_message_id


def test_subject_is_one_line_whatever_the_context_holds(template, esp):
    email = transactional_mail.send("order_confirmation", "ann@example.com",
                                    {**ORDER_CONTEXT, "order": {"number": "A\r\nBcc: x@y.z"}})
    delivery.deliver(email.pk)
    subject = esp.requests[0].json["Subject"]
    assert "\n" not in subject and "\r" not in subject
    assert subject == "Order A Bcc: x@y.z confirmed"


def test_first_attempt_uses_the_published_template_and_retries_keep_it(template, esp,
                                                                         quick_retries):
    """A published staff fix reaches emails still queued; a retry renders exactly like the
    attempt, whatever was published since."""
    email = queue()
    template.subject = "Edited while queued: {{ order.number }}"
    template.save()
    template.publish()
    esp.add_response(500)
    delivery.deliver(email.pk)
    email.refresh_from_db()
    assert email.template_revision == template.published_revision
    assert email.layout_revision == template.layout.published_revision
    template.subject = "Edited again"
    template.save()
    template.publish()
    make_due(email)
    delivery.deliver(email.pk)
    assert [r.json["Subject"] for r in esp.requests] == ["Edited while queued: A-1001"] * 2


def test_a_draft_does_not_reach_customers_until_published(template, esp):
    """Saving records a draft; emails render the published revision (and its layout's
    published revision) until the draft is published."""
    published = template.current_revision
    template.subject = "Half-finished {{ order.number }}"
    template.save()
    template.layout.footer_html = "Draft footer"
    template.layout.save()
    assert template.has_unpublished_changes and template.layout.has_unpublished_changes
    delivery.deliver(queue().pk)
    assert esp.requests[-1].json["Subject"] == "Order A-1001 confirmed"
    assert "Draft footer" not in esp.requests[-1].json["HtmlBody"]
    assert Email.objects.get().template_revision == published
    template.publish()
    template.layout.publish()
    delivery.deliver(queue().pk)
    assert esp.requests[-1].json["Subject"] == "Half-finished A-1001"
    assert "Draft footer" in esp.requests[-1].json["HtmlBody"]


def test_a_template_never_published_fails_permanently_saying_so(esp):
    make_template(publish=False)
    email = queue()
    assert delivery.deliver(email.pk).status == EmailStatus.FAILED
    email.refresh_from_db()
    assert "'order_confirmation'" in email.last_error
    assert "has no published revision" in email.last_error
    assert email.attempts == 1 and esp.requests == []


def test_an_unpublished_language_variant_falls_back_to_a_published_one(esp):
    """A French variant still in draft is skipped: French emails get the default."""
    make_template(subject="Default")
    make_template(language="fr", subject="Commande", publish=False)
    delivery.deliver(queue(language="fr").pk)
    assert esp.requests[0].json["Subject"] == "Default"


def test_a_template_whose_layout_was_never_published_fails_saying_so(esp):
    make_template(layout=make_layout(publish=False))
    email = queue()
    assert delivery.deliver(email.pk).status == EmailStatus.FAILED
    email.refresh_from_db()
    assert "uses a layout with no published revision (Brand)" in email.last_error


def test_the_published_revisions_layout_is_used_not_the_drafts(esp):
    """A draft that switches layouts does not move published emails to the new layout."""
    template = make_template(layout=make_layout())
    template.layout = make_layout(name="Other", footer_html="Other Ltd")
    template.save()
    delivery.deliver(queue().pk)
    assert "Shop Ltd" in esp.requests[0].json["HtmlBody"]


def test_language_fallback_picks_the_regional_parent(esp):
    make_template(subject="Default")
    french = make_template(language="fr", subject="Commande {{ order.number }}")
    email = queue(language="fr-CA")
    delivery.deliver(email.pk)
    email.refresh_from_db()
    assert email.template_revision == french.current_revision
    assert esp.requests[0].json["Subject"] == "Commande A-1001"


def test_each_email_renders_in_its_own_language(esp):
    """Delivery renders under the email's language: French and German dates."""
    make_template(subject="{{ d|as_datetime|date }}", html="<p>{{ d|as_datetime|date }}</p>")
    for language in ("fr", "de", ""):
        delivery.deliver(transactional_mail.send(
            "order_confirmation", "a@example.com", {"d": "2026-11-29"}, language=language).pk)
    assert [r.json["Subject"] for r in esp.requests] == [
        "29 novembre 2026", "29. November 2026", "Nov. 29, 2026"]


def test_template_deleted_before_delivery_fails_with_the_reason(template, esp):
    email = queue()
    template.delete()
    assert delivery.deliver(email.pk).status == EmailStatus.FAILED
    email.refresh_from_db()
    assert "No email template with key 'order_confirmation'" in email.last_error
    assert esp.requests == []


def test_smtp_backend_works_too(template, settings, mailoutbox):
    """Any Django email backend can be used; non-Anymail backends have no message id."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    email = queue()
    assert delivery.deliver(email.pk).status == EmailStatus.SENT
    assert mailoutbox[-1].subject == "Order A-1001 confirmed"
    email.refresh_from_db()
    assert email.esp_name == "django.core.mail.backends.locmem"
