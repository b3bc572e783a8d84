"""When a schedule is due, and the names of its periods."""

from __future__ import annotations

import datetime

import pytest
from celery.schedules import crontab

from transactional_mail.periodic.definitions import parse_schedule
from transactional_mail.periodic.periods import due_time, parse_period, period_label

from .conftest import weekly

UTC = datetime.timezone.utc


def at(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


def test_a_crontab_is_due_at_its_last_time_in_its_own_time_zone():
    """Monday 08:00 in Paris is 07:00 UTC in winter; any time until the next Monday maps
    to it."""
    schedule = parse_schedule("weekly", weekly())
    for now in (at(2026, 11, 30, 7, 0), at(2026, 12, 3, 12, 0), at(2026, 12, 7, 6, 59)):
        assert period_label(schedule, due_time(schedule, now)) == "2026-11-30T08:00+01:00"
    assert period_label(schedule, due_time(schedule, at(2026, 11, 30, 6, 59))) == (
        "2026-11-23T08:00+01:00")


def test_a_crontab_follows_daylight_saving_time():
    """In summer, 08:00 in Paris is 06:00 UTC: the label carries the summer offset."""
    schedule = parse_schedule("weekly", weekly())
    due = due_time(schedule, at(2026, 7, 6, 6, 30))
    assert due == at(2026, 7, 6, 6, 0)
    assert period_label(schedule, due) == "2026-07-06T08:00+02:00"


def test_a_crontab_on_a_rare_day_is_found():
    """29 February: the search reaches back years."""
    schedule = parse_schedule("leap", weekly(schedule=crontab(0, 0, day_of_month=29,
                                                             month_of_year=2)))
    assert period_label(schedule, due_time(schedule, at(2027, 1, 1))) == (
        "2024-02-29T00:00+01:00")


def test_an_interval_is_counted_from_the_epoch():
    """Every hour: due at the top of the hour, whenever the task starts in it."""
    schedule = parse_schedule("hourly", weekly(schedule=datetime.timedelta(hours=1),
                                               timezone="UTC"))
    assert due_time(schedule, at(2026, 11, 30, 10, 59, 59)) == at(2026, 11, 30, 10)
    assert period_label(schedule, at(2026, 11, 30, 10)) == "2026-11-30T10:00:00+00:00"
    seconds = parse_schedule("fast", weekly(schedule="2s", timezone="UTC"))
    assert due_time(seconds, at(2026, 11, 30, 10, 0, 3)) == at(2026, 11, 30, 10, 0, 2)


def test_parse_period_reads_a_label_and_a_local_time():
    schedule = parse_schedule("weekly", weekly())
    assert parse_period(schedule, "2026-11-30T08:00+01:00") == at(2026, 11, 30, 7)
    assert parse_period(schedule, "2026-11-30T08:00") == at(2026, 11, 30, 7)


def test_parse_period_refuses_a_time_the_schedule_is_not_due():
    """A period that is no due time would open a second set of idempotency keys for the
    same week: refused, naming the period that contains it."""
    schedule = parse_schedule("weekly", weekly())
    with pytest.raises(ValueError, match=r"not due at 2026-12-01T08:00.*2026-11-30T08:00\+01:00"):
        parse_period(schedule, "2026-12-01T08:00")
    with pytest.raises(ValueError, match="not an ISO 8601"):
        parse_period(schedule, "last monday")


def test_the_next_due_time_of_a_crontab_and_of_an_interval():
    """What the schedule runs admin shows: the first due time after now."""
    from transactional_mail.periodic.periods import next_due_time

    schedule = parse_schedule("weekly", weekly())
    assert next_due_time(schedule, at(2026, 11, 30, 7, 0)) == at(2026, 12, 7, 7, 0)
    assert next_due_time(schedule, at(2026, 11, 30, 6, 59)) == at(2026, 11, 30, 7, 0)
    # Across the change to summer time: 08:00 in Paris is then 06:00 UTC.
    assert next_due_time(schedule, at(2027, 3, 23, 12)) == at(2027, 3, 29, 6, 0)
    leap = parse_schedule("leap", weekly(schedule=crontab(0, 0, day_of_month=29,
                                                         month_of_year=2)))
    assert period_label(leap, next_due_time(leap, at(2026, 3, 1))) == "2028-02-29T00:00+01:00"
    hourly = parse_schedule("hourly", weekly(schedule=datetime.timedelta(hours=1),
                                             timezone="UTC"))
    assert next_due_time(hourly, at(2026, 11, 30, 10, 0)) == at(2026, 11, 30, 11)
    assert next_due_time(hourly, at(2026, 11, 30, 10, 59, 59)) == at(2026, 11, 30, 11)
