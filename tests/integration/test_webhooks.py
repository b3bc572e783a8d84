"""Tracking webhooks through Anymail's views, for emails a real worker sent.

Postmark's, and Amazon SES's: one SES bounce names several recipients under one event id.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from tests import esp_webhooks as hooks
from tests.esp_server import (
    bounce_event,
    click_event,
    delivery_event,
    open_event,
    post_webhook,
    spam_complaint_event,
)
from tests.integration.helpers import CONTEXT, send_committed, wait_for_status
from transactional_mail.models import Email, EmailEvent, Suppression

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sent_email(redis_worker, esp, welcome_template):
    email = send_committed("welcome", ["Ann <ann@example.com>"], CONTEXT)
    return wait_for_status(email, "sent")


def status_of(email) -> str:
    return Email.objects.get(pk=email.pk).status


@pytest.mark.parametrize("secret", ["hook:wrong", "nobody:secret", None])
def test_webhook_with_wrong_secret_changes_nothing(client, sent_email, secret):
    """A webhook that fails basic auth is refused (4xx) and writes nothing."""
    response = post_webhook(client, bounce_event(sent_email), secret=secret)

    assert 400 <= response.status_code < 500
    assert not EmailEvent.objects.exists()
    assert not Suppression.objects.exists()
    assert status_of(sent_email) == "sent"


@pytest.mark.parametrize("make_event", [delivery_event, bounce_event], ids=["delivery", "bounce"])
def test_same_webhook_twice_is_stored_once(client, sent_email, make_event):
    """A retried webhook (same payload; Postmark's Delivery has no event id) is one event."""
    payload = make_event(sent_email)
    for _ in range(2):
        assert post_webhook(client, payload).status_code == 200

    assert EmailEvent.objects.filter(email=sent_email).count() == 1


def test_delivery_webhook_moves_status_to_delivered(client, sent_email):
    """The event is matched to the email by ESP message id and metadata."""
    assert post_webhook(client, delivery_event(sent_email)).status_code == 200

    assert status_of(sent_email) == "delivered"
    event = EmailEvent.objects.get()
    assert event.email_id == sent_email.pk
    assert event.event_type == "delivered"
    assert event.esp_name == "Postmark"
    assert event.esp_message_id == sent_email.esp_message_id


def test_hard_bounce_suppresses_later_sends(client, esp, sent_email):
    """A hard bounce suppresses the address; the next email to it is `suppressed`, never sent."""
    assert post_webhook(client, bounce_event(sent_email, type="HardBounce")).status_code == 200

    assert status_of(sent_email) == "bounced"
    assert EmailEvent.objects.get(email=sent_email).hard_bounce is True
    suppression = Suppression.objects.get(address="ann@example.com")
    assert suppression.reason == "hard_bounce"

    again = send_committed("welcome", ["ANN@example.com"], CONTEXT)
    again = wait_for_status(again, "suppressed")
    assert esp.requests_for(again.pk) == []


def test_soft_bounce_does_not_suppress(client, sent_email):
    """Anymail calls a Postmark SoftBounce `bounced` too; the raw event says it is not hard."""
    assert post_webhook(client, bounce_event(sent_email, type="SoftBounce")).status_code == 200

    assert EmailEvent.objects.get(email=sent_email).hard_bounce is False
    assert not Suppression.objects.exists()


def test_spam_complaint_suppresses_the_address(client, sent_email):
    assert post_webhook(client, spam_complaint_event(sent_email)).status_code == 200

    assert status_of(sent_email) == "complained"
    assert Suppression.objects.get(address="ann@example.com").reason == "complaint"


def test_late_delivery_does_not_overwrite_a_bounce(client, sent_email):
    """Events arrive out of order: status only moves forward."""
    assert post_webhook(client, bounce_event(sent_email)).status_code == 200
    assert post_webhook(client, delivery_event(sent_email)).status_code == 200

    assert status_of(sent_email) == "bounced"
    assert EmailEvent.objects.filter(email=sent_email).count() == 2


def test_opens_and_clicks_are_events_not_status(client, sent_email):
    for event in (delivery_event(sent_email), open_event(sent_email), click_event(sent_email)):
        assert post_webhook(client, event).status_code == 200

    assert status_of(sent_email) == "delivered"
    types = set(EmailEvent.objects.filter(email=sent_email).values_list("event_type", flat=True))
    assert types == {"delivered", "opened", "clicked"}
    assert EmailEvent.objects.get(event_type="clicked").click_url == "https://example.com/orders/1"


@pytest.fixture
def webhooks(settings):
    settings.ANYMAIL = hooks.webhook_settings(settings.ANYMAIL)


def ses_bounce(email, recipients, **kwargs):
    return hooks.ses_event("Bounce", message_id=email.esp_message_id, recipients=recipients,
                           metadata={"transactional_mail_id": str(email.pk)}, **kwargs)


def test_ses_bounce_of_two_recipients_suppresses_both(client, esp, webhooks, redis_worker,
                                                       welcome_template):
    """One SES bounce for both recipients (one event id): both are stored and suppressed,
    and the worker sends neither of them the next email."""
    email = send_committed("welcome", ["ann@example.com", "Bob <bob@example.com>"], CONTEXT)
    email = wait_for_status(email, "sent")
    response = hooks.post(client, ses_bounce(email, ["ann@example.com", "bob@example.com"]))
    assert response.status_code == 200

    assert status_of(email) == "bounced"
    assert EmailEvent.objects.filter(email=email).count() == 2
    assert set(Suppression.objects.values_list("address", flat=True)) == {
        "ann@example.com", "bob@example.com"}

    again = send_committed("welcome", ["bob@example.com"], CONTEXT)
    wait_for_status(again, "suppressed")
    assert esp.requests_for(again.pk) == []


def test_concurrent_replays_store_each_recipient_once(client, esp, webhooks, redis_worker,
                                                      welcome_template):
    """SNS delivers one notification several times at once: each recipient's event is
    stored once, each address suppressed once, and no request fails (the database's
    unique constraint decides the race)."""
    email = send_committed("welcome", ["ann@example.com", "bob@example.com"], CONTEXT)
    email = wait_for_status(email, "sent")
    webhook = ses_bounce(email, ["ann@example.com", "bob@example.com"])
    start = threading.Barrier(6)
    codes = []

    def replay():
        from django.test import Client

        try:
            start.wait()
            codes.append(hooks.post(Client(), webhook).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=replay) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert codes == [200] * 6
    assert EmailEvent.objects.filter(email=email).count() == 2
    assert Suppression.objects.count() == 2
    assert status_of(email) == "bounced"
