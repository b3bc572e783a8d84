"""When a schedule is due: the period a run belongs to, and its stable label.

A run is named by the time it was due, so that every way of starting it (beat, a
redelivered task, ``manage.py run_schedule``) agrees on the period, and with it on the
idempotency of each recipient's email.
"""

from __future__ import annotations

import datetime

from celery.schedules import crontab
from django.utils import timezone

from ..exceptions import ConfigurationError
from .definitions import Schedule

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
#: How far back a crontab's last due time is looked for: eight years covers the rarest
#: (29 February on a given weekday).
_SEARCH_DAYS = 366 * 8


def due_time(schedule: Schedule, now: datetime.datetime | None = None) -> datetime.datetime:
    """The latest time at or before ``now`` the schedule was due, in its time zone."""
    now = (now or timezone.now()).astimezone(schedule.timezone)
    if isinstance(schedule.every, crontab):
        return _last_cron_time(schedule.every, now)
    seconds = int(schedule.every.total_seconds())
    elapsed = int((now - _EPOCH).total_seconds())
    return (_EPOCH + datetime.timedelta(seconds=elapsed - elapsed % seconds)).astimezone(
        schedule.timezone
    )


def _last_cron_time(cron: crontab, now: datetime.datetime) -> datetime.datetime:
    zone = now.tzinfo
    today = now.date()
    for back in range(_SEARCH_DAYS):
        day = today - datetime.timedelta(days=back)
        # Celery numbers weekdays from Sunday = 0.
        if (day.month not in cron.month_of_year or day.day not in cron.day_of_month
                or day.isoweekday() % 7 not in cron.day_of_week):
            continue
        for hour in sorted(cron.hour, reverse=True):
            for minute in sorted(cron.minute, reverse=True):
                # A wall time skipped by a DST change reads with the offset before it
                # (zoneinfo's fold=0), i.e. an hour later: the run still happens that day.
                candidate = datetime.datetime.combine(day, datetime.time(hour, minute), zone)
                if candidate <= now:
                    return candidate
    raise ConfigurationError(f"The crontab {cron} was never due in the last eight years.")


def next_due_time(schedule: Schedule, now: datetime.datetime | None = None
                  ) -> datetime.datetime:
    """The first time after ``now`` the schedule is due, in its time zone (what the admin
    shows; beat keeps its own record of when it last ran a row)."""
    now = (now or timezone.now()).astimezone(schedule.timezone)
    if not isinstance(schedule.every, crontab):
        return due_time(schedule, now) + schedule.every
    cron = schedule.every
    for ahead in range(_SEARCH_DAYS):
        day = now.date() + datetime.timedelta(days=ahead)
        if (day.month not in cron.month_of_year or day.day not in cron.day_of_month
                or day.isoweekday() % 7 not in cron.day_of_week):
            continue
        for hour in sorted(cron.hour):
            for minute in sorted(cron.minute):
                candidate = datetime.datetime.combine(day, datetime.time(hour, minute),
                                                      now.tzinfo)
                if candidate > now:
                    return candidate
    raise ConfigurationError(f"The crontab {cron} is never due in the next eight years.")


def period_label(schedule: Schedule, due: datetime.datetime) -> str:
    """The period's name: the due time in ISO 8601 with the schedule's UTC offset."""
    due = due.astimezone(schedule.timezone)
    return due.isoformat(timespec="minutes" if isinstance(schedule.every, crontab) else "seconds")


def parse_period(schedule: Schedule, text: str) -> datetime.datetime:
    """The due time ``text`` names (ISO 8601; without an offset, in the schedule's time
    zone); ``ValueError`` saying why when the schedule is never due then."""
    try:
        value = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date and time, e.g. "
                         f"{period_label(schedule, due_time(schedule))!r}.") from None
    if timezone.is_naive(value):
        value = value.replace(tzinfo=schedule.timezone)
    due = due_time(schedule, value)
    if due != value:
        raise ValueError(
            f"The schedule {schedule.key!r} is not due at {text}; the period that "
            f"contains it is {period_label(schedule, due)!r}."
        )
    return due
