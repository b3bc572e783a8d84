"""``manage.py run_schedule KEY [--period …] [--dry-run]``."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from transactional_mail.models import Email, ScheduleRun

from .conftest import weekly


def call(*args) -> str:
    out = io.StringIO()
    call_command("run_schedule", *args, stdout=out)
    return out.getvalue()


def test_it_runs_a_period_with_a_progress_bar(use_schedules, report_template, enqueued):
    use_schedules(customers=weekly(recipients={"queryset": "testapp.Customer"}))
    from tests.testapp.models import Customer

    Customer.objects.bulk_create(Customer(name=f"C{n}", email=f"c{n}@example.com")
                                 for n in range(4))
    output = call("customers", "--period", "2026-11-30T08:00")
    assert "Running schedule 'customers', period 2026-11-30T08:00+01:00." in output
    assert "[" + "#" * 30 + "] 4/4, 4 queued" in output
    assert "4 recipient(s): queued 4, already queued 0, skipped 0." in output
    assert Email.objects.count() == 4

    again = call("customers", "--period", "2026-11-30T08:00+01:00")
    assert "was already done: nothing to queue" in again
    assert Email.objects.count() == 4


def test_a_dry_run_counts_and_writes_nothing(use_schedules, report_template, enqueued):
    use_schedules(weekly_report=weekly())
    output = call("weekly_report", "--dry-run")
    assert "3 recipient(s): would queue 3" in output
    assert not Email.objects.exists() and not ScheduleRun.objects.exists()


def test_mistakes_are_command_errors(use_schedules, db):
    use_schedules(weekly_report=weekly())
    with pytest.raises(CommandError, match="No schedule 'weekly' .*known: weekly_report"):
        call("weekly")
    with pytest.raises(CommandError, match="not due at 2026-12-01T08:00"):
        call("weekly_report", "--period", "2026-12-01T08:00")


def test_a_period_another_process_holds_is_an_error_saying_when_to_retry(
        use_schedules, report_template, enqueued):
    import datetime

    from django.utils import timezone

    use_schedules(weekly_report=weekly())
    ScheduleRun.objects.create(
        schedule_key="weekly_report", period="2026-11-30T08:00+01:00",
        lease_token="00000000-0000-0000-0000-000000000001",
        lease_expires_at=timezone.now() + datetime.timedelta(minutes=5))
    with pytest.raises(CommandError, match="Another process is running period "
                       "2026-11-30T08:00.*SCHEDULE_LEASE"):
        call("weekly_report", "--period", "2026-11-30T08:00")
    assert not Email.objects.exists()
