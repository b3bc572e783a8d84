"""One run of a schedule: stream the recipients, queue their emails in batches, resume.

Each batch is one short transaction: the new ``Email`` rows (bulk inserted, each with an
idempotency key per schedule, period and recipient) and the run's new cursor commit
together, then the batch's delivery is enqueued; on PostgreSQL that is done on a thread
of its own while the next batch is built (``batch_writer``). A run stopped anywhere (a
killed worker, an exception) resumes after its last committed batch; a recipient already
queued for the period is never queued again, whoever runs the period again.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import gc
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.db import DatabaseError, DataError, IntegrityError, connections, router, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Substr
from django.utils import timezone

from ..api import build_email
from ..categories import undeclared_category_problem
from ..conf import get_setting
from ..exceptions import ConfigurationError, ContextNotSerializable, InvalidEmailOption
from ..models import Email, EmailStatus, ScheduleRun, ScheduleRunStatus
from ..tasks import enqueue_delivery
from .batch_writer import BatchWriter
from .copy_rows import copy_rows
from .definitions import Schedule
from .periods import period_label
from .sources import Recipient, source_for

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """How far a run got; handed to the ``progress`` callback after each batch."""

    schedule_key: str
    period: str
    total: int | None = None
    done: int = 0
    queued: int = 0
    already_queued: int = 0
    skipped: int = 0
    #: "done", "running" (stopped by another run holding the period), "already done".
    outcome: str = "running"


class RunLost(Exception):
    """Another process took over this run's lease (ours expired): stop without writing."""


#: What every scheduled email's idempotency key starts with.
KEY_PREFIX = "schedule:"


def idempotency_key(schedule: Schedule, period: str, to: str | list[str]) -> str:
    """The email's key: one per (schedule, period, recipient), case-insensitive."""
    addresses = [to] if isinstance(to, str) else to
    # Sorted once lower-cased: sorting first put "B@x" before "a@x" but "A@x" before "b@x".
    digest = hashlib.sha256("\n".join(sorted(a.strip().lower() for a in addresses)).encode())
    return f"{run_key_prefix(schedule.key, period)}{digest.hexdigest()[:32]}"


def run_key_prefix(schedule_key: str, period: str) -> str:
    """What the idempotency keys of the emails of one period of a schedule start with."""
    return f"{KEY_PREFIX}{schedule_key}:{period}:"


def emails_of(queryset: QuerySet[Email], record: ScheduleRun) -> QuerySet[Email]:
    """The emails of ``queryset`` queued for ``record``'s period (by any run of it).

    Both prefixes are in the query: the first is the condition of the partial index on
    the key (``tmail_email_schedule_key_idx``), which PostgreSQL uses only when the query
    repeats it; the second, on that index, finds the period's rows. SQLite's LIKE ignores
    case, so the key's head is compared exactly as well (on PostgreSQL, a check of the
    rows the index found).
    """
    prefix = run_key_prefix(record.schedule_key, record.period)
    return (queryset.filter(idempotency_key__startswith=KEY_PREFIX)
            .filter(idempotency_key__startswith=prefix)
            .alias(key_head=Substr("idempotency_key", 1, len(prefix)))
            .filter(key_head=prefix))


