"""Tracking webhooks (Anymail's Postmark view) -> EmailEvent, status, suppressions."""

from __future__ import annotations

import pytest

import transactional_mail
from tests.esp_server import (
    bounce_event,
    click_event,
    delivery_event,
    open_event,
    post_webhook,
    spam_complaint_event,
)
from tests.factories import ORDER_CONTEXT, make_template
from transactional_mail import delivery
from transactional_mail.models import Email, EmailEvent, EmailStatus, Suppression

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_email(esp):
    make_template()
    email = transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT,
                                    category="orders")
    delivery.deliver(email.pk)
    email.refresh_from_db()
    assert email.status == EmailStatus.SENT
    return email


def status_of(email) -> str:
    return Email.objects.get(pk=email.pk).status


def test_delivery_event_moves_sent_to_delivered(client, sent_email):
    assert post_webhook(client, delivery_event(sent_email)).status_code == 200
    assert status_of(sent_email) == EmailStatus.DELIVERED
    [event] = sent_email.events.all()
    assert event.event_type == "delivered"
    assert event.recipient == "ann@example.com"
    assert event.event_id.startswith("sha256:")  # Postmark delivery events carry no id
    assert event.raw["RecordType"] == "Delivery"


def test_the_same_webhook_twice_is_stored_once(client, sent_email):
    payload = bounce_event(sent_email)
    post_webhook(client, payload)
    post_webhook(client, payload)
    delivered = delivery_event(sent_email)
    post_webhook(client, delivered)
    post_webhook(client, delivered)
    assert EmailEvent.objects.filter(email=sent_email).count() == 2


def test_wrong_secret_changes_nothing(client, sent_email):
    response = post_webhook(client, bounce_event(sent_email), secret="hook:wrong")
    assert response.status_code in (400, 401, 403)
    assert EmailEvent.objects.count() == 0
    assert Suppression.objects.count() == 0
    assert status_of(sent_email) == EmailStatus.SENT


def test_hard_bounce_suppresses_the_address_and_later_sends(client, sent_email, esp):
    post_webhook(client, bounce_event(sent_email, type="HardBounce"))
    assert status_of(sent_email) == EmailStatus.BOUNCED
    suppression = Suppression.objects.get(address="ann@example.com")
    assert suppression.category == ""
    assert suppression.reason == "hard_bounce"
    assert suppression.email_id == sent_email.pk

    esp.reset()
    again = transactional_mail.send("order_confirmation", "Ann@Example.com", ORDER_CONTEXT)
    assert delivery.deliver(again.pk).status == EmailStatus.SUPPRESSED
    assert esp.requests == []


def test_soft_bounce_is_not_a_hard_bounce(client, sent_email):
    """Anymail normalises Postmark's SoftBounce to 'bounced'; the raw Type says otherwise."""
    post_webhook(client, bounce_event(sent_email, type="SoftBounce"))
    assert Suppression.objects.count() == 0
    assert status_of(sent_email) == EmailStatus.DEFERRED
    event = EmailEvent.objects.get()
    assert event.event_type == "bounced"
    assert event.hard_bounce is False


def test_complaint_suppresses_and_is_the_final_status(client, sent_email):
    post_webhook(client, spam_complaint_event(sent_email))
    assert status_of(sent_email) == EmailStatus.COMPLAINED
    assert Suppression.objects.get().reason == "complaint"


def test_late_delivered_never_overwrites_bounced(client, sent_email):
    post_webhook(client, bounce_event(sent_email))
    post_webhook(client, delivery_event(sent_email))
    assert status_of(sent_email) == EmailStatus.BOUNCED
    assert sent_email.events.count() == 2


def test_out_of_order_events_end_on_the_furthest_status(client, sent_email):
    post_webhook(client, open_event(sent_email))
    post_webhook(client, delivery_event(sent_email))
    post_webhook(client, bounce_event(sent_email, type="SoftBounce"))  # deferred < delivered
    assert status_of(sent_email) == EmailStatus.DELIVERED


def test_opens_and_clicks_are_engagement_not_status(client, sent_email):
    post_webhook(client, open_event(sent_email))
    post_webhook(client, click_event(sent_email, url="https://shop.example.com/o/1"))
    assert status_of(sent_email) == EmailStatus.SENT
    assert list(sent_email.events.values_list("event_type", flat=True)) == ["opened", "clicked"]
    assert sent_email.events.get(event_type="clicked").click_url == "https://shop.example.com/o/1"


def test_webhook_reconciles_an_uncertain_send(client, esp, settings):
    """A timed-out send queued for retry is marked delivered by the webhook, not resent."""
    make_template()
    email = transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT)
    esp.add_response(504)
    delivery.deliver(email.pk)
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED and email.outcome_uncertain
    post_webhook(client, delivery_event(email, message_id="esp-id-from-webhook"))
    email.refresh_from_db()
    assert email.status == EmailStatus.DELIVERED
    assert email.esp_message_id == "esp-id-from-webhook"
    Email.objects.filter(pk=email.pk).update(next_attempt_at=email.created_at)
    assert delivery.deliver(email.pk).status is None
    assert len(esp.requests) == 1


def test_event_for_an_unknown_message_is_kept_without_an_email(client):
    payload = delivery_event(None, recipient="x@example.com", message_id="unknown-id")
    assert post_webhook(client, payload).status_code == 200
    event = EmailEvent.objects.get()
    assert event.email is None
    assert event.esp_message_id == "unknown-id"


def test_email_found_by_message_id_without_metadata(client, sent_email):
    payload = delivery_event(sent_email)
    payload["Metadata"] = {}
    post_webhook(client, payload)
    assert status_of(sent_email) == EmailStatus.DELIVERED
