"""The Celery tasks: deliver, the outbox sweep, raw-event pruning, and the beat rows."""

from __future__ import annotations

import datetime
import time
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_template, published
from transactional_mail import tasks
from transactional_mail.models import Email, EmailEvent, EmailStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def template():
    return make_template()


def queue(**options) -> Email:
    return transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT,
                                   **options)


def age(email: Email, **delta) -> None:
    Email.objects.filter(pk=email.pk).update(
        next_attempt_at=timezone.now() - datetime.timedelta(**delta)
    )


def test_the_tasks_have_explicit_names():
    assert tasks.deliver.name == "transactional_mail.deliver"
    assert tasks.sweep_outbox.name == "transactional_mail.sweep_outbox"
    assert tasks.prune_raw_events.name == "transactional_mail.prune_raw_events"


def test_deliver_task_reenqueues_a_transient_failure_with_a_countdown(template, esp, enqueued,
                                                                      settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "RETRY_BACKOFF": 20}
    esp.add_response(503)
    email = queue()
    assert tasks.deliver(email.pk) == EmailStatus.QUEUED
    enqueued.assert_called_once()
    assert published(enqueued) == [(email.pk,)]
    assert 9 <= enqueued.call_args.kwargs["countdown"] <= 20


def test_long_retry_waits_stay_on_the_row(template, esp, enqueued, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "RETRY_BACKOFF": 1000,
                                   "MAX_COUNTDOWN": 300}
    esp.add_response(503)
    email = queue()
    tasks.deliver(email.pk)
    enqueued.assert_not_called()
    email.refresh_from_db()
    assert email.next_attempt_at > timezone.now() + datetime.timedelta(seconds=400)


def test_sweep_enqueues_rows_whose_task_was_lost(template, enqueued):
    lost = queue()
    fresh = queue()
    later = queue(delay="1h")
    age(lost, minutes=5)
    result = tasks.sweep_outbox()
    assert result == {"due": 1, "enqueued": 1, "recovered": 0, "failed": 0}
    assert published(enqueued) == [(lost.pk,)]
    assert {fresh.status, later.status} == {EmailStatus.QUEUED, EmailStatus.SCHEDULED}


def test_sweep_sends_a_due_scheduled_email(template, enqueued):
    scheduled = queue(delay="7d")
    age(scheduled, minutes=2)
    tasks.sweep_outbox()
    assert published(enqueued) == [(scheduled.pk,)]


def test_sweep_recovers_an_email_stuck_in_sending(template, enqueued):
    email = queue()
    Email.objects.filter(pk=email.pk).update(
        status=EmailStatus.SENDING, claimed_at=timezone.now() - datetime.timedelta(hours=1),
        attempts=1,
    )
    result = tasks.sweep_outbox()
    assert result["recovered"] == 1
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED
    assert email.outcome_uncertain is True
    assert "stopped while sending" in email.last_error
    assert published(enqueued) == [(email.pk,)]


def test_sweep_fails_an_email_that_keeps_losing_its_worker(template, enqueued, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "MAX_ATTEMPTS": 3}
    email = queue()
    Email.objects.filter(pk=email.pk).update(
        status=EmailStatus.SENDING, claimed_at=timezone.now() - datetime.timedelta(hours=1),
        attempts=3,
    )
    assert tasks.sweep_outbox() == {"due": 0, "enqueued": 0, "recovered": 0, "failed": 1}
    email.refresh_from_db()
    assert email.status == EmailStatus.FAILED
    enqueued.assert_not_called()


def test_sweep_leaves_a_recent_sending_row_alone(template, enqueued):
    email = queue()
    Email.objects.filter(pk=email.pk).update(status=EmailStatus.SENDING,
                                             claimed_at=timezone.now())
    assert tasks.sweep_outbox()["recovered"] == 0
    assert Email.objects.get(pk=email.pk).status == EmailStatus.SENDING


def test_sweep_with_the_broker_down_reports_and_keeps_rows(template):
    from kombu.exceptions import OperationalError

    email = queue()
    age(email, minutes=5)
    with mock.patch("transactional_mail.publishing.publish", side_effect=OperationalError("down")):
        assert tasks.sweep_outbox() == {"due": 1, "enqueued": 0, "recovered": 0, "failed": 0}
    assert Email.objects.get(pk=email.pk).status == EmailStatus.QUEUED


def test_prune_raw_events_keeps_the_normalised_event(settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "RAW_EVENT_RETENTION_DAYS": 7}
    old = EmailEvent.objects.create(esp_name="Postmark", event_id="1", event_type="delivered",
                                    recipient="a@example.com", raw={"Email": "a@example.com"})
    new = EmailEvent.objects.create(esp_name="Postmark", event_id="2", event_type="delivered",
                                    raw={"Email": "b@example.com"})
    EmailEvent.objects.filter(pk=old.pk).update(
        received_at=timezone.now() - datetime.timedelta(days=8))
    assert tasks.prune_raw_events() == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.raw is None and old.raw_pruned and old.recipient == "a@example.com"
    assert new.raw == {"Email": "b@example.com"}


def test_prune_disabled_with_none(settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "RAW_EVENT_RETENTION_DAYS": None}
    EmailEvent.objects.create(esp_name="Postmark", event_id="1", event_type="delivered", raw={})
    EmailEvent.objects.update(received_at=timezone.now() - datetime.timedelta(days=800))
    assert tasks.prune_raw_events() == 0


def test_migrate_installs_the_beat_schedule(settings):
    """The sweep runs every SWEEP_INTERVAL seconds once migrate has run."""
    sweep = PeriodicTask.objects.get(name="transactional_mail.sweep_outbox")
    assert sweep.task == "transactional_mail.sweep_outbox"
    assert sweep.interval.every == 60 and sweep.interval.period == "seconds"
    assert sweep.enabled
    assert PeriodicTask.objects.get(name="transactional_mail.prune_raw_events").interval.period \
        == "days"


def test_migrate_again_follows_settings_but_keeps_a_disabled_row(settings):
    PeriodicTask.objects.filter(name="transactional_mail.sweep_outbox").update(enabled=False)
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SWEEP_INTERVAL": 30,
                                   "QUEUE": "mail"}
    call_command("migrate", verbosity=0)
    sweep = PeriodicTask.objects.get(name="transactional_mail.sweep_outbox")
    assert sweep.interval.every == 30
    assert sweep.queue == "mail"
    assert sweep.enabled is False


def test_an_unreachable_broker_fails_fast_instead_of_retrying():
    """kombu retries a connection for about 6 s by default; a request must not wait."""
    app = tasks.deliver.app
    previous = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    app._pool = None
    app.amqp._producer_pool = None
    try:
        started = time.monotonic()
        assert tasks.enqueue_delivery(1) == 0
        assert time.monotonic() - started < 2
    finally:
        app.conf.broker_url = previous
        app._pool = None
        app.amqp._producer_pool = None