def run(
    schedule: Schedule,
    due: datetime.datetime,
    *,
    dry_run: bool = False,
    label: str | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Queue the emails of one period of ``schedule``, or finish them; return the tally.

    Safe to call twice for the same period, at once or later: a finished period queues
    nothing; a period another process is running (its lease not expired) is left to it.
    With ``dry_run`` every email is built (so a bad address or context shows) and nothing
    is written. ``label`` names the period when it was recorded under another name (the
    schedule's time zone changed since).
    """
    if schedule.category and undeclared_category_problem(schedule.category):
        # Refused before the run is recorded: every recipient's email would be refused.
        raise ConfigurationError(f"Schedule {schedule.key!r}: "
                                 f"{undeclared_category_problem(schedule.category)}")
    # Sources see the due time in the schedule's zone (a report's "this week" is local).
    due = due.astimezone(schedule.timezone)
    label = label or period_label(schedule, due)
    tally = Progress(schedule.key, label)
    source = source_for(schedule)
    if dry_run:
        return _dry_run(schedule, due, label, source, tally, progress)
    record = _record(schedule.key, label)
    if record.status == ScheduleRunStatus.DONE:
        tally.outcome = "already done"
        return tally
    token = _take_lease(record)
    if token is None:
        logger.info("Schedule %s, period %s: another run holds it; leaving it.",
                    schedule.key, label)
        return tally
    record.refresh_from_db()
    tally.total = source.total(due)
    tally.done, tally.skipped = record.recipients_done, record.recipients_skipped
    writer = BatchWriter(router.db_for_write(Email))
    try:
        try:
            for recipients, cursor in source.batches(due, record.cursor, _batch_size()):
                with _collector_paused():
                    built = _built(schedule, label, recipients)
                writer.write(functools.partial(_write_batch, schedule, label, record, token,
                                               len(recipients), cursor, tally, *built))
                if progress:  # a batch behind when the writer thread has the last one
                    progress(tally)
        finally:
            writer.close()
        if progress:
            progress(tally)
    except RunLost:
        logger.warning("Schedule %s, period %s: the lease expired and another run took "
                       "over; this one stops.", schedule.key, label)
        return tally
    except BaseException:
        # An error (not a kill): let the next attempt resume at once, not after the lease.
        ScheduleRun.objects.filter(pk=record.pk, lease_token=token).update(
            lease_token=None, lease_expires_at=None)
        raise
    ScheduleRun.objects.filter(pk=record.pk, lease_token=token).update(
        status=ScheduleRunStatus.DONE, finished_at=timezone.now(), lease_token=None,
        lease_expires_at=None,
    )
    tally.outcome = "done"
    logger.info("Schedule %s, period %s: done, %d recipients, %d emails queued, %d "
                "already queued, %d skipped.", schedule.key, label, tally.done,
                tally.queued, tally.already_queued, tally.skipped)
    return tally


def unfinished(schedule: Schedule) -> list[ScheduleRun]:
    """Earlier runs of ``schedule`` that stopped half-way and nobody holds any more."""
    return list(
        ScheduleRun.objects.filter(schedule_key=schedule.key, status=ScheduleRunStatus.RUNNING)
        .filter(lease_free(timezone.now())).order_by("started_at")
    )


def _batch_size() -> int:
    return max(int(get_setting("SCHEDULE_BATCH_SIZE")), 1)


def _record(key: str, label: str) -> ScheduleRun:
    try:
        with transaction.atomic():
            return ScheduleRun.objects.get_or_create(schedule_key=key, period=label)[0]
    except IntegrityError:
        # Another process created it between our read and our insert.
        return ScheduleRun.objects.get(schedule_key=key, period=label)


def lease_free(now: datetime.datetime) -> Q:
    return Q(lease_token__isnull=True) | Q(lease_expires_at__lt=now)


def _lease_until() -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=get_setting("SCHEDULE_LEASE"))


def _take_lease(record: ScheduleRun) -> uuid.UUID | None:
    """Hold the run (a conditional UPDATE: one process wins); None when another holds it."""
    token = uuid.uuid4()
    taken = ScheduleRun.objects.filter(
        lease_free(timezone.now()), pk=record.pk, status=ScheduleRunStatus.RUNNING
    ).update(lease_token=token, lease_expires_at=_lease_until())
    return token if taken else None


@contextlib.contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector for one batch.

    A batch holds some hundred objects per recipient (contexts, rows) until it is
    inserted; the collector would walk them again at every few hundred allocations, for
    nothing: reference counting frees them when the batch ends. That walking was a fifth of
    a run's CPU (bench/bench_schedule.py). The batch bounds what goes uncollected.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build(schedule: Schedule, label: str, recipient: Recipient) -> Email:
    email = build_email(
        schedule.template, recipient.to, recipient.context,
        language=recipient.language or schedule.language,
        category=schedule.category, secret_keys=schedule.secret_keys or None,
        source=recipient.source,
    )
    if not email.to:
        # A blank address (an object whose email is ""): no email, rather than one to
        # nobody shared by every such recipient under the key of "".
        raise InvalidEmailOption(f"to is {recipient.to!r}: the recipient has no address.")
    # Keyed once build_email has checked the addresses: a recipient yielding an int or a
    # lone surrogate is then skipped with the reason, instead of failing the key's
    # hashing, and the run with it, at every retry.
    email.idempotency_key = idempotency_key(schedule, label, email.to)
    return email


def _built(schedule: Schedule, label: str, recipients: list[Recipient]
           ) -> tuple[dict[str, Email], str, int]:
    """The batch's emails by idempotency key (each recipient once), the last reason a
    recipient was skipped, and how many were."""
    emails: dict[str, Email] = {}
    reason = ""
    skipped = 0
    for recipient in recipients:
        try:
            email = _build(schedule, label, recipient)
        except (InvalidEmailOption, ContextNotSerializable) as err:
            # One bad address must not stop a run to everyone else: skip it, say why.
            skipped += 1
            reason = f"{recipient.to!r}: {err}"
            logger.warning("Schedule %s, period %s: skipped %s", schedule.key, label, reason)
            continue
        emails.setdefault(email.idempotency_key, email)
    return emails, reason, skipped


def _write_batch(schedule, label, record, token, recipient_count, cursor, tally, emails,
                 reason, skipped) -> None:
    """The batch's transaction (its rows and the run's cursor), then its delivery.

    The tally is added to here only, after the commit: on the writer thread, while the
    run builds the next batch (a ``+=`` from both threads could lose one's count), and
    only for what the run's record counts too (not a batch the lost lease rolled back).
    """
    with transaction.atomic():
        existing = set(Email.objects.filter(idempotency_key__in=list(emails))
                       .values_list("idempotency_key", flat=True))
        new = [email for key, email in emails.items() if key not in existing]
        updates = {"cursor": cursor, "lease_expires_at": _lease_until(),
                   "recipients_done": F("recipients_done") + recipient_count,
                   "emails_queued": F("emails_queued") + len(new),
                   "recipients_skipped": F("recipients_skipped") + skipped}
        if reason:
            updates["last_error"] = reason
        # First, so the row stays locked to the commit: a run whose lease another process
        # took over writes nothing (the transaction rolls back).
        if not ScheduleRun.objects.filter(pk=record.pk, lease_token=token).update(**updates):
            raise RunLost
        already_queued = len(emails) - len(new)
        refused = _insert(new)
        if refused:
            new = _without_refused(schedule, label, record, new, refused, tally)
    tally.done += recipient_count
    tally.skipped += skipped
    tally.queued += len(new)
    tally.already_queued += already_queued
    # After the commit: a crash before this line leaves queued rows the outbox sweep sends.
    if new:
        enqueue_delivery(list(
            Email.objects.filter(idempotency_key__in=[email.idempotency_key for email in new],
                                 status=EmailStatus.QUEUED).values_list("pk", flat=True)
        ))


def _refuses_a_row(err: Exception) -> bool:
    """Whether ``err`` is the refusal of a row the database cannot hold: the server's (a
    value too long, a NUL, a check; a JSON string over 256 MB, a "program limit" that
    Django reports as an OperationalError) or the driver's, before sending it (a NUL, a
    lone surrogate). Not a lost connection: that fails the batch, to be retried whole."""
    if isinstance(err, (DataError, IntegrityError, ValueError)):
        return True
    # SQLSTATE class 54, program limit exceeded (PostgreSQL).
    return str(getattr(err.__cause__, "sqlstate", None) or "").startswith("54")


def _insert(emails: list[Email]) -> dict[str, str]:
    """Insert the rows: with COPY on PostgreSQL (psycopg 3), a bulk INSERT elsewhere.

    COPY cannot skip a conflict, so a row whose key a ``send()`` committed meanwhile (the
    keys are checked just before) makes the batch fall back to an INSERT that ignores it.
    A row the database refuses for another reason (validation missed it) would fail the
    batch again at every retry, and the schedule with it: the rows are then inserted one
    by one and the refused ones are returned, each key with the reason.
    """
    if not emails:
        return {}
    connection = connections[router.db_for_write(Email)]
    try:
        with transaction.atomic(using=connection.alias):
            if connection.vendor == "postgresql" and _is_psycopg3():
                try:
                    with transaction.atomic(using=connection.alias):
                        copy_rows(connection, Email, emails)
                    return {}
                except IntegrityError:
                    pass
            Email.objects.bulk_create(emails, batch_size=500, ignore_conflicts=True)
        return {}
    except (DatabaseError, ValueError) as err:
        if not _refuses_a_row(err):
            raise
        return _insert_one_by_one(connection, emails)


def _insert_one_by_one(connection, emails: list[Email]) -> dict[str, str]:
    refused = {}
    for email in emails:
        try:
            with transaction.atomic(using=connection.alias):
                Email.objects.bulk_create([email], ignore_conflicts=True)
        except (DatabaseError, ValueError) as err:
            if not _refuses_a_row(err):
                raise
            # The first line only: PostgreSQL details a refused row with all its values,
            # context and secrets included, and the run's error is shown to staff.
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            refused[email.idempotency_key] = f"the database refused its row: {first_line}"
    return refused


def _without_refused(schedule, label, record, new, refused, tally) -> list[Email]:
    """``new`` without the rows the database refused, which count as skipped recipients
    (in the batch's transaction, with the run's counters)."""
    reasons = [f"{email.to!r}: {refused[email.idempotency_key]}" for email in new
               if email.idempotency_key in refused]
    for reason in reasons:
        logger.warning("Schedule %s, period %s: skipped %s", schedule.key, label, reason)
    tally.skipped += len(refused)
    ScheduleRun.objects.filter(pk=record.pk).update(
        emails_queued=F("emails_queued") - len(refused),
        recipients_skipped=F("recipients_skipped") + len(refused), last_error=reasons[-1])
    return [email for email in new if email.idempotency_key not in refused]


def _is_psycopg3() -> bool:
    """psycopg 3 streams COPY data from Python; psycopg2 would need a file."""
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return is_psycopg3


def _dry_run(schedule, due, label, source, tally, progress) -> Progress:
    tally.total = source.total(due)
    for recipients, _cursor in source.batches(due, "", _batch_size()):
        emails, _reason, skipped = _built(schedule, label, recipients)
        tally.skipped += skipped
        existing = Email.objects.filter(idempotency_key__in=list(emails)).count()
        tally.done += len(recipients)
        tally.already_queued += existing
        tally.queued += len(emails) - existing
        if progress:
            progress(tally)
    tally.outcome = "dry run"
    return tally
