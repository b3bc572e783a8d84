"""Secrets in the spellings an ESP's answer or a webhook gives them, and in the copies the
worker does not render (headers, metadata): see docs/security.md."""

from __future__ import annotations

import base64
import json

import pytest

import transactional_mail
from tests.esp_server import bounce_event, click_event, delivery_event, post_webhook
from tests.factories import make_layout, make_template
from transactional_mail import delivery
from transactional_mail.models import Email, EmailEvent, EmailStatus
from transactional_mail.redaction import ENCODED_REMOVED, REDACTED, redact_error, redact_text

TOKEN = "c4k9-1f2e3d4c5b6a"
RESET_URL = f"https://shop.example.com/reset/MQ/{TOKEN}/?next=/a&x=1"
CODE = "493817"


# --- the pure functions ----------------------------------------------------------------


@pytest.mark.parametrize("spelling", [
    RESET_URL.replace("/", "\\/"),                                   # PHP's json_encode
    RESET_URL.replace("&", "\\u0026"),                               # Go's encoding/json
    json.dumps(RESET_URL.replace("/", "\\/"))[1:-1],                # JSON in JSON
])
def test_json_spellings_of_a_secret_are_redacted(spelling):
    assert redact_text(f'{{"Message": "bad {spelling}"}}', [RESET_URL]) == \
        f'{{"Message": "bad {REDACTED}"}}'


def test_a_non_ascii_secret_json_escaped_is_redacted():
    secret = "pässwort-9"
    assert redact_text(json.dumps({"echo": secret}), [secret]) == f'{{"echo": "{REDACTED}"}}'


@pytest.mark.parametrize("soft_break", ["=\n", "=\r\n", "=\\n"])
def test_a_quoted_printable_secret_cut_by_a_soft_line_break_is_redacted(soft_break):
    quoted = RESET_URL.replace("=", "=3D")
    text = f"rejected: {quoted[:40]}{soft_break}{quoted[40:]} code 49{soft_break}3817"
    assert redact_error(text, [RESET_URL, CODE]) == f"rejected: {REDACTED} code {REDACTED}"


def test_a_long_base64_run_is_dropped_from_an_error_even_cut_into_mime_lines():
    encoded = base64.encodebytes(f"<p>{RESET_URL}</p>".encode() * 3).decode()
    assert "\n" in encoded.strip()  # several MIME lines
    text = f"550 rejected: {encoded}Retry later (id 4f2a9c1e, ref 7d1b3e0c9a)"
    assert redact_error(text, [RESET_URL]) == \
        f"550 rejected: {ENCODED_REMOVED}\nRetry later (id 4f2a9c1e, ref 7d1b3e0c9a)"


def test_an_error_of_an_email_without_secrets_is_kept_as_it_is():
    encoded = base64.b64encode(b"x" * 60).decode()
    assert redact_error(f"rejected: {encoded}=\n", []) == f"rejected: {encoded}=\n"


# --- storage -----------------------------------------------------------------------------


@pytest.fixture
def template(db):
    return make_template("password_reset", subject="Reset", html='<a href="{{ reset_url }}">r</a>',
                         category="account", layout=make_layout())


def queue() -> Email:
    return transactional_mail.send(
        "password_reset", "ann@example.com", {"reset_url": RESET_URL, "code": CODE},
        secret_keys=["reset_url", "code"], headers={"X-Sign-In-Code": CODE},
        metadata={"login": RESET_URL, "campaign": "resets"})


def test_headers_and_metadata_go_out_whole_and_are_stored_redacted_once_sent(template, esp):
    email = queue()
    assert Email.objects.get(pk=email.pk).headers == {"X-Sign-In-Code": CODE}  # a retry
    delivery.deliver(email.pk)
    sent = esp.requests[0].json
    assert {"Name": "X-Sign-In-Code", "Value": CODE} in sent["Headers"]
    assert sent["Metadata"]["login"] == RESET_URL
    row = Email.objects.get(pk=email.pk)
    assert row.headers == {"X-Sign-In-Code": REDACTED}
    assert row.metadata["login"] == REDACTED and row.metadata["campaign"] == "resets"


def test_a_retry_keeps_the_headers_and_metadata_it_sends_again(template, esp):
    esp.add_response(500, {"ErrorCode": 100, "Message": "timeout"})
    email = queue()
    delivery.deliver(email.pk)
    row = Email.objects.get(pk=email.pk)
    assert row.status == EmailStatus.QUEUED
    assert row.headers == {"X-Sign-In-Code": CODE} and row.metadata["login"] == RESET_URL


def test_a_webhook_ending_a_retrying_email_redacts_its_headers_and_metadata(template, esp,
                                                                           client):
    esp.add_response(500, {"ErrorCode": 100, "Message": "timeout"})
    email = queue()
    delivery.deliver(email.pk)
    post_webhook(client, delivery_event(Email.objects.get(pk=email.pk), message_id="m-1"))
    row = Email.objects.get(pk=email.pk)
    assert row.status == EmailStatus.DELIVERED
    assert row.headers == {"X-Sign-In-Code": REDACTED} and row.metadata["login"] == REDACTED


def test_an_unmatched_event_keeps_no_url_past_its_origin(template, esp, client):
    """Not only clicks: an unmatched bounce may quote the message of an email with
    secrets, and nothing tells whether it had some."""
    email = queue()
    payload = {**bounce_event(email, message_id="never-stored"), "Metadata": {},
               "Content": f"Your message: {RESET_URL}"}
    assert post_webhook(client, payload).status_code == 200
    event = EmailEvent.objects.get()
    assert event.email is None
    assert event.raw["Content"] == f"Your message: https://shop.example.com/{REDACTED}"


def test_an_unmatched_click_keeps_the_origin(template, esp, client):
    email = queue()
    payload = {**click_event(email, url=RESET_URL, message_id="never-stored"), "Metadata": {}}
    post_webhook(client, payload)
    assert EmailEvent.objects.get().click_url == f"https://shop.example.com/{REDACTED}"


def test_a_webhook_during_an_attempt_that_then_fails_leaves_no_secret(template, esp, client):
    """The ESP took the message and said so by webhook while the worker still waited for
    its answer, which then failed: the worker's write keeps the webhook's status, and the
    context it kept for a retry goes with it."""
    from anymail.signals import pre_send

    email = queue()

    def webhook_first(sender, message, esp_name, **kwargs):
        post_webhook(client, delivery_event(Email.objects.get(pk=email.pk), message_id="m-1"))

    esp.add_response(500, {"ErrorCode": 100, "Message": "timeout"})
    pre_send.connect(webhook_first, weak=False)
    try:
        delivery.deliver(email.pk)
    finally:
        pre_send.disconnect(webhook_first)
    row = Email.objects.get(pk=email.pk)
    assert row.status == EmailStatus.DELIVERED
    assert row.context["reset_url"] == REDACTED and row.context["code"] == REDACTED
    assert row.headers == {"X-Sign-In-Code": REDACTED}
