"""The alert check as deployed: a real worker runs transactional_mail.check_alerts from
the broker against PostgreSQL."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from tests.workers import wait_for
from transactional_mail.models import Alert, Email, EmailStatus

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_raises_the_bounce_spike_alert(redis_worker, send_task):
    now = timezone.now()
    Email.objects.bulk_create(
        Email(template_key="welcome", from_email="shop@example.com", to=[f"{n}@example.com"],
              status=EmailStatus.BOUNCED if n % 10 == 0 else EmailStatus.DELIVERED,
              next_attempt_at=now - datetime.timedelta(minutes=5))
        for n in range(200))
    send_task("redis", "transactional_mail.check_alerts")
    alert = wait_for(
        lambda: Alert.objects.filter(kind="bounce_rate", notified_at__isnull=False).first(),
        30, message="the worker to record and raise the bounce-rate alert")
    assert alert.severity == "critical" and alert.value == pytest.approx(0.1)
    assert alert.resolved_at is None
