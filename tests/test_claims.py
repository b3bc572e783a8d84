"""Claims: a worker writes only the result of a claim it still holds; the sweep spares live workers.

The races are played in one process: Anymail's ``pre_send`` signal runs inside the
backend's send, after the worker's last check, which is where a slow ESP call leaves the
sweep and a second worker room to act. The advisory-lock tests hold the lock from a
second database connection, as a live worker on another machine would.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from unittest import mock

import pytest
from anymail.signals import pre_send
from django.db import connection, connections
from django.utils import timezone

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_template
from transactional_mail import claims, delivery, tasks
from transactional_mail.metadata import METADATA_ID_KEY
from transactional_mail.models import Email, EmailStatus

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="advisory locks are PostgreSQL's (TM_TEST_POSTGRES runs these)",
)


@pytest.fixture
def template():
    return make_template()


@pytest.fixture
def instant_sweep(settings):
    """The sweep takes every email in ``sending`` for stale."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SENDING_TIMEOUT": -1}


def queue() -> Email:
    return transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT)


@contextlib.contextmanager
def during_send(action):
    """Run ``action(email_id)`` once, inside the first send, after the worker's checks."""
    done = []

    def receiver(sender, message, **kwargs):
        if not done:
            done.append(True)
            action(int(message.metadata[METADATA_ID_KEY]))

    pre_send.connect(receiver, weak=False, dispatch_uid="test_claims.during_send")
    try:
        yield done
    finally:
        pre_send.disconnect(dispatch_uid="test_claims.during_send")


def claim_now(email_id):
    """Claim one email as a worker would; return the claim's token (None if not claimed)."""
    with claims.claim(email_id) as claim:
        return claim.token if claim.email_ids else None


def test_a_claim_writes_a_fresh_token_and_only_one_claim_wins(template):
    email = queue()
    token = claim_now(email.pk)
    assert token is not None
    row = Email.objects.get(pk=email.pk)
    assert (row.status, row.claim_token, row.attempts) == (EmailStatus.SENDING, token, 1)
    assert claim_now(email.pk) is None
    assert claims.Claim(token, [email.pk]).holds(row)
    assert not claims.Claim(None, [email.pk]).holds(row)


def test_a_batch_claims_its_own_email_first_then_the_longest_due(template):
    now = timezone.now()
    emails = [queue() for _ in range(5)]
    for age, email in enumerate(emails):  # emails[4] is the longest due
        Email.objects.filter(pk=email.pk).update(
            next_attempt_at=now - datetime.timedelta(minutes=age))
    scheduled = queue()
    Email.objects.filter(pk=scheduled.pk).update(
        status=EmailStatus.SCHEDULED, next_attempt_at=now + datetime.timedelta(hours=1))
    with claims.claim(emails[0].pk, limit=3) as claim:
        assert claim.email_ids == [emails[0].pk, emails[4].pk, emails[3].pk]
    with claims.claim(None, limit=10) as claim:
        assert claim.email_ids == [emails[2].pk, emails[1].pk]  # never the one not due
    with claims.claim(emails[1].pk, limit=10) as claim:
        assert claim.email_ids == []


def recover_and_claim_again(email_id):
    """What the sweep and a second worker do to a worker they take for dead."""
    Email.objects.filter(pk=email_id).update(status=EmailStatus.QUEUED)
    assert claim_now(email_id) is not None


def test_a_worker_whose_claim_was_taken_before_the_send_does_not_send(template, esp):
    """The sweep recovered the email and another worker claimed it during the render.

    A retry, because on PostgreSQL a first attempt's claim is kept by its lock (the
    sweep cannot recover it: see the lock tests below), and a test that ignores the
    lock as this one does would show nothing real.
    """
    email = queue()
    Email.objects.filter(pk=email.pk).update(attempts=1)
    real_render = delivery.render_email

    def render_then_lose_the_claim(*args, **kwargs):
        recover_and_claim_again(email.pk)
        return real_render(*args, **kwargs)

    with mock.patch.object(delivery, "render_email", render_then_lose_the_claim):
        outcome = delivery.deliver(email.pk)

    assert outcome.status is None
    assert esp.requests == []
    row = Email.objects.get(pk=email.pk)
    assert (row.status, row.attempts, row.sent_at) == (EmailStatus.SENDING, 3, None)


