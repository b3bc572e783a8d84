"""The result written in one statement on PostgreSQL (``transactional_mail.results``).

The statement replaces the ORM's writes of the common case, so each test delivers two
emails the same way, one through the statement and one through the general path
(``results.supported`` off), and compares what each left in the database: the email's
row, its attempt row and the day's statistics.
"""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone

import transactional_mail
from tests.esp_server import INVALID_TO, refused
from tests.factories import ORDER_CONTEXT, make_layout, make_template
from transactional_mail import claims, delivery, results
from transactional_mail.models import Email, EmailAttempt, EmailStatus, MailStatDay

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="the one-statement result is PostgreSQL's; elsewhere the ORM's"),
]

#: What differs between two emails however they were recorded.
_OWN = {"id", "to", "claim_token", "claimed_at", "status_changed_at", "created_at",
        "updated_at", "sent_at", "next_attempt_at", "esp_message_id", "recipient_key",
        "html_compressed", "text_compressed", "subject_variant"}


@pytest.fixture
def template():
    return make_template(layout=make_layout())


def queue(to: str, **options) -> Email:
    return transactional_mail.send("order_confirmation", to, ORDER_CONTEXT, **options)


def deliver(to: str, *, one_statement: bool, **options) -> Email:
    email = queue(to, **options)
    with mock.patch.object(results, "supported", return_value=one_statement):
        delivery.deliver(email.pk)
    return Email.objects.get(pk=email.pk)


def recorded(email: Email) -> dict:
    row = {name: value for name, value in Email.objects.filter(pk=email.pk).values()[0].items()
           if name not in _OWN}
    attempts = list(EmailAttempt.objects.filter(email=email).values(
        "number", "outcome", "error", "esp_status_code", "claim_token", "started_at"))
    for attempt in attempts:
        assert attempt.pop("claim_token") == email.claim_token
        assert attempt.pop("started_at") == email.claimed_at
    return {"email": row, "attempts": attempts}


def sent_counts() -> int:
    return sum(MailStatDay.objects.values_list("sent", flat=True))


def test_a_sent_email_is_recorded_as_the_general_path_records_it(template, esp):
    general = deliver("ann@example.com", one_statement=False)
    one = deliver("bob@example.com", one_statement=True)
    assert one.status == EmailStatus.SENT
    assert recorded(one) == recorded(general)
    assert one.esp_message_id and one.sent_at and one.html_body == general.html_body
    assert EmailAttempt.objects.get(email=one).esp_message_id == one.esp_message_id
    # Both counted, on the same day row (this process's shard): the second as an update.
    assert sent_counts() == 2
    assert MailStatDay.objects.count() == 1


def test_a_failed_attempt_is_recorded_as_the_general_path_records_it(template, esp):
    esp.add_response(422, refused(INVALID_TO, "ann@example.com"))
    general = deliver("ann@example.com", one_statement=False)
    esp.add_response(422, refused(INVALID_TO, "bob@example.com"))
    one = deliver("bob@example.com", one_statement=True)
    assert one.status == EmailStatus.FAILED
    general_row, one_row = recorded(general), recorded(one)
    assert "bob@example.com" in one_row["email"].pop("last_error")
    assert "ann@example.com" in general_row["email"].pop("last_error")
    for attempt in (*general_row["attempts"], *one_row["attempts"]):
        attempt.pop("error")
    assert one_row == general_row
    assert sent_counts() == 0


def test_a_retry_is_recorded_as_the_general_path_records_it(template, esp):
    esp.add_response(503)
    general = deliver("ann@example.com", one_statement=False)
    esp.add_response(503)
    one = deliver("bob@example.com", one_statement=True)
    assert one.status == EmailStatus.QUEUED and one.next_attempt_at > timezone.now()
    assert recorded(one) == recorded(general)


def test_an_email_with_secrets_loses_them_in_the_same_statement(template, esp):
    options = {"secret_keys": ["order"]}
    general = deliver("ann@example.com", one_statement=False, **options)
    one = deliver("bob@example.com", one_statement=True, **options)
    assert recorded(one) == recorded(general)
    assert ORDER_CONTEXT["order"]["number"] not in one.html_body
    assert one.context["order"] != ORDER_CONTEXT["order"]


def test_a_test_send_is_not_counted(template, esp):
    one = deliver("bob@example.com", one_statement=True, is_test=True)
    assert one.status == EmailStatus.SENT
    assert sent_counts() == 0


def test_an_email_counted_as_sent_before_is_not_counted_again(template, esp):
    """A resend of a sent email: its second acceptance is recorded, not counted."""
    email = deliver("ann@example.com", one_statement=True)
    assert sent_counts() == 1
    Email.objects.filter(pk=email.pk).update(status=EmailStatus.QUEUED, attempts=0,
                                             next_attempt_at=timezone.now())
    with mock.patch.object(results, "supported", return_value=True):
        assert delivery.deliver(email.pk).status == EmailStatus.SENT
    assert sent_counts() == 1
    assert EmailAttempt.objects.filter(email=email).count() == 2


def test_a_lost_claim_writes_nothing(template):
    """Another token on the row (the sweep recovered it, another worker claimed it): the
    statement matches nothing, so neither the attempt nor the count is written."""
    email = queue("ann@example.com")
    with claims.claim(email.pk) as claim:
        email = Email.objects.get(pk=email.pk)
        Email.objects.filter(pk=email.pk).update(claim_token=uuid.uuid4())
        written = results.write(
            email, status=EmailStatus.SENT, now=timezone.now(), fields={"last_error": ""},
            writable=(EmailStatus.SENDING,), count_sent=True,
            attempt=delivery._attempt_fields(email, delivery.AttemptOutcome.SENT, "",
                                             sent=True),
        )
    assert claim.email_ids == [email.pk]
    assert written is False
    assert Email.objects.get(pk=email.pk).status == EmailStatus.SENDING
    assert not EmailAttempt.objects.filter(email=email).exists()
    assert sent_counts() == 0


def test_a_status_a_webhook_set_first_is_kept(template, esp):
    """The statement only writes over the statuses a result may replace; for the others
    (here a webhook's delivered, before the worker recorded its send) the general path
    keeps the webhook's status and still writes the attempt."""
    email = queue("ann@example.com")
    real_write = results.write

    def webhook_first(email, **kwargs):
        Email.objects.filter(pk=email.pk).update(status=EmailStatus.DELIVERED)
        return real_write(email, **kwargs)

    with mock.patch.object(results, "write", side_effect=webhook_first):
        delivery.deliver(email.pk)
    email.refresh_from_db()
    assert email.status == EmailStatus.DELIVERED
    assert email.esp_message_id
    assert EmailAttempt.objects.filter(email=email).count() == 1
    assert sent_counts() == 1
