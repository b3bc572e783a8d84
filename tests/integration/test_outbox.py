"""The outbox never loses mail: broker outages, killed workers, competing workers, beat."""

from __future__ import annotations

import time

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import transaction

from tests.integration.helpers import (
    CONTEXT,
    describe,
    send_committed,
    settle,
    wait_for_status,
)
from tests.workers import wait_for
from transactional_mail import send
from transactional_mail.models import Email
from transactional_mail.tasks import deliver, sweep_outbox

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def sweep_until(email, *statuses, publish=None, timeout=30):
    """Run the sweep task through the broker, once a second, until the email gets there."""
    publish = publish or sweep_outbox.delay

    def swept():
        row = Email.objects.get(pk=email.pk)
        if row.status in statuses:
            return row
        publish()
        return None

    return wait_for(swept, timeout, interval=1.0, message=lambda: describe(email.pk))


def test_broker_down_at_commit_is_sent_later_by_the_sweep(
    redis_worker, broker_switch, send_task, esp, welcome_template
):
    """A commit while the broker is down neither raises nor loses the email: the sweep sends it."""
    broker_switch.down()
    started = time.monotonic()
    with transaction.atomic():
        email = send("welcome", ["ann@example.com"], CONTEXT)
    assert time.monotonic() - started < 10  # the commit does not hang on the broker

    email.refresh_from_db()
    assert email.status == "queued"
    assert esp.requests == []

    email = sweep_until(
        email, "sent", publish=lambda: send_task("redis", "transactional_mail.sweep_outbox")
    )

    settle()
    assert len(esp.requests_for(email.pk)) == 1
    assert Email.objects.get(pk=email.pk).attempts == 1


def test_beat_installed_by_migrate_sweeps_the_outbox(
    redis_worker, spawn_beat, broker_switch, esp, welcome_template, settings
):
    """`celery beat` with the DatabaseScheduler runs the app's sweep: nothing else is needed."""
    from django_celery_beat.models import PeriodicTask

    # The schedule rows come from the app's post_migrate handler; run it again with a
    # one-second period, as `migrate` would on a site with that setting.
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SWEEP_INTERVAL": 1}
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    periodic = PeriodicTask.objects.get(name="transactional_mail.sweep_outbox")
    assert periodic.task == "transactional_mail.sweep_outbox"
    assert periodic.enabled
    assert periodic.interval is not None
    assert periodic.interval.every == 1
    assert periodic.interval.period == "seconds"
    assert PeriodicTask.objects.filter(name="transactional_mail.prune_raw_events").exists()

    broker_switch.down()
    with transaction.atomic():
        email = send("welcome", ["ann@example.com"], CONTEXT)
    assert Email.objects.get(pk=email.pk).status == "queued"

    spawn_beat("redis")
    email = wait_for_status(email, "sent", timeout=45)

    settle()
    assert len(esp.requests_for(email.pk)) == 1


def test_worker_killed_mid_send_loses_nothing(scratch_broker, spawn_worker, esp, welcome_template):
    """SIGKILL during the ESP call leaves the row in `sending`; the sweep recovers and sends it."""
    doomed = spawn_worker("redis-scratch", name="doomed")
    esp.add_response(200, delay=120)  # the ESP holds the first request open
    email = send_committed("welcome", ["ann@example.com"], CONTEXT)

    wait_for(lambda: esp.requests_for(email.pk), 30, message="the request to reach the ESP")
    assert Email.objects.get(pk=email.pk).status == "sending"
    doomed.kill()
    assert not doomed.alive

    spawn_worker("redis-scratch", name="rescuer")
    email = sweep_until(email, "sent", timeout=60)

    assert email.outcome_uncertain is True
    requests = esp.requests_for(email.pk)
    assert len(requests) == 2
    assert requests[-1].accepted
    assert email.esp_message_id == requests[-1].response["MessageID"]


def test_a_slow_send_is_not_raced_by_the_sweep(
    scratch_broker, make_env, spawn_worker, esp, welcome_template
):
    """An ESP answering after 8 s, SENDING_TIMEOUT=2 and sweeps meanwhile: one request.

    The sending worker is alive, so the sweep must not take it for dead: on PostgreSQL
    the worker's advisory lock tells it so.
    """
    env = make_env("redis-scratch", esp_timeout=20, SENDING_TIMEOUT=2)
    spawn_worker(name="slow-sender", env=env)
    esp.add_response(200, delay=8)
    email = send_committed("welcome", ["ann@example.com"], CONTEXT)

    wait_for(lambda: esp.requests_for(email.pk), 30, message="the request to reach the ESP")
    swept = []
    deadline = time.monotonic() + 7
    while time.monotonic() < deadline:  # the worker's other process runs each sweep
        sweep_outbox.delay()
        swept.append(Email.objects.get(pk=email.pk).status)
        time.sleep(0.5)
    assert "sending" in swept

    email = wait_for_status(email, "sent", timeout=30)
    settle(3)
    assert len(esp.requests_for(email.pk)) == 1
    assert email.attempts == 1
    assert email.outcome_uncertain is False


def test_two_workers_send_each_email_once(redis_worker, spawn_worker, esp, welcome_template):
    """Two workers, 100 emails, every task queued twice: each email reaches the ESP once."""
    second = spawn_worker("redis", name="second")
    with transaction.atomic():
        emails = [send("welcome", [f"user{i}@example.com"], CONTEXT) for i in range(100)]
    ids = [email.pk for email in emails]
    for email_id in ids:  # the commit queued each once; queue each again
        deliver.delay(email_id)

    wait_for(
        lambda: Email.objects.filter(pk__in=ids, status="sent").count() == len(ids),
        timeout=120,
        message=lambda: f"{Email.objects.filter(pk__in=ids, status='sent').count()}/100 sent",
    )
    settle()

    counts = esp.accepted_counts()
    assert {email_id: counts.get(str(email_id), 0) for email_id in ids} == dict.fromkeys(ids, 1)
    assert len(esp.requests) == len(ids)
    # Both workers really competed for the tasks.
    for worker in (redis_worker, second):
        assert "transactional_mail.deliver" in worker.test_log, f"{worker.name} ran no task"