@pytest.mark.parametrize("earlier", [
    {"attempts": 1, "outcome_uncertain": True},  # a retry after an ambiguous attempt
    {"attempts": 0, "outcome_uncertain": True},  # resent after an ambiguous attempt
    {"attempts": 0, "sent_at": timezone.now()},  # resent with --force after a send
], ids=["retry", "resend-uncertain", "resend-sent"])
def test_an_email_the_esp_may_hold_is_checked_before_the_send(template, esp, earlier):
    """The ESP reports an earlier copy delivered while this attempt renders: the attempt
    checks its claim before the send, on every database, lock or not."""
    email = queue()
    Email.objects.filter(pk=email.pk).update(**earlier)
    real_render = delivery.render_email

    def render_while_the_webhook_arrives(*args, **kwargs):
        Email.objects.filter(pk=email.pk).update(status=EmailStatus.DELIVERED)
        return real_render(*args, **kwargs)

    with mock.patch.object(delivery, "render_email", render_while_the_webhook_arrives):
        outcome = delivery.deliver(email.pk)

    assert outcome.status is None
    assert esp.requests == []
    assert Email.objects.get(pk=email.pk).status == EmailStatus.DELIVERED


def test_rows_recovered_before_the_lock_was_taken_are_not_the_claims(template):
    """Should the sweep recover a claim between its UPDATE and its lock, the rows the
    batch reads (under the lock) leave that email out."""
    kept, recovered = queue(), queue()
    with claims.claim(kept.pk, limit=2) as claim:
        assert sorted(claim.email_ids) == sorted([kept.pk, recovered.pk])
        Email.objects.filter(pk=recovered.pk).update(status=EmailStatus.QUEUED)
        assert [row.pk for row in claim.rows()] == [kept.pk]


def test_a_late_result_does_not_overwrite_the_claim_that_replaced_it(
    template, esp, enqueued, instant_sweep
):
    """Mid-send the sweep recovers the email and a second worker sends it: the slow
    worker's result is dropped, the row keeps the second attempt's."""
    email = queue()

    def sweep_and_send_again(email_id):
        assert tasks.sweep_outbox()["recovered"] == 1
        assert delivery.deliver(email_id).status == EmailStatus.SENT

    with during_send(sweep_and_send_again) as done:
        outcome = delivery.deliver(email.pk)

    assert done and outcome.status is None
    first_answer, late_answer = (request.response["MessageID"] for request in esp.requests)
    row = Email.objects.get(pk=email.pk)
    assert row.status == EmailStatus.SENT
    assert row.attempts == 2
    assert row.esp_message_id == first_answer != late_answer
    assert row.outcome_uncertain is True


def test_a_recovered_email_nobody_claimed_again_keeps_the_slow_workers_result(
    template, esp, enqueued, instant_sweep
):
    """The sweep re-queued it mid-send; the worker's success is recorded, so the re-queued
    task finds nothing to send."""
    email = queue()
    with during_send(lambda email_id: tasks.sweep_outbox()):
        assert delivery.deliver(email.pk).status == EmailStatus.SENT
    enqueued.assert_called_once()
    assert delivery.deliver(email.pk).status is None  # the re-queued task
    assert len(esp.requests) == 1
    row = Email.objects.get(pk=email.pk)
    assert (row.status, row.attempts) == (EmailStatus.SENT, 1)
    assert row.esp_message_id == esp.requests[0].response["MessageID"]


