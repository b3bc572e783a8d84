"""The schedules' django-celery-beat rows follow the settings."""

from __future__ import annotations

import datetime
import json

import pytest
from celery.signals import beat_init
from django.core.management.sql import emit_post_migrate_signal
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from transactional_mail.periodic.beat import sync_schedule_rows

from .conftest import weekly

pytestmark = pytest.mark.django_db


def rows():
    return {row.name: row for row in PeriodicTask.objects.filter(
        task="transactional_mail.run_schedule")}


def test_migrate_installs_a_row_per_schedule(use_schedules):
    """A crontab row in the schedule's time zone, an interval row for a timedelta; both
    call the run task with the key."""
    use_schedules(weekly_report=weekly(), hourly=weekly(schedule=datetime.timedelta(hours=1)))
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    found = rows()
    weekly_row = found["transactional_mail.schedule:weekly_report"]
    assert json.loads(weekly_row.kwargs) == {"key": "weekly_report"}
    assert weekly_row.enabled and weekly_row.interval is None
    cron = weekly_row.crontab
    assert (cron.minute, cron.hour, cron.day_of_week, str(cron.timezone)) == (
        "0", "8", "mon", "Europe/Paris")
    hourly = found["transactional_mail.schedule:hourly"]
    assert (hourly.crontab, hourly.interval.every, hourly.interval.period) == (
        None, 3600, "seconds")
    # The app's own rows are still there.
    assert PeriodicTask.objects.filter(name="transactional_mail.sweep_outbox").exists()


def test_a_changed_schedule_updates_its_row_and_keeps_it_paused(use_schedules):
    use_schedules(weekly_report=weekly())
    sync_schedule_rows()
    PeriodicTask.objects.filter(name="transactional_mail.schedule:weekly_report").update(
        enabled=False)

    use_schedules(weekly_report=weekly(schedule="30m"))
    sync_schedule_rows()
    row = rows()["transactional_mail.schedule:weekly_report"]
    assert (row.enabled, row.crontab, row.interval.every) == (False, None, 1800)


def test_a_removed_schedule_loses_its_row(use_schedules):
    use_schedules(weekly_report=weekly(), daily=weekly(schedule="1d"))
    sync_schedule_rows()
    use_schedules(daily=weekly(schedule="1d"))
    sync_schedule_rows()
    assert list(rows()) == ["transactional_mail.schedule:daily"]


def test_an_unchanged_schedule_does_not_make_beat_reload(use_schedules):
    """Saving a row tells beat to reload every row: only a real change saves."""
    use_schedules(weekly_report=weekly())
    sync_schedule_rows()
    changed = PeriodicTasks.last_change()
    sync_schedule_rows()
    assert PeriodicTasks.last_change() == changed


def test_beat_starting_syncs_the_rows(use_schedules):
    """A deploy that changed SCHEDULES without migrate: beat's start fixes the rows."""
    use_schedules(weekly_report=weekly())
    beat_init.send(sender=None)
    assert list(rows()) == ["transactional_mail.schedule:weekly_report"]
