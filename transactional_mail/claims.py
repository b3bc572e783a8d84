"""Claims: which worker may send an email, and how the sweep tells a dead worker from a slow one.

A worker *claims* a batch of due emails with one conditional UPDATE (``queued``/
``scheduled`` -> ``sending``) that also writes a fresh random ``claim_token`` on each of
them. The token fences every later write: the worker checks that it still holds an
email right before handing it to the backend, and records each result only where the
row still carries its token. A worker whose email was recovered by the sweep and claimed
again elsewhere can therefore neither send it after the recovery nor overwrite the new
attempt's result.

On PostgreSQL the worker also holds a session-level advisory lock keyed by its claim
token from right after the claim until the batch is done. The database releases it when the
worker's connection ends, so a lock that is free on a row stuck in ``sending`` means its
worker is gone (killed, crashed, lost its database connection), and a lock that is held
means the worker is alive and merely slow: the sweep recovers only the former. Other
databases cannot tell the two apart; there the sweep recovers every email in ``sending``
for longer than ``SENDING_TIMEOUT``, and a send slower than that may go out twice (see
docs/statuses-and-outbox.md).

The lock also makes the check before each send free for a first attempt: once the lock
is held and the rows were read back (still ``sending``, still carrying the token), the
sweep cannot take them, and no webhook can move an email the ESP has never seen. So
``Claim.holds`` asks the database only where an ESP may hold a copy (a retry, a resend of
an email sent before, an earlier attempt of unknown outcome: a webhook may reconcile it)
and where no lock is held.
"""

from __future__ import annotations

import contextlib
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from .models import Email, EmailStatus
from .models.log import CLAIMABLE_STATUSES

#: A task may run this early (clock skew between machines) and still claim its email.
CLAIM_TOLERANCE = timedelta(seconds=2)

# The first key of every advisory lock the app takes ("tmai" in ASCII, as an int4), so
# that its locks do not collide with a site's own advisory locks on small integers.
_LOCK_NAMESPACE = 0x746D6169


@dataclass
class Claim:
    """The emails one worker claimed together, under one token."""

    token: uuid.UUID
    email_ids: list[int] = field(default_factory=list)
    #: The database session that took the claim's advisory lock (PostgreSQL), or None.
    lock_session: object | None = None

    @property
    def locked(self) -> bool:
        """Whether the claim's advisory lock, which keeps the sweep away, is still held: by
        the session that took it. A session that ended (Django reconnects after a closed
        connection) took the lock with it."""
        return self.lock_session is not None and _connection().connection is self.lock_session

    def holds(self, email: Email) -> bool:
        """Whether this claim still owns the email, in ``sending``: not recovered by the
        sweep, not moved on by a webhook reconciling an earlier attempt.

        ``email`` is a row read by ``rows()``. Under the lock, an email no ESP can hold a
        copy of is known to be held without a query (see the module's docstring).
        """
        if self.locked and _never_handed_over(email):
            return True
        return Email.objects.filter(
            pk=email.pk, claim_token=self.token, status=EmailStatus.SENDING
        ).exists()

    def rows(self):
        """The claimed emails still in ``sending`` under this claim's token, as a queryset."""
        return fenced(self.email_ids, self.token).filter(status=EmailStatus.SENDING)


@contextlib.contextmanager
def claim(
    email_ids: int | Iterable[int] | None, limit: int = 1, now: datetime | None = None
) -> Iterator[Claim]:
    """Claim ``email_ids`` and other due emails, up to ``limit`` in all, for the ``with``
    block.

    ``email_ids`` (a task's own emails) come first, those that are claimable; the others
    are the longest-due emails nobody else is claiming (``SKIP LOCKED`` on PostgreSQL).
    The claim's advisory lock (PostgreSQL) is held for the block. The claim's
    ``email_ids`` is empty when there was nothing to claim: then it cost one statement.
    """
    token = uuid.uuid4()
    own = [email_ids] if isinstance(email_ids, int) else list(dict.fromkeys(email_ids or ()))
    limit, now = max(limit, len(own), 1), now or timezone.now()
    if _is_postgresql():
        claimed = _claim_rows_postgresql(token, own, limit, now)
    else:
        claimed = _claim_rows(token, own, limit, now)
    if not claimed:
        yield Claim(token)
        return
    # Taken after the claim, which is safe: the sweep only looks at claims older than
    # SENDING_TIMEOUT, and should it ever recover one before its lock is taken, the rows
    # read under the lock (Claim.rows) no longer include it.
    with _claim_lock(token) as lock_session:
        yield Claim(token, claimed, lock_session)


def _never_handed_over(email: Email) -> bool:
    """Whether no ESP can have a copy of ``email`` that a webhook would report: its first
    attempt, never sent before (a resend starts its attempts again) and no earlier attempt
    of unknown outcome."""
    return email.attempts == 1 and email.sent_at is None and not email.outcome_uncertain


def fenced(email_ids: int | Iterable[int], token: uuid.UUID | None):
    """The emails' rows, as a queryset, while the claim ``token`` is the last one made."""
    ids = [email_ids] if isinstance(email_ids, int) else list(email_ids)
    return Email.objects.filter(pk__in=ids, claim_token=token)