@pytest.mark.parametrize("max_attempts", [8, 1], ids=["retry-due", "last-attempt"])
def test_a_lost_claim_neither_retries_nor_signals_a_failure(
    template, esp, enqueued, settings, max_attempts
):
    """A transient error on a claim already replaced: no retry task, no email_failed."""
    from transactional_mail import signals

    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "MAX_ATTEMPTS": max_attempts}
    esp.add_response(503)
    email = queue()
    failed = mock.Mock()
    signals.email_failed.connect(failed, weak=False, dispatch_uid="test_claims.failed")
    try:
        with during_send(recover_and_claim_again):
            outcome = delivery.deliver(email.pk)
    finally:
        signals.email_failed.disconnect(dispatch_uid="test_claims.failed")
    assert (outcome.status, outcome.retry_in) == (None, None)
    failed.assert_not_called()
    row = Email.objects.get(pk=email.pk)
    assert (row.status, row.attempts) == (EmailStatus.SENDING, 2)
    assert "503" not in row.last_error  # the lost attempt's error is not recorded
    enqueued.assert_not_called()


@contextlib.contextmanager
def lock_held_elsewhere(token):
    """Hold a claim's advisory lock from a second connection (its live worker)."""
    default = connections["default"]
    other = type(default)(dict(default.settings_dict), alias="lock_holder")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", claims.lock_key(token))
            assert cursor.fetchone()[0], "the lock is held by another session"
        yield
        with other.cursor() as cursor:
            # Closing the session frees it too, but the server notices a moment later.
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", claims.lock_key(token))
    finally:
        other.close()


def stuck_in_sending(email: Email) -> uuid.UUID:
    """The email as its worker left it, an hour into its send; return the claim's token."""
    token = uuid.uuid4()
    Email.objects.filter(pk=email.pk).update(
        status=EmailStatus.SENDING, claimed_at=timezone.now() - datetime.timedelta(hours=1),
        attempts=1, claim_token=token,
    )
    return token


@postgresql_only
def test_the_sweep_leaves_an_email_whose_worker_is_alive(template, enqueued):
    email = queue()
    token = stuck_in_sending(email)
    with lock_held_elsewhere(token):
        assert tasks.sweep_outbox()["recovered"] == 0
        assert Email.objects.get(pk=email.pk).status == EmailStatus.SENDING
    # The worker's connection is gone: now it is recovered.
    assert tasks.sweep_outbox()["recovered"] == 1
    assert Email.objects.get(pk=email.pk).status == EmailStatus.QUEUED


@postgresql_only
def test_the_sweep_does_not_fail_a_live_workers_last_attempt(template, enqueued, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "MAX_ATTEMPTS": 1}
    email = queue()
    token = stuck_in_sending(email)
    with lock_held_elsewhere(token):
        assert tasks.sweep_outbox()["failed"] == 0
    assert tasks.sweep_outbox()["failed"] == 1


@postgresql_only
def test_the_claims_lock_is_held_while_its_emails_are_sent(template, esp):
    """Seen from another session (the sweep), mid-send: the claim's lock is taken."""
    email = queue()
    seen = []

    def try_the_lock(email_id):
        token = Email.objects.get(pk=email_id).claim_token
        with pytest.raises(AssertionError, match="held by another session"), \
                lock_held_elsewhere(token):
            pass
        seen.append(token)

    with during_send(try_the_lock):
        assert delivery.deliver(email.pk).status == EmailStatus.SENT
    assert seen


@postgresql_only
def test_a_first_attempt_under_the_lock_sends_without_asking_the_database_again(
    template, esp
):
    """The claim, the rows, the lock and the result: no fence query per email."""
    from django.test.utils import CaptureQueriesContext

    emails = [queue() for _ in range(3)]
    with CaptureQueriesContext(connection) as queries:
        outcomes = delivery.deliver_batch(emails[0].pk, 3)
    assert {outcome.status for outcome in outcomes.values()} == {EmailStatus.SENT}
    assert len(esp.requests) == 3
    fence_checks = [q["sql"] for q in queries.captured_queries
                    if q["sql"].startswith("SELECT 1 AS") and "claim_token" in q["sql"]]
    assert fence_checks == []


