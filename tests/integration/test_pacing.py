"""Pacing against real services: the cap race on PostgreSQL, quiet hours in a real worker."""

from __future__ import annotations

import datetime
import threading
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from tests.integration.helpers import send_committed, settle, wait_for_status
from transactional_mail import delivery
from transactional_mail.models import CapCount, Email, EmailStatus, EmailTemplate

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CATEGORIES = {"reviews": {"essential": False}}


@pytest.fixture
def review_template(services):
    EmailTemplate.objects.create(key="review_request", subject="How was it?",
                                 html="<p>Review us</p>", category="reviews").publish()


def test_concurrent_workers_do_not_exceed_a_cap(review_template, esp, settings,
                                                broker_switch):
    """Eight deliveries of capped mail to one recipient at the same moment, each on its
    own connection: exactly the cap's count goes out."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "CATEGORIES": CATEGORIES,
                                   "FREQUENCY_CAPS": {"reviews": {"count": 2, "period": "1d"}}}
    broker_switch.down()  # no worker: only these threads deliver
    emails = [send_committed("review_request", "ann@example.com") for _ in range(8)]
    start = threading.Barrier(len(emails), timeout=20)
    outcomes, errors = {}, []

    def worker(email_id):
        try:
            start.wait()
            outcomes[email_id] = delivery.deliver(email_id).status
        except Exception as err:  # collected: a thread's failure would not fail the test
            errors.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(email.pk,)) for email in emails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(outcomes.values()) == ["sent"] * 2 + ["suppressed"] * 6
    assert len(esp.requests) == 2
    assert CapCount.objects.count() == 2


def test_quiet_hours_across_a_time_zone_boundary_in_a_real_worker(
        review_template, scratch_broker, make_env, spawn_worker, esp):
    """Quiet hours around the present moment in Paris: the Paris recipient's email waits
    for their end (in Paris time), the New York recipient's goes now."""
    paris = datetime.datetime.now(ZoneInfo("Europe/Paris"))
    quiet = {"start": (paris - datetime.timedelta(hours=1)).strftime("%H:%M"),
             "end": (paris + datetime.timedelta(hours=1)).strftime("%H:%M")}
    spawn_worker(env=make_env("redis-scratch", CATEGORIES=CATEGORIES, QUIET_HOURS=quiet,
                              RECIPIENT_TIMEZONE="tests.test_pacing.zone_of"))
    waiting = send_committed("review_request", "paris@example.com")
    now_sent = send_committed("review_request", "ny@example.com")

    wait_for_status(now_sent, "sent")
    waiting = wait_for_status(waiting, "scheduled")
    settle()
    waiting.refresh_from_db()
    assert waiting.status == EmailStatus.SCHEDULED and waiting.attempts == 0
    end = paris.replace(second=0, microsecond=0) + datetime.timedelta(hours=1)
    assert abs((waiting.next_attempt_at - end).total_seconds()) < 60
    assert "Quiet hours" in waiting.last_error
    assert esp.requests_for(waiting.pk) == []
    assert len(esp.requests) == 1
    assert Email.objects.get(pk=now_sent.pk).to == ["ny@example.com"]
