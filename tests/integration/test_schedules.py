"""Periodic emails with a real celery beat and prefork workers on PostgreSQL and Redis:
beat runs a short-interval schedule, a period run twice sends once, a run killed
half-way resumes."""

from __future__ import annotations

import collections

import pytest

from tests.factories import make_template
from tests.integration.helpers import settle
from tests.workers import start_beat, wait_for
from transactional_mail.models import Email, ScheduleRun

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TEMPLATE = "weekly_report"


def every_two_seconds():
    return {"schedule": "2s", "timezone": "UTC", "template": TEMPLATE,
            "recipients": "tests.periodic.recipients.three"}


@pytest.fixture
def report(db):
    return make_template(TEMPLATE, subject="Your report, {{ name }}",
                         html="<p>Hello {{ name }}</p>", category="reports")


@pytest.fixture
def scheduled_env(make_env, settings):
    """The environment of worker and beat processes that know ``schedules`` (durations,
    which travel as JSON); the test process gets the same settings."""
    def make(schedules, **mail_settings):
        mail_settings["SCHEDULES"] = schedules
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, **mail_settings}
        return make_env("redis-scratch", **mail_settings)
    return make


def sent_per_recipient(esp) -> collections.Counter:
    return collections.Counter(
        message["To"] for request in esp.requests if request.accepted
        for message in request.messages
    )


def test_beat_runs_a_short_interval_schedule(scratch_broker, scheduled_env, spawn_worker,
                                             process_logs, esp, report):
    """Beat starts, installs the schedule's row (no migrate), and calls the run task
    every two seconds: each period sends each recipient one email."""
    env = scheduled_env({"every_2s": every_two_seconds()})
    spawn_worker(env=env, name="scheduled")
    beat = start_beat("beat-schedules", env, process_logs)
    try:
        wait_for(lambda: ScheduleRun.objects.filter(status="done").count() >= 2, 45,
                 message=lambda: f"two runs done; {list(ScheduleRun.objects.values())}")
    finally:
        beat.stop()
    done = list(ScheduleRun.objects.filter(status="done"))
    for record in done:
        assert Email.objects.filter(idempotency_key__contains=f":{record.period}:").count() == 3
    wait_for(lambda: Email.objects.exclude(status="sent").count() == 0, 30,
             message=lambda: str(collections.Counter(Email.objects.values_list("status",
                                                                              flat=True))))
    runs = ScheduleRun.objects.count()
    assert sorted(sent_per_recipient(esp).items()) == [
        (f"{name}@example.com", runs) for name in ("ann", "bob", "cat")]


def test_a_period_run_twice_sends_once(scratch_broker, scheduled_env, spawn_worker,
                                       send_task, esp, report):
    """The same period's task delivered twice (beat restarted, a redelivery, two beats)
    queues and sends each recipient one email."""
    env = scheduled_env({"daily": {**every_two_seconds(), "schedule": "1d"}})
    spawn_worker(env=env, name="scheduled")
    send_task("redis-scratch", "transactional_mail.run_schedule", "daily")
    send_task("redis-scratch", "transactional_mail.run_schedule", "daily")
    wait_for(lambda: Email.objects.filter(status="sent").count() == 3, 30,
             message=lambda: f"{Email.objects.count()} emails")
    wait_for(lambda: ScheduleRun.objects.filter(status="done").count() == 1, 10,
             message="the run done")
    send_task("redis-scratch", "transactional_mail.run_schedule", "daily")
    settle(3)
    assert Email.objects.count() == 3
    assert sorted(sent_per_recipient(esp).values()) == [1, 1, 1]


def test_a_run_killed_half_way_resumes_without_duplicates(
        scratch_broker, scheduled_env, spawn_worker, send_task, esp, report):
    """SIGKILL during a run of 40 recipients (batches of 5): the next task for the
    schedule, once the lease has expired, finishes the period; every recipient gets one
    email."""
    schedules = {"slow": {**every_two_seconds(), "schedule": "1d",
                          "recipients": "tests.periodic.recipients.slow"}}
    env = scheduled_env(schedules, SCHEDULE_BATCH_SIZE=5, SCHEDULE_LEASE=2)
    env["SCHEDULE_TEST_COUNT"] = "40"
    doomed = spawn_worker(env=env, name="doomed")
    send_task("redis-scratch", "transactional_mail.run_schedule", "slow")
    wait_for(lambda: ScheduleRun.objects.filter(recipients_done__gte=10).exists(), 30,
             message="the run to get half-way")
    doomed.kill()
    record = ScheduleRun.objects.get()
    assert record.status == "running" and record.recipients_done < 40

    spawn_worker(env=env, name="rescuer")
    wait_for(lambda: _resume_and_check(send_task), 60, interval=3,
             message=lambda: f"the run done; {list(ScheduleRun.objects.values())}")
    assert sorted(Email.objects.values_list("to", flat=True)) == sorted(
        [f"user{n}@example.com"] for n in range(40))

    # An email the doomed worker was sending is recovered by the sweep (and may reach the
    # ESP twice, flagged outcome_uncertain: the outbox's documented window).
    def all_sent():
        if Email.objects.exclude(status="sent").exists():
            send_task("redis-scratch", "transactional_mail.sweep_outbox")
            return False
        return True

    wait_for(all_sent, 60, interval=2, message=lambda: str(collections.Counter(
        Email.objects.values_list("status", flat=True))))
    counts = sent_per_recipient(esp)
    uncertain = {to[0] for to in Email.objects.filter(outcome_uncertain=True)
                 .values_list("to", flat=True)}
    assert len(counts) == 40
    assert {to for to, n in counts.items() if n > 1} <= uncertain


def _resume_and_check(send_task) -> bool:
    """Like beat's next tick: send the schedule's task; True once the period is done."""
    if ScheduleRun.objects.filter(status="done").exists():
        return True
    send_task("redis-scratch", "transactional_mail.run_schedule", "slow")
    return False
