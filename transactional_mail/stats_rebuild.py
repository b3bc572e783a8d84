"""Rebuild the daily statistics from the send log (``manage.py rebuild_mail_stats``).

The rebuild replays, for every email queued since a day, what the live hooks of
:mod:`transactional_mail.stats` count: sent (the email has a ``sent_at``), the first
delivered, bounced, complained, opened and clicked event (each stored event classified by
the same ``tracking.outcomes.classify`` the receiver used, in the order received), and the
unsubscribe ``Suppression`` rows it caused. It rewrites the days' rows and the emails'
``stat_flags`` in one transaction, so live counting resumes where the rebuild stops.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from types import SimpleNamespace

from django.db import connections, router, transaction
from django.utils import timezone

from . import stats
from .models import Email, EmailEvent, MailStatDay, StatFlag, Suppression, SuppressionReason
from .tracking.outcomes import HARD, classify

#: Emails read per query (and their events with them).
CHUNK_SIZE = 2000

_EMAIL_FIELDS = ("pk", "created_at", "template_key", "trigger_key", "category",
                 "subject_variant", "is_test", "attempts", "next_attempt_at", "sent_at")


def rebuild(since: datetime.date | None = None) -> int:
    """Rewrite the daily rows from ``since`` (every day when None); return how many rows
    there are now for those days.

    On PostgreSQL the emails and the daily rows are locked against writes while it runs
    (reads go on): a worker or webhook that counts meanwhile waits, then counts on top of
    the rebuilt rows.
    """
    emails = Email.objects.filter(is_test=False).only(*_EMAIL_FIELDS)
    rows = MailStatDay.objects.all()
    if since is not None:
        start = timezone.make_aware(datetime.datetime.combine(since, datetime.time()))
        emails, rows = emails.filter(created_at__gte=start), rows.filter(day__gte=since)
    using = router.db_for_write(MailStatDay)
    with transaction.atomic(using=using):
        _lock_writers(using)
        rows.delete()
        emails.exclude(stat_flags=0).update(stat_flags=0)
        totals: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        last = 0
        while True:
            chunk = list(emails.filter(pk__gt=last).order_by("pk")[:CHUNK_SIZE])
            if not chunk:
                break
            last = chunk[-1].pk
            flags: dict[int, list[int]] = defaultdict(list)
            for email, email_flags in _counted(chunk):
                key = tuple(stats.dimensions(email).items())
                for flag, delivered_at in email_flags:
                    for name, value in stats.increments(email, flag, delivered_at).items():
                        totals[key][name] += value
                flags[sum(flag for flag, _at in email_flags)].append(email.pk)
            for value, pks in flags.items():
                if value:  # one UPDATE per distinct set of flags in the chunk
                    Email.objects.filter(pk__in=pks).update(stat_flags=value)
        MailStatDay.objects.bulk_create(
            [MailStatDay(**dict(key), **counts)
             for key, counts in totals.items()],
            batch_size=1000,
        )
    return len(totals)


def _lock_writers(using: str) -> None:
    """Hold back live counting for the rebuild's transaction (PostgreSQL; SQLite allows
    one writer at a time anyway). Emails first, then the daily rows: the live hooks'
    order, so that neither side waits for the other in a cycle."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table)
                       for model in (Email, MailStatDay))
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE")


def _counted(chunk: list[Email]):
    """Each email of ``chunk`` with what it counts for: ``[(flag, delivered_at), ...]``."""
    events = defaultdict(list)
    for row in (EmailEvent.objects.filter(email__in=chunk)
                .order_by("email_id", "received_at", "pk")
                .values("email_id", "esp_name", "event_type", "reject_reason", "raw",
                        "hard_bounce", "timestamp", "received_at")):
        events[row["email_id"]].append(row)
    unsubscribed = set(
        Suppression.objects.filter(email__in=chunk, reason=SuppressionReason.UNSUBSCRIBE)
        .values_list("email_id", flat=True)
    )
    for email in chunk:
        found = {StatFlag.SENT: None} if email.sent_at is not None else {}
        for row in events[email.pk]:
            flag = stats.event_flag(_status(row), row["event_type"])
            if flag is not None and flag not in found:
                found[flag] = row["timestamp"] or row["received_at"]
        if email.pk in unsubscribed:
            found[StatFlag.UNSUBSCRIBED] = None
        yield email, list(found.items())


def _status(row: dict) -> str | None:
    """The status the stored event moved its email to, as the receiver classified it."""
    if row["hard_bounce"]:
        return HARD.status  # kept even when the raw event has been pruned
    event = SimpleNamespace(esp_event=row["raw"] if isinstance(row["raw"], dict) else {},
                            event_type=row["event_type"], reject_reason=row["reject_reason"])
    return classify(event, row["esp_name"]).status
