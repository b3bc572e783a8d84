"""End to end: send() -> broker -> a real celery worker -> Anymail's Postmark backend -> ESP.

The ESP is tests/esp_server.py; the worker is a ``celery worker -P prefork`` subprocess
on the test PostgreSQL database.
"""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.esp_server import INACTIVE_RECIPIENT, INVALID_TO, refused
from tests.integration.helpers import (
    CONTEXT,
    WORKER_ESP_TIMEOUT,
    WORKER_MAIL_SETTINGS,
    send_committed,
    settle,
    wait_for_status,
)
from transactional_mail import send
from transactional_mail.models import Email

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_send_is_delivered_through_the_worker_and_the_esp(any_broker_worker, esp, welcome_template):
    """The email reaches the ESP once, rendered in its layout, and the row records the ESP's id."""
    with transaction.atomic():
        email = send("welcome", ["Ann <ann@example.com>"], CONTEXT)
        assert Email.objects.get(pk=email.pk).status == "queued"

    email = wait_for_status(email, "sent")

    [request] = esp.requests_for(email.pk)
    assert request.path == "/email"
    assert request.headers["X-Postmark-Server-Token"] == "test-token"
    body = request.json
    assert body["To"] == "Ann <ann@example.com>"
    assert body["From"] == "Shop <shop@example.com>"
    assert body["Subject"] == "Welcome, Ann"
    assert "Hello Ann" in body["HtmlBody"]
    assert "A-1001" in body["HtmlBody"]
    assert "#123456" in body["HtmlBody"]  # the layout's CSS, inlined
    assert "Hello Ann" in body["TextBody"]  # derived from the HTML
    assert body["Metadata"]["transactional_mail_id"] == str(email.pk)

    assert email.esp_name == "Postmark"
    assert email.esp_message_id == request.response["MessageID"]
    assert email.attempts == 1
    assert email.sent_at is not None
    assert email.outcome_uncertain is False
    assert email.subject == "Welcome, Ann"
    assert "Hello Ann" in email.html_body


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_then_success_delivers_exactly_once(
    redis_worker, esp, welcome_template, status
):
    """A 5xx is transient: the worker retries, and the ESP accepts the email once."""
    esp.add_response(status)
    email = send_committed("welcome", ["ann@example.com"], CONTEXT)

    email = wait_for_status(email, "sent")

    assert [r.status for r in esp.requests_for(email.pk)] == [status, 200]
    assert len(esp.accepted_for(email.pk)) == 1
    assert email.attempts == 2
    assert email.esp_message_id == esp.accepted_for(email.pk)[0].response["MessageID"]


def test_rate_limit_honours_retry_after(redis_worker, esp, welcome_template):
    """A 429 is retried no earlier than its Retry-After, then sent.

    Retry-After (2 s) is longer than the workers' first backoff (at most 1 s), so a retry
    that ignored the header would come too early.
    """
    esp.add_response(429, headers={"Retry-After": "2"})
    email = send_committed("welcome", ["ann@example.com"], CONTEXT)

    email = wait_for_status(email, "sent")

    first, second = esp.requests_for(email.pk)
    assert (first.status, second.status) == (429, 200)
    assert second.received_at - first.received_at >= 1.9
    assert email.attempts == 2


@pytest.mark.parametrize(
    ("answer", "reason"),
    [(INVALID_TO, "Invalid 'To' address"), (INACTIVE_RECIPIENT, "marked as inactive")],
    ids=["invalid-address", "inactive-recipient"],
)
def test_refused_recipient_fails_at_once(redis_worker, esp, welcome_template, answer, reason):
    """A 422 refusing the recipient is permanent: failed after one attempt, with the reason."""
    esp.add_response(422, refused(answer, "bad@example.com"))
    email = send_committed("welcome", ["bad@example.com"], CONTEXT)

    email = wait_for_status(email, "failed")

    assert email.attempts == 1
    assert reason in email.last_error
    settle(2 * WORKER_MAIL_SETTINGS["RETRY_BACKOFF"])
    assert len(esp.requests_for(email.pk)) == 1
    assert Email.objects.get(pk=email.pk).status == "failed"


@pytest.mark.parametrize("ambiguity", ["read-timeout", 502, 504])
def test_ambiguous_outcome_is_recorded_and_retried(redis_worker, esp, welcome_template, ambiguity):
    """A read timeout, 502 or 504 may hide an accepted email: flagged uncertain, then retried."""
    if ambiguity == "read-timeout":
        # Answer only after Anymail's REQUESTS_TIMEOUT in the worker has expired.
        esp.add_response(200, delay=WORKER_ESP_TIMEOUT + 5)
    else:
        esp.add_response(ambiguity)
    email = send_committed("welcome", ["ann@example.com"], CONTEXT)

    email = wait_for_status(email, "sent", timeout=WORKER_ESP_TIMEOUT + 30)

    assert email.outcome_uncertain is True
    assert email.attempts == 2
    assert len(esp.requests_for(email.pk)) == 2


def test_rolled_back_transaction_sends_nothing(redis_worker, esp, welcome_template):
    """An email queued in a transaction that rolls back leaves no row and reaches no ESP."""
    with pytest.raises(RuntimeError), transaction.atomic():
        send("welcome", ["rollback@example.com"], CONTEXT)
        raise RuntimeError("the order could not be saved")

    assert not Email.objects.exists()

    # The worker is alive and consuming: a later email goes through...
    marker = send_committed("welcome", ["marker@example.com"], CONTEXT)
    wait_for_status(marker, "sent")
    # ...and it is the only one the ESP saw.
    assert [request.json["To"] for request in esp.requests] == ["marker@example.com"]
