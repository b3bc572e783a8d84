"""Claims: which worker may send an email, and how the sweep tells a dead worker from a slow one.

A worker *claims* an email with a conditional UPDATE (``queued``/``scheduled`` ->
``sending``) that also writes a fresh random ``claim_token``. The token fences every later
write: the worker checks that it still holds its claim right before handing the message
to the backend, and records the attempt's result only where the row still carries its
token. A worker whose email was recovered by the sweep and claimed again elsewhere can
therefore neither send it after the recovery nor overwrite the new attempt's result.

On PostgreSQL the worker also holds a session-level advisory lock on the email while it
sends. The database releases it when the worker's connection ends, so a lock that is free
on a row stuck in ``sending`` means its worker is gone (killed, crashed, lost its
database connection), and a lock that is held means the worker is alive and merely slow:
the sweep recovers only the former. Other databases cannot tell the two apart; there the
sweep recovers every email in ``sending`` for longer than ``SENDING_TIMEOUT``, and a send
slower than that may go out twice (see docs/statuses-and-outbox.md).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.db import connections, router
from django.db.models import F
from django.utils import timezone

from .models import Email, EmailStatus
from .models.log import CLAIMABLE_STATUSES

#: A task may run this early (clock skew between machines) and still claim its email.
CLAIM_TOLERANCE = timedelta(seconds=2)

# The first key of every advisory lock the app takes ("tmail" in ASCII, as an int4), so
# that its locks do not collide with a site's own advisory locks on small integers.
_LOCK_NAMESPACE = 0x746D6169


def claim(email_id: int, now: datetime | None = None) -> uuid.UUID | None:
    """Claim one due email for delivery; return the claim's token, or None if not claimed.

    None means another worker has it, it was already sent or cancelled, or it is not due.
    """
    now = now or timezone.now()
    token = uuid.uuid4()
    claimed = Email.objects.filter(
        pk=email_id,
        status__in=CLAIMABLE_STATUSES,
        next_attempt_at__lte=now + CLAIM_TOLERANCE,
    ).update(
        status=EmailStatus.SENDING,
        claim_token=token,
        claimed_at=now,
        status_changed_at=now,
        attempts=F("attempts") + 1,
    )
    return token if claimed else None


def holds(email_id: int, token: uuid.UUID | None) -> bool:
    """Whether the claim ``token`` still owns the email, in ``sending`` (not recovered)."""
    return Email.objects.filter(
        pk=email_id, claim_token=token, status=EmailStatus.SENDING
    ).exists()


def fenced(email_id: int, token: uuid.UUID | None):
    """The email's row, as a queryset, while the claim ``token`` is the last one made."""
    return Email.objects.filter(pk=email_id, claim_token=token)


@contextlib.contextmanager
def sending_lock(email_id: int) -> Iterator[bool]:
    """Hold the email's advisory lock while sending (PostgreSQL); yield whether it was taken.

    False means another live session holds it: a worker is still sending this email. On
    other databases there is nothing to hold and it yields True.
    """
    connection = connections[router.db_for_write(Email)]
    if connection.vendor != "postgresql":
        yield True
        return
    key = _lock_key(email_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", key)
        taken = cursor.fetchone()[0]
    try:
        yield taken
    finally:
        if taken:
            # If the connection broke meanwhile, the server released the lock with it.
            with contextlib.suppress(Exception), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def abandoned(email_ids: Iterable[int]) -> list[int]:
    """The emails among ``email_ids`` (rows in ``sending``) whose worker is gone.

    On PostgreSQL, those whose advisory lock is free. Each is taken until the end of the
    caller's transaction, which must be open, so that no worker starts sending one while
    it is being recovered. Elsewhere every email is taken for abandoned.
    """
    email_ids = list(email_ids)
    connection = connections[router.db_for_write(Email)]
    if connection.vendor != "postgresql" or not email_ids:
        return email_ids
    free = []
    with connection.cursor() as cursor:
        for email_id in email_ids:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", _lock_key(email_id))
            if cursor.fetchone()[0]:
                free.append(email_id)
    return free


def _lock_key(email_id: int) -> tuple[int, int]:
    # pg_try_advisory_lock(int4, int4): the id is folded into a signed 32-bit integer. Two
    # ids 2**32 apart share a lock, which only ever makes the sweep wait longer.
    folded = (int(email_id) + 2**31) % 2**32 - 2**31
    return (_LOCK_NAMESPACE, folded)
