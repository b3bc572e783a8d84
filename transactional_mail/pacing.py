"""Pacing non-essential mail when it is due: quiet hours hold it, frequency caps stop it.

Delivery asks ``hold(email)`` after the suppressions and before rendering. Both rules
apply to non-essential categories only (``CATEGORIES``; an undeclared category is
essential), and both are decided at send time, when the email is really about to go:

- **Quiet hours** (``QUIET_HOURS``, in the recipient's time zone from
  ``RECIPIENT_TIMEZONE``): an email due inside them is rescheduled for their end, in the
  recipient's local time (an aware datetime, so a DST change in between is counted).
- **Frequency caps** (``FREQUENCY_CAPS``): a ``CapCount`` row per email sent, counted per
  recipient and category over the cap's rolling period. The row is written first and the
  count taken after it, under a transaction-scoped advisory lock per (recipient,
  category) on PostgreSQL (SQLite serialises writers), so two workers cannot both take
  the last slot. An email over the cap is suppressed ("frequency cap"), unless it
  carries digest events: those are folded into the recipient's next digest window.

Counts no cap reads any more are deleted: by the cap itself for the (recipient, category)
it decides, and daily by ``prune_cap_counts`` for every other one.
"""

from __future__ import annotations

import datetime
import logging
import zlib
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from .categories import get_category
from .conf import get_setting
from .durations import parse_delay
from .exceptions import InvalidEmailOption
from .models import CapCount, DigestItem, DigestWindow, Email, EmailStatus
from .models.suppression import normalize_address
from .snapshots import resolve_path

logger = logging.getLogger(__name__)

#: The first key of the caps' advisory locks ("tmac"), apart from the claims' ("tmai").
_CAP_LOCK_NAMESPACE = 0x746D6163

#: The reason an email over its cap is suppressed with (the log's filter looks for it).
FREQUENCY_CAP = "frequency cap"

#: How long after its period a count is pruned: a worker deciding a cap counts from the
#: clock it read when it started, which may lag the pruning's.
PRUNE_MARGIN = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class Hold:
    """Why a due email does not go now: its new status, the reason, and until when."""

    status: str
    reason: str
    until: datetime.datetime | None = None


def hold(email: Email, now: datetime.datetime | None = None) -> Hold | None:
    """Whether ``email`` must wait (quiet hours) or not go (frequency cap); None to send.

    Counts the email against its cap when it may go: call it once per attempt, right
    before sending (an email counted once is not counted again on a retry).
    """
    if email.is_test or _is_essential(email.category):
        return None  # a staff member's test send is wanted now, whatever the hour
    now = now or timezone.now()
    until = quiet_hours_end(email, now)
    if until is not None:
        return Hold(EmailStatus.SCHEDULED, "Quiet hours in the recipient's time zone "
                    f"(TRANSACTIONAL_MAIL['QUIET_HOURS']): rescheduled for their end, "
                    f"{until:%Y-%m-%d %H:%M} UTC.", until)
    return _frequency_cap(email, now)


def _is_essential(category: str) -> bool:
    """Whether mail of ``category`` is essential: never capped, never held.

    An undeclared category is essential: holding back mail nobody classified (a password
    reset, a receipt) would be worse than sending one too many.
    """
    return get_category(category).essential


def recipient_zone(email: Email) -> zoneinfo.ZoneInfo | datetime.tzinfo:
    """The time zone of the email's (first) recipient: ``RECIPIENT_TIMEZONE``, a dotted
    callable of the address or an attribute path on the source object; ``TIME_ZONE``
    when it gives nothing, or a name that is not a zone (logged)."""
    spec = get_setting("RECIPIENT_TIMEZONE")
    value: Any = None
    if spec and email.to:
        try:
            value = _zone_value(spec, email)
        except Exception:
            logger.warning("Email %s: RECIPIENT_TIMEZONE %r failed; using TIME_ZONE.",
                           email.pk, spec, exc_info=True)
    if isinstance(value, datetime.tzinfo):
        return value
    if value:
        try:
            return zoneinfo.ZoneInfo(str(value))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            logger.warning("Email %s: %r is not a time zone; using TIME_ZONE.", email.pk,
                           value)
    return timezone.get_default_timezone()


def _zone_value(spec: str, email: Email) -> Any:
    try:
        function = import_string(spec) if "." in spec else None
    except ImportError:
        function = None
    if callable(function):
        return function(email.to[0])
    if email.source_content_type_id is None:
        return None
    model = email.source_content_type.model_class()
    source = model._default_manager.filter(pk=email.source_object_id).first() if model else None
    return resolve_path(source, spec) if source is not None else None


def parse_clock(value: str) -> datetime.time:
    """``"21:00"`` -> ``time(21, 0)``; ValueError when it is not HH:MM."""
    hours, _, minutes = str(value).partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"{value!r} is not a time of day like '21:00'")
    return datetime.time(int(hours), int(minutes))


def quiet_hours_end(email: Email, now: datetime.datetime) -> datetime.datetime | None:
    """When the recipient's quiet hours holding ``email`` end (UTC); None when ``now`` is
    outside them, or none apply to its category."""
    config = get_setting("QUIET_HOURS")
    if not config:
        return None
    categories = config.get("categories")
    if categories is not None and email.category not in categories:
        return None
    start, end = parse_clock(config["start"]), parse_clock(config["end"])
    zone = recipient_zone(email)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    # Hours over midnight (21:00-08:00) hold the evening and the morning.
    inside = (start <= clock < end) if start <= end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + datetime.timedelta(days=1)
    # An aware local time, then UTC: across a DST change the wait is the real one. An end
    # inside a spring-forward gap (02:30) lands on the first instant after it.
    wall = datetime.datetime.combine(day, end, tzinfo=zone)
    return wall.astimezone(datetime.timezone.utc)