def abandoned(rows: Iterable[tuple[int, uuid.UUID | None]]) -> list[int]:
    """The ids among ``rows`` ((email id, claim token) of emails in ``sending``) whose
    worker is gone.

    On PostgreSQL, those whose claim's advisory lock is free. Each lock is taken until
    the end of the caller's transaction, which must be open, so no worker can take it
    meanwhile. Elsewhere every email is taken for abandoned.
    """
    rows = list(rows)
    if not _is_postgresql() or not rows:
        return [email_id for email_id, _ in rows]
    free: dict[uuid.UUID | None, bool] = {}
    with _connection().cursor() as cursor:
        for _, token in rows:
            if token not in free:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", lock_key(token))
                free[token] = cursor.fetchone()[0]
    return [email_id for email_id, token in rows if free[token]]


def lock_key(token: uuid.UUID | None) -> tuple[int, int]:
    """The advisory lock of a claim: (namespace, the token folded into a signed int4).

    Two tokens may share a lock (one chance in 2**32), which only ever makes the sweep
    wait for the other claim's worker.
    """
    folded = zlib.crc32(token.bytes if token else b"") - 2**31
    return (_LOCK_NAMESPACE, folded)


def _claim_rows_postgresql(
    token: uuid.UUID, own: list[int], limit: int, now: datetime
) -> list[int]:
    """The claim as one statement: pick (``SKIP LOCKED``: concurrent workers take
    disjoint batches instead of queueing on rows), update and return the claimed ids."""
    table = Email._meta.db_table
    column = {name: Email._meta.get_field(name).column for name in (
        "id", "status", "next_attempt_at", "claim_token", "claimed_at", "status_changed_at",
        "attempts")}
    due = now + CLAIM_TOLERANCE
    claimable = [str(status) for status in CLAIMABLE_STATUSES]
    others = limit - len(own)
    sql = f"""
        WITH own AS (
            SELECT {column["id"]}, {column["next_attempt_at"]} FROM {table}
            WHERE {column["id"]} = ANY(%(own)s) AND {column["status"]} = ANY(%(claimable)s)
              AND {column["next_attempt_at"]} <= %(due)s
            FOR UPDATE SKIP LOCKED
        ), others AS (
            SELECT {column["id"]}, {column["next_attempt_at"]} FROM {table}
            WHERE {column["status"]} = ANY(%(claimable)s) AND {column["next_attempt_at"]} <= %(due)s
              AND {column["id"]} <> ALL(%(own)s)
            ORDER BY {column["next_attempt_at"]}
            LIMIT %(others)s
            FOR UPDATE SKIP LOCKED
        ), picked AS (
            SELECT {column["id"]} AS id, 0 AS rank, {column["next_attempt_at"]} AS due FROM own
            UNION ALL
            SELECT {column["id"]}, 1, {column["next_attempt_at"]} FROM others
        )
        UPDATE {table} SET
            {column["status"]} = %(sending)s, {column["claim_token"]} = %(token)s,
            {column["claimed_at"]} = %(now)s, {column["status_changed_at"]} = %(now)s,
            {column["attempts"]} = {table}.{column["attempts"]} + 1
        FROM picked WHERE {table}.{column["id"]} = picked.id
        RETURNING picked.id, picked.rank, picked.due
    """
    with _connection().cursor() as cursor:
        cursor.execute(sql, {
            "own": own, "claimable": claimable, "due": due, "others": others,
            "sending": str(EmailStatus.SENDING), "token": token, "now": now,
        })
        rows = cursor.fetchall()
    return [row[0] for row in sorted(rows, key=lambda row: (row[1], row[2], row[0]))]


def _claim_rows(token: uuid.UUID, own: list[int], limit: int, now: datetime) -> list[int]:
    """The claim on databases without SKIP LOCKED: read the candidates, update them."""
    due = now + CLAIM_TOLERANCE
    claimable = Email.objects.filter(status__in=CLAIMABLE_STATUSES, next_attempt_at__lte=due)
    with transaction.atomic(using=_alias()):
        wanted = list(own)
        if limit > len(wanted):
            others = claimable.exclude(pk__in=wanted).order_by("next_attempt_at")
            wanted += list(others.values_list("pk", flat=True)[: limit - len(wanted)])
        if not wanted:
            return []
        claimed = claimable.filter(pk__in=wanted).update(
            status=EmailStatus.SENDING,
            claim_token=token,
            claimed_at=now,
            status_changed_at=now,
            attempts=F("attempts") + 1,
        )
    if claimed == len(wanted):
        return wanted  # the common cases (all or nothing) need no second look
    if not claimed:
        return []
    mine = set(fenced(wanted, token).values_list("pk", flat=True))
    return [pk for pk in wanted if pk in mine]


@contextlib.contextmanager
def _claim_lock(token: uuid.UUID) -> Iterator[object | None]:
    """Hold the claim's advisory lock for the block (PostgreSQL; elsewhere nothing); give
    the database session (the DB-API connection) that holds it, or None.

    A lock another claim's token shares (one chance in 2**32) is not taken again: the
    sweep then sees it held and waits for that other worker, which is only slower, and
    this claim checks each email before sending it, as where there are no locks.
    """
    if not _is_postgresql():
        yield None
        return
    connection = _connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", lock_key(token))
        session = connection.connection if cursor.fetchone()[0] else None
    try:
        yield session
    finally:
        # A session that ended meanwhile released the lock with it.
        if session is not None and connection.connection is session:
            with contextlib.suppress(Exception), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", lock_key(token))


def _alias() -> str:
    return router.db_for_write(Email)


def _connection():
    return connections[_alias()]


def _is_postgresql() -> bool:
    return _connection().vendor == "postgresql"
