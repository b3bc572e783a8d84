"""Daily statistics kept as emails are sent and events arrive.

Three hooks, each one call inside the transaction of the write it counts:

* ``record_sent(email)``: the worker recorded the ESP's acceptance (``delivery``);
* ``record_event(email, status, event_type, at)``: a tracking event was stored
  (``tracking.receiver``);
* ``record_unsubscribe(email)``: an unsubscribe caused by ``email`` added a
  ``Suppression`` (the tracking receiver, and the one-click unsubscribe view).

Each counts an email at most once per counter: a conditional UPDATE sets the counter's
bit in ``Email.stat_flags`` (one row affected wins, however many workers or webhook
retries race), then the day's row is incremented with ``F()`` (an UPDATE, or an INSERT
when the row is new; a concurrent INSERT loses on the unique constraint and updates).
The email's row is written before the day's row, in every writer (``stats_rebuild``
too), so they cannot deadlock. On PostgreSQL the worker's count of a sent email is part
of the statement that records the result (``transactional_mail.results``), in the same
order.
"""

from __future__ import annotations

import os
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.lookups import Exact
from django.utils import timezone

from .models import Email, EmailStatus
from .models.stats import BUCKET_FIELDS, DELIVERY_BUCKETS, MailStatDay, StatFlag

#: The counter each flag increments.
COUNTER_OF = {flag: flag.name.lower() for flag in StatFlag}

#: What an event's outcome (the status it moves its email to) counts as.
_STATUS_FLAGS = {
    EmailStatus.DELIVERED: StatFlag.DELIVERED,
    EmailStatus.BOUNCED: StatFlag.BOUNCED,
    EmailStatus.COMPLAINED: StatFlag.COMPLAINED,
}
#: Engagement events, which move no status.
_EVENT_TYPE_FLAGS = {"opened": StatFlag.OPENED, "clicked": StatFlag.CLICKED}


def event_flag(status: str | None, event_type: str) -> StatFlag | None:
    """What an event counts as: its outcome's status (delivered, bounced, complained) or
    its type (opened, clicked); None for events no counter counts."""
    if status in _STATUS_FLAGS:
        return _STATUS_FLAGS[status]
    return _EVENT_TYPE_FLAGS.get(event_type)


def record_sent(email: Email) -> None:
    """Count ``email`` as sent (once, however many attempts the ESP accepted)."""
    _record(email, StatFlag.SENT)


def record_event(email: Email, status: str | None, event_type: str, at: datetime) -> None:
    """Count the tracking event of ``email`` whose outcome is ``status`` (None: no status
    change), of Anymail type ``event_type``, that happened ``at``."""
    flag = event_flag(status, event_type)
    if flag is not None:
        _record(email, flag, delivered_at=at)


def record_unsubscribe(email: Email) -> None:
    """Count an unsubscribe caused by ``email``; call it where the ``Suppression`` row is
    created, inside the same transaction."""
    _record(email, StatFlag.UNSUBSCRIBED)


def day_of(email: Email) -> date:
    """The day ``email`` counts on: the day it was queued, in the site's time zone."""
    return timezone.localdate(email.created_at)


def dimensions(email: Email) -> dict:
    """The key of the daily row ``email`` counts in."""
    return {
        "day": day_of(email),
        "template_key": email.template_key,
        "trigger_key": email.trigger_key,
        "category": email.category,
        "subject_variant": email.subject_variant,
    }


def queued_at(email: Email) -> datetime:
    """When ``email`` was due to be sent: what time to delivery counts from.

    Its creation, or for an email on its first attempt, the time that attempt was due
    (a scheduled or delayed email, a resent one): the wait it was asked for is not
    delivery time.
    """
    if email.attempts <= 1 and email.next_attempt_at is not None:
        return max(email.created_at, email.next_attempt_at)
    return email.created_at


def delivery_bucket(seconds: float) -> str:
    """The histogram field of a delivery that took ``seconds``."""
    for bound, field in zip(DELIVERY_BUCKETS, BUCKET_FIELDS, strict=False):
        if seconds <= bound:
            return field
    return BUCKET_FIELDS[-1]


def increments(email: Email, flag: StatFlag, delivered_at: datetime | None = None) -> dict:
    """The counters one flag of ``email`` adds to its daily row."""
    counts = {COUNTER_OF[flag]: 1}
    if flag is StatFlag.DELIVERED and delivered_at is not None:
        seconds = max((delivered_at - queued_at(email)).total_seconds(), 0)
        counts[delivery_bucket(seconds)] = 1
    return counts


def _record(email: Email, flag: StatFlag, delivered_at: datetime | None = None) -> None:
    if email.is_test:
        return  # staff test sends would skew the rates
    first = (
        Email.objects.filter(pk=email.pk)
        .filter(Exact(F("stat_flags").bitand(flag.value), 0))
        .update(stat_flags=F("stat_flags").bitor(flag.value))
    )
    if first:
        email.stat_flags |= flag.value
        add(dimensions(email), increments(email, flag, delivered_at))


#: Rows a day's counts of one key are spread over, one per worker process (modulo).
SHARDS = 16


def shard() -> int:
    """This process's share of the daily rows.

    Each sent email adds to a daily row in the transaction that records it, so the row is
    locked until that commit (a WAL flush): two workers on one row took turns, and the
    statistics halved the delivery rate (bench/bench_delivery.py). Worker processes are
    forked one after another, so their consecutive ids give them distinct rows.
    """
    return os.getpid() % SHARDS


def add(key: dict, counts: dict[str, int]) -> None:
    """Add ``counts`` to the daily row of ``key`` (this process's shard of it), creating
    it when needed; safe under concurrent workers. Call it inside a transaction."""
    key = {**key, "shard": shard()}
    rows = MailStatDay.objects.filter(**key)
    values = {name: F(name) + value for name, value in counts.items()}
    if rows.update(**values):
        return
    try:
        with transaction.atomic():
            MailStatDay.objects.create(**key, **counts)
    except IntegrityError:
        rows.update(**values)  # another worker created it first
