"""The fake Postmark (tests/esp_server.py) speaks Postmark as Anymail's real backend expects.

No services needed: Anymail's Postmark backend in this process posts to the fake server,
and the webhook payloads go through Anymail's own Postmark tracking view.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests
from anymail.exceptions import AnymailRecipientsRefused, AnymailRequestsAPIError
from anymail.message import AnymailMessage
from anymail.signals import tracking

from tests.esp_server import (
    INACTIVE_RECIPIENT,
    INVALID_TO,
    bounce_event,
    click_event,
    delivery_event,
    open_event,
    post_webhook,
    refused,
    spam_complaint_event,
)


def message(to="Ann <ann@example.com>", **kwargs) -> AnymailMessage:
    msg = AnymailMessage(
        subject="Hello", body="text", from_email="shop@example.com", to=[to], **kwargs
    )
    msg.attach_alternative("<p>html</p>", "text/html")
    msg.metadata = {"transactional_mail_id": "42"}
    return msg


def test_accepts_like_postmark(esp):
    """Postmark's 200 answer: Anymail reads its MessageID; the request is recorded."""
    msg = message()
    assert msg.send() == 1

    [request] = esp.requests
    assert request.path == "/email"
    assert request.json["To"] == "Ann <ann@example.com>"
    assert request.json["HtmlBody"] == "<p>html</p>"
    assert request.json["Metadata"] == {"transactional_mail_id": "42"}
    assert request.accepted
    assert msg.anymail_status.message_id == request.response["MessageID"]
    assert msg.anymail_status.status == {"sent"}
    assert esp.accepted_counts() == {"42": 1}


def test_batch_send(esp):
    msg = message()
    msg.to = ["ann@example.com", "bob@example.com"]
    msg.merge_metadata = {"ann@example.com": {"n": "1"}, "bob@example.com": {"n": "2"}}
    msg.send()

    [request] = esp.requests
    assert request.path == "/email/batch"
    assert len(request.messages) == 2
    assert len(msg.anymail_status.message_id) == 2


@pytest.mark.parametrize("answer", [INVALID_TO, INACTIVE_RECIPIENT])
def test_422_is_recipients_refused(esp, answer):
    esp.add_response(422, refused(answer, "bad@example.com"))
    with pytest.raises(AnymailRecipientsRefused) as excinfo:
        message(to="bad@example.com").send()
    # Anymail's message is generic; the ESP's reason is on the response.
    assert excinfo.value.response.status_code == 422
    assert excinfo.value.response.json()["Message"] == answer["Message"].format(
        address="bad@example.com"
    )
    assert not esp.requests[0].accepted


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_error_status_is_api_error(esp, status):
    esp.add_response(status, headers={"Retry-After": "7"})
    with pytest.raises(AnymailRequestsAPIError) as excinfo:
        message().send()
    assert excinfo.value.status_code == status
    assert excinfo.value.response.headers["Retry-After"] == "7"
    # The next request gets the default acceptance.
    assert message().send() == 1


def test_scripted_answer_for_one_recipient(esp):
    esp.add_response(500, to="bob@example.com")
    assert message(to="ann@example.com").send() == 1
    with pytest.raises(AnymailRequestsAPIError):
        message(to="Bob <BOB@example.com>").send()


def test_delay_longer_than_timeout_is_a_read_timeout(esp, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "REQUESTS_TIMEOUT": 0.3}
    esp.add_response(200, delay=5)
    with pytest.raises(requests.Timeout):
        message().send()
    assert len(esp.requests) == 1


def test_wrong_token_is_refused(esp, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "wrong"}
    with pytest.raises(AnymailRequestsAPIError):
        message().send()


# --- webhook payloads, parsed by Anymail's Postmark tracking view -----------------------

FAKE_EMAIL = SimpleNamespace(
    pk=987654321,
    to=["ann@example.com"],
    esp_message_id="00000000-0000-0000-0000-00000000abcd",
    subject="Hello",
)


@pytest.fixture
def tracked():
    events = []

    def receiver(sender, event, esp_name, **kwargs):
        events.append(event)

    tracking.connect(receiver, dispatch_uid="test_esp_server")
    yield events
    tracking.disconnect(dispatch_uid="test_esp_server")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "event_type", "reject_reason"),
    [
        (delivery_event(FAKE_EMAIL), "delivered", None),
        (bounce_event(FAKE_EMAIL, type="HardBounce"), "bounced", "bounced"),
        # Anymail normalises a soft bounce to "bounced" too: only the raw event tells.
        (bounce_event(FAKE_EMAIL, type="SoftBounce"), "bounced", "bounced"),
        (spam_complaint_event(FAKE_EMAIL), "complained", "spam"),
        (open_event(FAKE_EMAIL), "opened", None),
        (click_event(FAKE_EMAIL), "clicked", None),
    ],
    ids=["delivery", "hard-bounce", "soft-bounce", "complaint", "open", "click"],
)
def test_webhook_payloads_parse_as_postmark(client, tracked, payload, event_type, reject_reason):
    response = post_webhook(client, payload)

    assert response.status_code == 200
    [event] = tracked
    assert event.event_type == event_type
    assert event.reject_reason == reject_reason
    assert event.message_id == FAKE_EMAIL.esp_message_id
    assert event.recipient == "ann@example.com"
    assert event.metadata == {"transactional_mail_id": str(FAKE_EMAIL.pk)}
    assert event.timestamp is not None
    assert event.esp_event == payload
    if "ID" in payload:
        assert event.event_id == str(payload["ID"])


def test_webhook_with_wrong_secret_is_refused(client, tracked):
    response = post_webhook(client, delivery_event(FAKE_EMAIL), secret="hook:wrong")
    assert response.status_code == 400
    assert tracked == []