def _frequency_cap(email: Email, now: datetime.datetime) -> Hold | None:
    """Count ``email`` against its category's cap for its recipient (the first "to"
    address); a ``Hold`` when that puts it over the cap (and the count is undone)."""
    cap = (get_setting("FREQUENCY_CAPS") or {}).get(email.category)
    if not cap or not email.to:
        return None
    period, limit = parse_delay(cap["period"]), int(cap["count"])
    recipient = normalize_address(email.to[0])
    using = router.db_for_write(CapCount)
    counts = CapCount.objects.using(using)
    with transaction.atomic(using=using):
        if counts.filter(email_id=email.pk).exists():
            return None  # counted by an earlier attempt (a retry): it keeps its slot
        _lock(using, recipient, email.category)
        # Written before counting: on SQLite the INSERT takes the write lock, so the
        # count below sees every other worker's committed row too.
        counts.create(recipient_key=recipient, category=email.category, counted_at=now,
                      email_id=email.pk)
        mine = counts.filter(recipient_key=recipient, category=email.category)
        # Counts out of the period matter no more: dropped here, under the same lock, so
        # the table holds about `count` rows per recipient and category.
        mine.filter(counted_at__lte=now - period).delete()
        recent = mine.filter(counted_at__gt=now - period)
        if recent.count() <= limit:
            return None
        oldest = recent.order_by("counted_at").values_list("counted_at", flat=True).first()
        transaction.set_rollback(True, using=using)
    frees_at = (oldest or now) + period
    folded = fold_into_next_digest(email, now, frees_at)
    if folded:
        return Hold(EmailStatus.SUPPRESSED,
                    f"Frequency cap ({limit} per {period}): its {folded} event(s) were "
                    f"folded into the next digest, sent at {frees_at} or later.")
    return Hold(EmailStatus.SUPPRESSED,
                f"Suppressed: {FREQUENCY_CAP} ({limit} {email.category!r} emails per "
                f"{period} to this recipient; the next slot frees at {frees_at}).")


def _lock(using: str, recipient: str, category: str) -> None:
    """Serialise cap decisions of one (recipient, category) until the transaction ends
    (PostgreSQL; SQLite serialises writers by itself)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    key = zlib.crc32(f"{recipient}|{category}".encode()) - 2**31  # a signed int4
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_CAP_LOCK_NAMESPACE, key])


def fold_into_next_digest(email: Email, now: datetime.datetime,
                          earliest: datetime.datetime) -> int:
    """Move the digest events ``email`` carried into their recipient's open window (one
    opened, closing no sooner than ``earliest``, if none); return how many were moved.

    The events are those of a digest, or the first event of a window sent at once: held
    back by the cap, they go out with the next digest instead of being lost.
    """
    items = list(DigestItem.objects.filter(email_id=email.pk).select_related("window"))
    if not items:
        return 0
    old = items[0].window
    with transaction.atomic():
        window, _ = DigestWindow.objects.join(
            trigger_key=old.trigger_key, digest_key=old.digest_key, now=now,
            window_seconds=old.window_seconds, earliest_close=earliest,
            recipient=old.recipient, template_key=old.template_key, category=old.category,
            language=old.language, options=old.options,
        )
        if window.closes_at < earliest:  # an open window closing before the cap allows
            window.closes_at = earliest
            window.save(update_fields=["closes_at"])
        DigestItem.objects.filter(pk__in=[item.pk for item in items]).update(
            window=window, email=None)
    return len(items)


def prune_cap_counts(now: datetime.datetime | None = None, *, batch_size: int = 1000) -> int:
    """Delete the counts no cap reads any more; return how many.

    A count is dead once its category's period is over (by ``PRUNE_MARGIN``), and at once
    when its category has no cap in ``FREQUENCY_CAPS`` any more. The cap drops the old
    counts of the (recipient, category) it decides; this catches the recipients it never
    decides again. A malformed ``FREQUENCY_CAPS`` (check E030) prunes nothing, and a
    malformed cap keeps its counts: what is dead is not known. One DELETE of at most
    ``batch_size`` rows per statement, none held in a long transaction.
    """
    caps = get_setting("FREQUENCY_CAPS") or {}
    if not isinstance(caps, dict):
        return 0
    now = now or timezone.now()
    dead = ~Q(category__in=list(caps))
    for category, cap in caps.items():
        try:
            ended = now - parse_delay(cap["period"]) - PRUNE_MARGIN
        except (InvalidEmailOption, KeyError, TypeError, OverflowError):
            continue
        dead |= Q(category=category, counted_at__lte=ended)
    counts = CapCount.objects.using(router.db_for_write(CapCount))
    pruned = 0
    while True:
        ids = list(counts.filter(dead).values_list("pk", flat=True)[:batch_size])
        deleted = counts.filter(pk__in=ids).delete()[0] if ids else 0
        pruned += deleted
        if not deleted:
            break
    if pruned:
        logger.info("Pruned %d frequency-cap counts past their period.", pruned)
    return pruned
