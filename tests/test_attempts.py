"""EmailAttempt rows: one per delivery attempt, written where the attempt's result is."""

from __future__ import annotations

import pytest

from tests.esp_server import INVALID_TO, refused
from tests.test_claims import during_send, queue, recover_and_claim_again
from tests.test_delivery import make_due, quick_retries, template  # noqa: F401 - fixtures
from transactional_mail import delivery
from transactional_mail.models import AttemptOutcome, Email, EmailAttempt, EmailStatus

pytestmark = pytest.mark.django_db


def test_a_500_then_a_success_leaves_two_attempt_rows(template, esp, quick_retries):  # noqa: F811
    """The first attempt's HTTP 500 is kept with its status code; the second is 'sent'."""
    esp.add_response(500)
    email = queue()
    assert delivery.deliver(email.pk).status == EmailStatus.QUEUED
    make_due(email)
    assert delivery.deliver(email.pk).status == EmailStatus.SENT
    first, second = EmailAttempt.objects.filter(email=email).order_by("id")
    assert (first.number, first.outcome, first.esp_status_code) == (
        1, AttemptOutcome.TRANSIENT, 500)
    assert "[transient]" in first.error and "500" in first.error
    assert first.esp_message_id == ""
    assert first.started_at <= first.finished_at
    assert (second.number, second.outcome, second.esp_status_code) == (
        2, AttemptOutcome.SENT, 200)
    email.refresh_from_db()
    assert second.esp_message_id == email.esp_message_id != ""
    assert first.claim_token != second.claim_token


def test_a_permanent_refusal_is_one_permanent_row(template, esp):  # noqa: F811
    esp.add_response(422, refused(INVALID_TO, "ann@example.com"))
    email = queue()
    delivery.deliver(email.pk)
    [attempt] = EmailAttempt.objects.filter(email=email)
    assert (attempt.outcome, attempt.esp_status_code) == (AttemptOutcome.PERMANENT, 422)


def test_a_lost_claim_writes_its_row_marked_lost_and_nothing_else(template, esp):  # noqa: F811
    """The late worker's attempt is logged as lost_claim (with the error it got); the
    email's row is left to the attempt that owns it now."""
    esp.add_response(503)
    email = queue()
    with during_send(recover_and_claim_again):
        assert delivery.deliver(email.pk).status is None
    [attempt] = EmailAttempt.objects.filter(email=email)
    assert attempt.outcome == AttemptOutcome.LOST_CLAIM
    assert attempt.number == 1 and "503" in attempt.error


def test_an_error_text_is_bounded(template, esp):  # noqa: F811
    esp.add_response(500, "x" * 20000)
    email = queue()
    delivery.deliver(email.pk)
    [attempt] = EmailAttempt.objects.filter(email=email)
    assert len(attempt.error) <= 4000


def test_a_claim_lost_before_the_send_writes_one_lost_claim_row(template, esp):  # noqa: F811
    """The worker notices before the send that another claim owns the email: nothing is
    sent, its attempt row says so, and the email's row is the new claim's."""
    from unittest import mock

    email = queue()
    Email.objects.filter(pk=email.pk).update(attempts=1)  # a retry (see test_claims)
    real_render = delivery.render_email

    def render_then_lose_the_claim(*args, **kwargs):
        recover_and_claim_again(email.pk)
        return real_render(*args, **kwargs)

    with mock.patch.object(delivery, "render_email", render_then_lose_the_claim):
        assert delivery.deliver(email.pk).status is None
    assert esp.requests == []
    [attempt] = EmailAttempt.objects.filter(email=email)
    assert (attempt.number, attempt.outcome) == (2, AttemptOutcome.LOST_CLAIM)
    assert "before sending" in attempt.error
