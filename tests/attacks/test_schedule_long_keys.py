"""A queryset source over a model keyed by long text: the run's cursor holds the last
primary key done, the emails' source id each object's key."""

from __future__ import annotations

import pytest

import transactional_mail
from tests.periodic.conftest import MONDAY, weekly
from tests.testapp.models import Voucher
from transactional_mail.exceptions import InvalidEmailOption
from transactional_mail.models import Email, ScheduleRun
from transactional_mail.periodic.definitions import parse_schedule
from transactional_mail.periodic.runs import run


def test_a_primary_key_longer_than_a_hundred_characters_keeps_the_run_going(
        settings, report_template, enqueued):
    """The cursor was a 100-character column: on PostgreSQL the batch's commit failed, again
    at every retry, and the period (and with it every later one) never finished."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULE_BATCH_SIZE": 2}
    codes = [f"{letter}{'x' * 150}" for letter in "abc"] + ["d" * 300]
    for code in codes:
        Voucher.objects.create(code=code, email=f"{code[0]}@example.com")
    schedule = parse_schedule("weekly_report", weekly(recipients={"queryset": "testapp.Voucher"}))

    tally = run(schedule, MONDAY)

    # The 300-character key does not fit an email's source id (255): that one is skipped
    # with the reason, the others are queued.
    assert (tally.outcome, tally.done, tally.queued, tally.skipped) == ("done", 4, 3, 1)
    record = ScheduleRun.objects.get()
    assert record.status == "done" and record.cursor == codes[-1]
    assert "source" in record.last_error and "255" in record.last_error
    assert {email.source_object_id for email in Email.objects.all()} == set(codes[:3])


def test_send_refuses_a_source_whose_key_the_log_cannot_hold(report_template):
    """Before: on PostgreSQL the INSERT failed, and with it the caller's transaction."""
    voucher = Voucher.objects.create(code="v" * 256, email="v@example.com")
    with pytest.raises(InvalidEmailOption, match="source's primary key is 256 characters"):
        transactional_mail.send("weekly_report", "v@example.com", {}, source=voucher)
    ok = Voucher.objects.create(code="w" * 255, email="w@example.com")
    email = transactional_mail.send("weekly_report", "w@example.com", {}, source=ok)
    assert Email.objects.get(pk=email.pk).source_object_id == "w" * 255
