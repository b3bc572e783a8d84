"""The app's own django-celery-beat rows, installed after ``migrate``."""

from __future__ import annotations

import logging

from django.apps import apps
from django.db import DatabaseError

from .alerts import alert_settings
from .conf import get_setting

logger = logging.getLogger(__name__)

SWEEP_TASK = "transactional_mail.sweep_outbox"
PRUNE_TASK = "transactional_mail.prune_raw_events"
ALERTS_TASK = "transactional_mail.check_alerts"
RETENTION_TASK = "transactional_mail.redact_old_emails"
#: ``triggers.digests.close_digests``: the sweep that closes due digest windows.
CLOSE_DIGESTS_TASK = "transactional_mail.close_digests"


def install_periodic_tasks(using: str = "default", **kwargs) -> None:
    """Create or update the beat rows for the outbox sweep, the digests' closing, the
    raw-event pruning, the operator alerts and the retention of bodies, contexts, digest
    windows and cap counts.

    Runs on ``post_migrate``. A row staff disabled stays disabled; its schedule and queue
    follow the settings.
    """
    if not apps.is_installed("django_celery_beat"):
        return
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    queue = get_setting("QUEUE")
    wanted = {
        SWEEP_TASK: (get_setting("SWEEP_INTERVAL"), IntervalSchedule.SECONDS,
                     "Re-enqueue emails whose delivery task was lost (transactional_mail)."),
        CLOSE_DIGESTS_TASK: (get_setting("SWEEP_INTERVAL"), IntervalSchedule.SECONDS,
                             "Send the digests whose window has closed (transactional_mail)."),
        PRUNE_TASK: (1, IntervalSchedule.DAYS,
                     "Drop raw ESP webhook payloads older than RAW_EVENT_RETENTION_DAYS."),
        ALERTS_TASK: (alert_settings()["INTERVAL"], IntervalSchedule.SECONDS,
                      "Check bounce and complaint rates, volume and the outbox; mail "
                      "ADMINS about alerts (transactional_mail, docs/alerts.md)."),
        RETENTION_TASK: (1, IntervalSchedule.DAYS,
                         "Redact bodies and contexts of emails older than RETENTION_DAYS; "
                         "prune closed digest windows (DIGEST_RETENTION_DAYS) and "
                         "frequency-cap counts past their period."),
    }
    try:
        for task, (every, period, description) in wanted.items():
            interval, _ = IntervalSchedule.objects.using(using).get_or_create(
                every=every, period=period
            )
            PeriodicTask.objects.using(using).update_or_create(
                name=task,
                defaults={"task": task, "interval": interval, "queue": queue,
                          "description": description},
            )
    except DatabaseError:
        # django_celery_beat's tables are not migrated on this database (yet).
        logger.warning("Could not install the transactional_mail beat schedule on %r; "
                       "run migrate for django_celery_beat.", using, exc_info=True)