@postgresql_only
def test_a_claim_without_its_lock_checks_each_email_before_sending(template, esp):
    """Another claim holds the same lock key (one chance in 2**32): no shortcut."""
    email = queue()
    real_lock = claims._claim_lock

    @contextlib.contextmanager
    def lock_not_taken(token):
        with real_lock(token):
            yield None

    real_render = delivery.render_email

    def render_then_lose_the_claim(*args, **kwargs):
        recover_and_claim_again(email.pk)
        return real_render(*args, **kwargs)

    with mock.patch.object(claims, "_claim_lock", lock_not_taken), \
            mock.patch.object(delivery, "render_email", render_then_lose_the_claim):
        assert delivery.deliver(email.pk).status is None
    assert esp.requests == []


@postgresql_only
def test_the_lock_is_released_after_the_send(template, esp):
    email = queue()
    delivery.deliver(email.pk)
    token = Email.objects.get(pk=email.pk).claim_token
    with lock_held_elsewhere(token):  # fails if this session still held it
        pass
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert cursor.fetchone()[0] == 0


def test_lock_keys_are_int4_pairs_that_differ_per_claim():
    keys = {claims.lock_key(uuid.uuid4()) for _ in range(1000)}
    assert len(keys) == 1000
    assert all(namespace == claims._LOCK_NAMESPACE for namespace, _ in keys)
    assert all(-(2**31) <= key < 2**31 for _, key in keys)


def test_a_slow_worker_the_sweep_gave_up_on_records_its_success(
    template, esp, enqueued, instant_sweep, settings
):
    """Where the sweep cannot see the worker alive (SQLite), it may fail the last attempt;
    a send that then succeeds is recorded as sent, not left failed."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "MAX_ATTEMPTS": 1}
    email = queue()

    def give_up(email_id):  # what the sweep does on SQLite after SENDING_TIMEOUT
        Email.objects.filter(pk=email_id).update(
            status=EmailStatus.FAILED, last_error="Gave up after the last attempt."
        )

    with during_send(give_up):
        assert delivery.deliver(email.pk).status == EmailStatus.SENT
    row = Email.objects.get(pk=email.pk)
    assert row.status == EmailStatus.SENT
    assert row.esp_message_id == esp.requests[0].response["MessageID"]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_session_ended_checks_each_email_again(template, esp, enqueued, settings):
    """The worker's database session ends mid-batch (an email_sent receiver closes the
    connection, as close_old_connections() does with CONN_MAX_AGE=0; a restart or a
    pooler does the same) and Django reconnects: the lock went with the old session, the
    sweep recovers the batch's other email and another worker sends it. This worker must
    not send it too. (Found by an attack on the fence shortcut.)"""
    from transactional_mail import signals

    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SENDING_TIMEOUT": -1}
    first, second = queue(), transactional_mail.send("order_confirmation", "bob@example.com",
                                                     ORDER_CONTEXT)
    done = []

    def receiver(sender, email, **kwargs):
        if done or email.pk != first.pk:
            return
        done.append(True)
        connection.close()  # the session, and the claim's advisory lock, end here
        done.append(tasks.sweep_outbox()["recovered"])  # the lock is free: recovered
        done.append(delivery.deliver(second.pk).status)  # another worker sends it

    signals.email_sent.connect(receiver, weak=False, dispatch_uid="test_claims.session")
    try:
        delivery.deliver_batch([first.pk, second.pk], 2)
    finally:
        signals.email_sent.disconnect(dispatch_uid="test_claims.session")
    assert done == [True, 1, EmailStatus.SENT]
    assert len(esp.requests_for(second.pk)) == 1, "the second email was sent twice"
