"""Hostile operators and races around scheduled runs: "resume now" without CSRF, twice, or
on a run another process holds; a period that fails for good must not block the next."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tests.periodic.conftest import MONDAY, weekly
from tests.test_admin_schedules import HELD, URL, operator, resume, runs, schedules  # noqa: F401
from transactional_mail.models import Email, ScheduleRun
from transactional_mail.periodic.definitions import parse_schedule
from transactional_mail.periodic.periods import due_time, period_label
from transactional_mail.periodic.tasks import resume_schedule_run, run_schedule

pytestmark = pytest.mark.django_db

APPLY = "transactional_mail.periodic.tasks.resume_schedule_run.apply_async"


def test_resume_now_without_a_csrf_token_is_refused(runs):  # noqa: F811
    superuser = User.objects.create_superuser("root", "root@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    with mock.patch(APPLY) as apply_async:
        response = client.post(URL, {"action": "resume_now",
                                     "_selected_action": [runs["stopped"].pk]})
    assert response.status_code == 403
    apply_async.assert_not_called()


def test_resume_now_clicked_twice_sends_each_email_once(runs, enqueued):  # noqa: F811
    """Two clicks enqueue two tasks; the second finds the run done and writes nothing."""
    stopped = runs["stopped"]
    with mock.patch(APPLY) as apply_async:
        resume(operator(), stopped)
        resume(Client(), stopped)  # a logged-out second click does nothing
    assert apply_async.call_count == 1
    assert resume_schedule_run(stopped.pk) == "done"
    emails = Email.objects.count()
    assert resume_schedule_run(stopped.pk) == "already done"
    assert Email.objects.count() == emails


def test_resuming_a_run_another_process_holds_leaves_it(runs, enqueued):  # noqa: F811
    """A resume task for a run a worker holds (its lease live), e.g. enqueued just before
    that worker took it: it writes nothing and leaves the lease as it was."""
    held = runs["held"]
    emails = Email.objects.count()
    assert resume_schedule_run(held.pk) == "running"
    held.refresh_from_db()
    assert (str(held.lease_token), held.status, held.cursor) == (HELD, "running", "")
    assert Email.objects.count() == emails


def test_resuming_an_unknown_or_non_integer_run_does_nothing(db):
    assert resume_schedule_run(999_999) == "already done"
    with pytest.raises((ValueError, TypeError)):
        resume_schedule_run("1 OR 1=1")


#: Periods whose recipients cannot be read (their source raises).
BROKEN_PERIODS: set[str] = set()


def broken_for_some_periods(period):
    if period.isoformat() in BROKEN_PERIODS:
        raise RuntimeError("the report's data for this period is gone")
    yield "ann@example.com", {"name": "Ann"}


def test_a_period_that_fails_for_good_does_not_block_the_next_ones(settings, report_template,
                                                                    enqueued):
    """The task resumes stopped periods first: one whose source fails at every attempt
    used to fail the task before the current period ran, at every tick, for good."""
    definition = weekly(recipients="tests.attacks.test_schedule_runs.broken_for_some_periods")
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "SCHEDULES": {"weekly_report": definition}}
    schedule = parse_schedule("weekly_report", definition)
    old = due_time(schedule) - datetime.timedelta(days=7)
    old_label = period_label(schedule, old.astimezone(schedule.timezone))
    ScheduleRun.objects.create(schedule_key="weekly_report", period=old_label,
                               lease_token=HELD,
                               lease_expires_at=timezone.now() - datetime.timedelta(minutes=1))
    BROKEN_PERIODS.clear()
    BROKEN_PERIODS.add(datetime.datetime.fromisoformat(old_label).isoformat())
    try:
        with pytest.raises(RuntimeError, match="gone"):
            run_schedule("weekly_report")
    finally:
        BROKEN_PERIODS.clear()

    current = ScheduleRun.objects.exclude(period=old_label).get()
    assert (current.status, current.emails_queued) == ("done", 1)
    old_run = ScheduleRun.objects.get(period=old_label)
    assert old_run.status == "running" and old_run.lease_token is None  # resumable


class WorkerKilled(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs (here, the enqueue)."""


def test_a_kill_between_a_batch_commit_and_its_enqueue_is_delivered_by_the_sweep(
        settings, report_template, enqueued):
    """The batch's rows are committed, their task never published: the outbox sweep
    enqueues them, and the resumed run queues nobody a second time."""
    from transactional_mail import tasks as mail_tasks
    from transactional_mail.periodic import runs as periodic_runs

    definition = weekly()
    schedule = parse_schedule("weekly_report", definition)
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SWEEP_GRACE": 0,
                                   "SCHEDULE_BATCH_SIZE": 2,
                                   "SCHEDULES": {"weekly_report": definition}}
    with (mock.patch.object(periodic_runs, "enqueue_delivery", side_effect=WorkerKilled),
          pytest.raises(WorkerKilled)):
        periodic_runs.run(schedule, MONDAY)
    committed = list(Email.objects.values_list("pk", flat=True))
    assert len(committed) == 2 and not enqueued.called

    assert mail_tasks.sweep_outbox()["due"] == 2
    swept = sorted(pk for call in enqueued.call_args_list for pk in call.args[1])
    assert swept == sorted(committed)

    tally = periodic_runs.run(schedule, MONDAY)  # resumed after the committed batch
    assert (tally.outcome, tally.queued) == ("done", 1)
    assert Email.objects.count() == 3
