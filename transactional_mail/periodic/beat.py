"""The django-celery-beat rows of the schedules, kept as the settings say.

One ``PeriodicTask`` per schedule, named ``transactional_mail.schedule:<key>``, calling
``transactional_mail.run_schedule``. They are synced after ``migrate`` and when celery
beat starts (before it reads its rows): added, changed and removed with the settings,
while ``enabled`` stays as staff set it in the admin (a paused schedule stays paused).
"""

from __future__ import annotations

import json
import logging

from celery.schedules import crontab
from django.apps import apps
from django.db import DatabaseError, transaction

from ..conf import get_setting
from .definitions import Schedule, all_schedules
from .tasks import RUN_TASK

logger = logging.getLogger(__name__)

NAME_PREFIX = "transactional_mail.schedule:"


def row_name(key: str) -> str:
    """The ``PeriodicTask.name`` of the schedule ``key``."""
    return NAME_PREFIX + key


def sync_schedule_rows(using: str = "default", **kwargs) -> None:
    """Create, update and delete the schedules' beat rows; a signal receiver.

    Connected to ``post_migrate`` and to Celery's ``beat_init``. A row is saved only when
    something about it changed, so beat does not reload its schedule for nothing.
    """
    if not apps.is_installed("django_celery_beat"):
        return
    from django_celery_beat.models import PeriodicTask

    schedules = all_schedules()
    try:
        with transaction.atomic(using=using):
            for schedule in schedules.values():
                _sync_row(schedule, using)
            stale = PeriodicTask.objects.using(using).filter(
                task=RUN_TASK, name__startswith=NAME_PREFIX
            ).exclude(name__in=[row_name(key) for key in schedules])
            for row in stale:
                # One by one: PeriodicTask.delete() tells beat its rows changed.
                logger.info("Removing the beat row %r: its schedule is no longer in "
                            "the settings.", row.name)
                row.delete(using=using)
    except DatabaseError:
        logger.warning("Could not sync the transactional_mail schedules' beat rows on %r; "
                       "run migrate for django_celery_beat.", using, exc_info=True)


def _sync_row(schedule: Schedule, using: str) -> None:
    from django_celery_beat.models import (
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
    )

    wanted = {
        "task": RUN_TASK,
        "args": "[]",
        "kwargs": json.dumps({"key": schedule.key}),
        "queue": get_setting("QUEUE"),
        "description": schedule.description or (
            f"Periodic email {schedule.key!r} (TRANSACTIONAL_MAIL['SCHEDULES']). "
            "Disable it to pause the schedule."
        ),
        "crontab": None,
        "interval": None,
    }
    if isinstance(schedule.every, crontab):
        cron = schedule.every
        wanted["crontab"] = CrontabSchedule.objects.using(using).get_or_create(
            minute=str(cron._orig_minute), hour=str(cron._orig_hour),
            day_of_week=str(cron._orig_day_of_week),
            day_of_month=str(cron._orig_day_of_month),
            month_of_year=str(cron._orig_month_of_year),
            timezone=schedule.timezone,
        )[0]
    else:
        wanted["interval"] = IntervalSchedule.objects.using(using).get_or_create(
            every=int(schedule.every.total_seconds()), period=IntervalSchedule.SECONDS
        )[0]
    row = PeriodicTask.objects.using(using).filter(name=row_name(schedule.key)).first()
    if row is None:
        PeriodicTask(name=row_name(schedule.key), **wanted).save(using=using)
        return
    changed = {name: value for name, value in wanted.items()
               if getattr(row, name) != value}
    if changed:
        for name, value in changed.items():
            setattr(row, name, value)
        row.save(using=using)
