"""The Celery task celery beat calls for each schedule."""

from __future__ import annotations

import datetime
import logging

from celery import shared_task

from ..conf import get_setting
from .definitions import get_schedule
from .periods import due_time
from .runs import run, unfinished

logger = logging.getLogger(__name__)

RUN_TASK = "transactional_mail.run_schedule"


@shared_task(name=RUN_TASK, ignore_result=True)
def run_schedule(key: str) -> str:
    """Finish the schedule's runs that stopped half-way, then run its current period.

    The period is the latest time the schedule was due: a task that beat sends late (a
    backlog, beat restarted after the due time) still runs the period it was sent for, and
    one redelivered or sent twice finds the period done. Returns the current run's outcome.
    """
    if key not in (get_setting("SCHEDULES") or {}):
        # A beat row left over from a schedule just removed (rows are removed on migrate
        # and when beat starts).
        logger.warning("No schedule %r in TRANSACTIONAL_MAIL['SCHEDULES']; nothing to run.",
                       key)
        return "unknown"
    schedule = get_schedule(key)
    for record in unfinished(schedule):
        logger.info("Schedule %s: resuming the run of period %s.", key, record.period)
        run(schedule, datetime.datetime.fromisoformat(record.period), label=record.period)
    return run(schedule, due_time(schedule)).outcome
