"""The Celery task celery beat calls for each schedule, and the admin's "resume now"."""

from __future__ import annotations

import datetime
import logging

from celery import shared_task

from ..conf import get_setting
from ..models import ScheduleRun, ScheduleRunStatus
from .definitions import get_schedule
from .periods import due_time
from .runs import run, unfinished

logger = logging.getLogger(__name__)

RUN_TASK = "transactional_mail.run_schedule"
RESUME_TASK = "transactional_mail.resume_schedule_run"


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
    failure = None
    for record in unfinished(schedule):
        logger.info("Schedule %s: resuming the run of period %s.", key, record.period)
        try:
            run(schedule, datetime.datetime.fromisoformat(record.period), label=record.period)
        except Exception as err:
            # A period that fails at every attempt (its source raises) must not keep the
            # current one, and every later one, from running: it stays unfinished, to be
            # resumed at the next tick, and the task still fails, after the current period.
            logger.exception("Schedule %s: the run of period %s failed again; running the "
                             "current period anyway.", key, record.period)
            failure = failure or err
    outcome = run(schedule, due_time(schedule)).outcome
    if failure is not None:
        raise failure
    return outcome


@shared_task(name=RESUME_TASK, ignore_result=True)
def resume_schedule_run(run_id: int) -> str:
    """Finish the one run ``run_id`` (the admin's "resume now"), and nothing else.

    Unlike ``run_schedule`` it never starts the current period: a schedule staff paused in
    beat stays paused. Safe to run twice: a finished run, or one another process holds,
    is left as it is. Returns the run's outcome.
    """
    record = ScheduleRun.objects.filter(pk=run_id).first()
    if record is None or record.status == ScheduleRunStatus.DONE:
        return "already done"
    if record.schedule_key not in (get_setting("SCHEDULES") or {}):
        logger.warning("No schedule %r in TRANSACTIONAL_MAIL['SCHEDULES']; the run of "
                       "period %s cannot be resumed.", record.schedule_key, record.period)
        return "unknown"
    schedule = get_schedule(record.schedule_key)
    logger.info("Schedule %s: resuming the run of period %s.", record.schedule_key,
                record.period)
    return run(schedule, datetime.datetime.fromisoformat(record.period),
               label=record.period).outcome
