"""Thin Celery tasks around delivery. Each is safe to run twice.

The tasks bind to the site's Celery app (``shared_task``). They go to the site's default
queue unless ``TRANSACTIONAL_MAIL["QUEUE"]`` names another.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from . import alerts, background_publish, claims, delivery, pacing, privacy, publishing
from .conf import get_setting
from .models import Email, EmailEvent, EmailStatus
from .models.log import CLAIMABLE_STATUSES, redact_final

logger = logging.getLogger(__name__)


@shared_task(name="transactional_mail.deliver", ignore_result=True)
def deliver(email_id: int, *more_ids: int) -> str | None:
    """Deliver these emails (one transaction's) and other due ones, up to ``BATCH_SIZE``;
    schedule the next attempt of each that failed transiently. Return the first email's
    status (None when another worker had it, or it was not due)."""
    outcomes = delivery.deliver_batch([email_id, *more_ids], get_setting("BATCH_SIZE"))
    now = timezone.now()
    for claimed_id, outcome in outcomes.items():
        if outcome.retry_in is not None:
            enqueue_delivery(claimed_id, now + datetime.timedelta(seconds=outcome.retry_in))
    own = outcomes.get(email_id)
    return own.status if own is not None else None


@shared_task(name="transactional_mail.sweep_outbox", ignore_result=True)
def sweep_outbox() -> dict[str, int]:
    """Re-enqueue emails whose task was lost, and recover emails of killed workers.

    A queued or scheduled email due for longer than ``SWEEP_GRACE`` seconds has lost its
    task (broker down at commit, a wait longer than ``MAX_COUNTDOWN``, a purged queue). An
    email in ``sending`` for longer than ``SENDING_TIMEOUT`` whose worker is gone (on
    PostgreSQL: its advisory lock is free; elsewhere: assumed) goes back to the queue
    flagged ``outcome_uncertain``, because the ESP may have taken it.
    """
    now = timezone.now()
    given_up, recovered_ids = _recover_abandoned(now)
    recovered = len(recovered_ids)
    due = now - datetime.timedelta(seconds=get_setting("SWEEP_GRACE"))
    with transaction.atomic():
        # skip_locked spreads concurrent sweeps over different rows on PostgreSQL;
        # elsewhere it is ignored and a duplicate task is harmless (the claim decides).
        email_ids = list(
            Email.objects.select_for_update(skip_locked=True)
            .filter(status__in=CLAIMABLE_STATUSES, next_attempt_at__lte=due)
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:5000]
        )
    email_ids += [email_id for email_id in recovered_ids if email_id not in email_ids]
    enqueued = enqueue_delivery(email_ids)
    if email_ids or recovered or given_up:
        logger.info("Outbox sweep: %d due, %d enqueued, %d recovered from lost workers, "
                    "%d failed", len(email_ids), enqueued, recovered, given_up)
    return {"due": len(email_ids), "enqueued": enqueued, "recovered": recovered,
            "failed": given_up}


def _recover_abandoned(now: datetime.datetime) -> tuple[int, list[int]]:
    """Fail or re-queue emails stuck in ``sending`` by a dead worker; return (failed, ids)."""
    lost_worker = ("The worker stopped while sending (killed or lost). The ESP may have "
                   "accepted the earlier attempt.")
    with transaction.atomic():
        stale = list(
            Email.objects.select_for_update(skip_locked=True)
            .filter(
                status=EmailStatus.SENDING,
                claimed_at__lt=now - datetime.timedelta(seconds=get_setting("SENDING_TIMEOUT")),
            )
            .values_list("pk", "claim_token")[:5000]
        )
        # A slow worker still holds its lock: leave its email alone (PostgreSQL only).
        abandoned = Email.objects.filter(pk__in=claims.abandoned(stale))
        # An email that keeps killing its worker must not be retried for ever.
        exhausted = abandoned.filter(attempts__gte=get_setting("MAX_ATTEMPTS"))
        given_up_ids = list(exhausted.values_list("pk", flat=True))
        given_up = 0
        if given_up_ids:
            given_up = Email.objects.filter(pk__in=given_up_ids).update(
                status=EmailStatus.FAILED, status_changed_at=now, outcome_uncertain=True,
                last_error=f"Gave up after the last attempt. {lost_worker}",
            )
            # Never rendered again: its secrets go, in the transaction of its final status.
            redact_final(Email.objects.filter(pk__in=given_up_ids))
        recovered_ids = list(
            abandoned.filter(status=EmailStatus.SENDING).values_list("pk", flat=True)
        )
        Email.objects.filter(pk__in=recovered_ids).update(
            status=EmailStatus.QUEUED, status_changed_at=now, next_attempt_at=now,
            outcome_uncertain=True, last_error=f"{lost_worker} Retried by the outbox sweep.",
        )
    return given_up, recovered_ids


@shared_task(name="transactional_mail.prune_raw_events", ignore_result=True)
def prune_raw_events() -> int:
    """Drop raw ESP payloads (personal data) older than ``RAW_EVENT_RETENTION_DAYS``."""
    days = get_setting("RAW_EVENT_RETENTION_DAYS")
    if days is None:
        return 0
    cutoff = timezone.now() - datetime.timedelta(days=days)
    return EmailEvent.objects.filter(received_at__lt=cutoff, raw_pruned=False).update(
        raw=None, raw_pruned=True
    )


@shared_task(name="transactional_mail.check_alerts", ignore_result=True)
def check_alerts() -> list[str]:
    """Check the operator alerts (docs/alerts.md); return the kinds raised by this check."""
    return [alert.kind for alert in alerts.check_alerts()]


@shared_task(name="transactional_mail.redact_old_emails", ignore_result=True)
def redact_old_emails() -> int:
    """The daily retention job; return how many emails it redacted.

    Removes the bodies and context snapshots of finished emails older than
    ``RETENTION_DAYS`` (``privacy.redact_expired``), deletes the digest windows closed
    longer than ``DIGEST_RETENTION_DAYS`` (``privacy.prune_digest_windows``) and the
    frequency-cap counts past their period (``pacing.prune_cap_counts``). Each works in
    batches and carries on where a stopped run left off.
    """
    redacted = privacy.redact_expired()
    privacy.prune_digest_windows()
    pacing.prune_cap_counts()
    return redacted


@contextlib.contextmanager
def broker_producer(app) -> Iterator[Any]:
    """A producer of ``app`` whose connection is made without kombu's default retries
    (about 6 s against a dead broker): a request must not hang on the broker. Publish
    with it through ``publishing.publish`` (no Celery retries either)."""
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=0)
        yield producer


def enqueue_delivery(email_ids: int | Iterable[int], due: datetime.datetime | None = None) -> int:
    """Publish deliver tasks for these emails, ``BATCH_SIZE`` to a task; return how many
    emails' tasks were published (0, and a warning logged, when the broker is down).

    Never raises: the Email row is the outbox, and the sweep enqueues it later. A wait
    longer than ``MAX_COUNTDOWN`` is not given to the broker at all (Redis redelivers
    long-countdown tasks after its visibility timeout); the sweep enqueues it when due.
    """
    email_ids = [email_ids] if isinstance(email_ids, int) else list(email_ids)
    countdown = 0.0
    if due is not None:
        countdown = max(0.0, (due - timezone.now()).total_seconds())
        if countdown > get_setting("MAX_COUNTDOWN"):
            return 0
    size, queue = max(get_setting("BATCH_SIZE"), 1), get_setting("QUEUE")
    published = 0
    try:
        with broker_producer(deliver.app) as producer:
            for start in range(0, len(email_ids), size):
                chunk = tuple(email_ids[start : start + size])
                publishing.publish(
                    deliver, chunk, producer=producer, countdown=countdown, queue=queue
                )
                published += len(chunk)
    except Exception as err:
        logger.warning(
            "Could not enqueue email(s) %s (%s: %s; the broker unreachable?); the outbox "
            "sweep will send them.",
            _ids_text(email_ids[published:]), type(err).__name__, err, exc_info=True,
        )
    return published


def enqueue_on_commit(email_id: int, due: datetime.datetime, using: str) -> None:
    """Enqueue the email's delivery when the current transaction on ``using`` commits.

    The emails a transaction queues for now go out in one task, published by the first
    of their ``on_commit`` callbacks to run (see ``_CommitBatch``); a scheduled email gets
    a task of its own, with its countdown.
    """
    connection = transaction.get_connection(using)
    if due > timezone.now():
        transaction.on_commit(lambda: enqueue_delivery(email_id, due), using=using)
        return
    if not connection.in_atomic_block:
        transaction.on_commit(lambda: publish_committed([email_id]), using=using)
        return
    batch = getattr(connection, _COMMIT_BATCH, None)
    if batch is None or not batch.pending(connection):
        batch = _CommitBatch()
        setattr(connection, _COMMIT_BATCH, batch)
    batch.email_ids.append(email_id)
    transaction.on_commit(batch.publish, using=using)


def publish_committed(email_ids: list[int]) -> None:
    """Publish the tasks of these emails, committed and due now: handed to this process's
    publisher thread with ``PUBLISH_IN_BACKGROUND`` (see ``background_publish``), else
    published here. Eager mode, a running task's publishes and a server that runs no
    thread (uWSGI without ``enable-threads``) publish here."""
    app = deliver.app
    if (get_setting("PUBLISH_IN_BACKGROUND") and background_publish.threads_run()
            and not app.conf.task_always_eager and app.current_worker_task is None):
        background_publish.publisher(_publish_in_thread).add(email_ids)
    else:
        enqueue_delivery(email_ids)


def _publish_in_thread(email_ids: list[int]) -> None:
    enqueue_delivery(email_ids)  # looked up at each call: tests replace it


_COMMIT_BATCH = "_transactional_mail_commit_batch"


class _CommitBatch:
    """The emails one transaction queued, published together after its commit.

    Each email registers ``publish`` with ``on_commit``, so Django drops the callback of an
    email queued in a savepoint that rolled back, like any other. The first callback that
    runs publishes every email of the batch; the others find it done. An email whose
    savepoint rolled back may be in the list: its task finds nothing to claim. Every
    committed email has a callback of its own, so its id is published whichever runs.
    """

    def __init__(self) -> None:
        self.email_ids: list[int] = []
        self.published = False

    def publish(self) -> None:
        if not self.published:
            self.published = True
            # SQLite gives an undone email's id to the next one: list each id once.
            publish_committed(list(dict.fromkeys(self.email_ids)))

    def pending(self, connection) -> bool:
        """Whether a callback of this batch still waits for ``connection``'s commit (not
        published, not discarded with a rolled-back transaction)."""
        if self.published:
            return False
        return any(entry[1] == self.publish for entry in reversed(connection.run_on_commit))


def _ids_text(email_ids: list[int]) -> str:
    shown = ", ".join(str(email_id) for email_id in email_ids[:10])
    return shown + (f" and {len(email_ids) - 10} more" if len(email_ids) > 10 else "")
