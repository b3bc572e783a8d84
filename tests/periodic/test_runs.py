"""A run of a schedule: one email per recipient and period, in batches, resumable."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from tests.factories import published
from tests.testapp.models import Customer
from transactional_mail.exceptions import ConfigurationError, TemplateNotFound
from transactional_mail.models import Email, ScheduleRun
from transactional_mail.periodic.definitions import parse_schedule
from transactional_mail.periodic.periods import due_time, period_label
from transactional_mail.periodic.runs import idempotency_key, run
from transactional_mail.periodic.tasks import run_schedule

from . import recipients
from .conftest import MONDAY, weekly

LABEL = "2026-11-30T08:00+01:00"


@pytest.fixture
def small_batches(settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULE_BATCH_SIZE": 10}


@pytest.fixture(autouse=True)
def _no_failure():
    recipients.FAIL_AFTER["count"] = None
    yield
    recipients.FAIL_AFTER["count"] = None


def test_a_run_queues_one_email_per_recipient(report_template, enqueued):
    """Each email is an outbox row like send()'s: template, category, context snapshot,
    an idempotency key per (schedule, period, recipient); delivery is enqueued."""
    tally = run(parse_schedule("weekly_report", weekly()), MONDAY)

    assert (tally.outcome, tally.done, tally.queued) == ("done", 3, 3)
    emails = Email.objects.order_by("pk")
    assert [email.to for email in emails] == [["ann@example.com"], ["bob@example.com"],
                                              ["cat@example.com"]]
    ann = emails[0]
    assert (ann.template_key, ann.category, ann.status) == ("weekly_report", "reports", "queued")
    assert ann.context == {"name": "Ann", "period": "2026-11-30T08:00:00+01:00"}
    assert ann.idempotency_key.startswith(f"schedule:weekly_report:{LABEL}:")
    assert sorted(id for ids in published(enqueued) for id in ids) == [e.pk for e in emails]
    record = ScheduleRun.objects.get()
    assert (record.period, record.status, record.recipients_done, record.emails_queued) == (
        LABEL, "done", 3, 3)
    assert record.finished_at is not None and record.lease_token is None


def test_running_a_period_again_sends_nothing_twice(report_template, enqueued):
    """A finished period is skipped; and even with its record gone (a manual re-run after
    someone deleted it) the database's unique key keeps every recipient at one email."""
    schedule = parse_schedule("weekly_report", weekly())
    run(schedule, MONDAY)
    assert run(schedule, MONDAY).outcome == "already done"

    ScheduleRun.objects.all().delete()
    again = run(schedule, MONDAY)
    assert (again.outcome, again.queued, again.already_queued) == ("done", 0, 3)
    assert Email.objects.count() == 3


def test_the_next_period_sends_again(report_template, enqueued):
    schedule = parse_schedule("weekly_report", weekly())
    run(schedule, MONDAY)
    run(schedule, MONDAY + datetime.timedelta(days=7))
    assert Email.objects.count() == 6
    assert ScheduleRun.objects.count() == 2


def test_a_crashed_run_resumes_after_its_last_batch(settings, small_batches, report_template,
                                                    enqueued):
    """25 recipients in batches of 10; the source dies at the 16th: the first batch is
    committed, the second is not. The resumed run starts at the 11th recipient."""
    schedule = parse_schedule("numbers", weekly(recipients="tests.periodic.recipients."
                                                "failing_after"))
    recipients.FAIL_AFTER["count"] = 15
    with pytest.raises(RuntimeError, match="the worker died"):
        run(schedule, MONDAY)
    record = ScheduleRun.objects.get()
    assert (record.status, record.cursor, record.recipients_done) == ("running", "10", 10)
    assert record.lease_token is None  # an exception, not a kill: resumable at once
    assert Email.objects.count() == 10

    recipients.FAIL_AFTER["count"] = None
    tally = run(schedule, MONDAY)
    assert (tally.outcome, tally.done, tally.queued, tally.already_queued) == ("done", 25, 15, 0)
    assert sorted(Email.objects.values_list("to", flat=True)) == sorted(
        [f"user{n}@example.com"] for n in range(25))
    assert ScheduleRun.objects.get().emails_queued == 25


def test_a_period_another_process_holds_is_left_alone(report_template, enqueued):
    """A killed worker's lease holds until it expires; then the period is resumed."""
    schedule = parse_schedule("weekly_report", weekly())
    ScheduleRun.objects.create(
        schedule_key="weekly_report", period=LABEL,
        lease_token="00000000-0000-0000-0000-000000000001",
        lease_expires_at=timezone.now() + datetime.timedelta(minutes=1))
    assert run(schedule, MONDAY).outcome == "running"
    assert not Email.objects.exists()

    ScheduleRun.objects.update(lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert run(schedule, MONDAY).outcome == "done"
    assert Email.objects.count() == 3


def test_a_run_that_lost_its_lease_writes_nothing(small_batches, report_template, enqueued):
    """Another process took the period over (our lease expired while we were stalled):
    our next batch is rolled back instead of written beside theirs."""
    schedule = parse_schedule("numbers", weekly(recipients="tests.periodic.recipients.numbered"))

    def steal(tally):
        if tally.done == 10:
            ScheduleRun.objects.update(lease_token="00000000-0000-0000-0000-000000000001")

    tally = run(schedule, MONDAY, progress=steal)
    assert (tally.outcome, tally.done) == ("running", 10)
    assert Email.objects.count() == 10
    assert ScheduleRun.objects.get().recipients_done == 10


def test_a_bad_address_is_skipped_and_the_run_goes_on(report_template, enqueued):
    schedule = parse_schedule("weekly_report", weekly(
        recipients="tests.periodic.recipients.with_a_bad_address"))
    tally = run(schedule, MONDAY)
    assert (tally.done, tally.queued, tally.skipped) == (3, 2, 1)
    record = ScheduleRun.objects.get()
    assert record.recipients_skipped == 1
    assert "'a@example.com, b@example.com'" in record.last_error


def test_a_queryset_source_with_a_context_builder(report_template, enqueued):
    """Objects are read by primary key; the context builder gets the object and the
    period; the language is an attribute path; each email points at its object."""
    ann = Customer.objects.create(name="Ann", email="ann@example.com", language="fr")
    Customer.objects.create(name="Nobody", email="")
    bob = Customer.objects.create(name="Bob", email="bob@example.com")
    schedule = parse_schedule("customers", weekly(recipients={
        "queryset": "tests.periodic.recipients.customers_with_an_email",
        "context": "tests.periodic.recipients.customer_context", "language": "language",
    }))
    tally = run(schedule, MONDAY)
    assert (tally.total, tally.queued) == (2, 2)
    emails = list(Email.objects.order_by("pk"))
    assert [e.source_object_id for e in emails] == [str(ann.pk), str(bob.pk)]
    assert emails[0].context == {"name": "Ann", "period": "2026-11-30T08:00:00+01:00"}
    assert [e.language for e in emails] == ["fr", ""]


def test_a_model_label_source_gets_the_default_context(report_template, enqueued):
    customer = Customer.objects.create(name="Ann", email="ann@example.com")
    run(parse_schedule("customers", weekly(recipients={"queryset": "testapp.Customer"})),
        MONDAY)
    assert Email.objects.get().context == {"object": {"id": customer.pk, "str": str(customer)}}


def test_a_source_yielding_something_else_says_what_to_yield(report_template, enqueued):
    schedule = parse_schedule("bad", weekly(recipients="tests.periodic.recipients.not_pairs"))
    with pytest.raises(ConfigurationError, match=r"yield \(address, context\)"):
        run(schedule, MONDAY)


def test_an_unknown_template_stops_the_run_before_writing(db, enqueued):
    with pytest.raises(TemplateNotFound):
        run(parse_schedule("weekly_report", weekly()), MONDAY)
    assert Email.objects.count() == 0
    assert ScheduleRun.objects.get().status == "running"


def test_a_dry_run_writes_nothing(report_template, enqueued):
    schedule = parse_schedule("weekly_report", weekly())
    tally = run(schedule, MONDAY, dry_run=True)
    assert (tally.outcome, tally.done, tally.queued) == ("dry run", 3, 3)
    assert not Email.objects.exists() and not ScheduleRun.objects.exists()
    assert published(enqueued) == []


def test_the_idempotency_key_ignores_case_and_fits_the_column():
    schedule = parse_schedule("k" * 100, weekly())
    key = idempotency_key(schedule, LABEL, "Ann@Example.com ")
    assert key == idempotency_key(schedule, LABEL, "ann@example.com")
    assert len(key) <= 255


def test_the_task_resumes_an_unfinished_period_then_runs_the_current_one(
        settings, small_batches, report_template, enqueued):
    """Beat's next tick finishes a period a killed worker left half-done (its lease
    expired), then runs its own."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULES": {
        "numbers": weekly(recipients="tests.periodic.recipients.failing_after")}}
    schedule = parse_schedule("numbers", settings.TRANSACTIONAL_MAIL["SCHEDULES"]["numbers"])
    recipients.FAIL_AFTER["count"] = 15
    current = due_time(schedule)
    last_week = current - datetime.timedelta(days=7)
    with pytest.raises(RuntimeError):
        run(schedule, last_week)
    recipients.FAIL_AFTER["count"] = None
    # As a killed worker leaves it: its lease taken, and expired.
    ScheduleRun.objects.update(lease_token="00000000-0000-0000-0000-000000000001",
                               lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))

    assert run_schedule("numbers") == "done"
    old, new = period_label(schedule, last_week), period_label(schedule, current)
    assert dict(ScheduleRun.objects.values_list("period", "status")) == {old: "done",
                                                                         new: "done"}
    assert Email.objects.filter(idempotency_key__contains=old).count() == 25
    assert Email.objects.filter(idempotency_key__contains=new).count() == 25


def test_the_task_of_a_removed_schedule_does_nothing(db, settings, enqueued):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULES": {}}
    assert run_schedule("gone") == "unknown"
    assert not ScheduleRun.objects.exists()


def test_a_row_a_send_committed_meanwhile_is_not_inserted_twice(report_template, enqueued):
    """The batch's keys are checked before the insert; a send() with one of them that
    commits in between makes the insert (COPY on PostgreSQL) fall back to one that skips
    it, instead of failing the run."""
    from transactional_mail import send
    from transactional_mail.periodic.runs import _build, _insert
    from transactional_mail.periodic.sources import Recipient

    schedule = parse_schedule("weekly_report", weekly())
    emails = [_build(schedule, LABEL, Recipient(f"{name}@example.com", {"name": name}))
              for name in ("ann", "bob", "cat")]
    send("weekly_report", "bob@example.com", {"name": "Bob"},
         idempotency_key=emails[1].idempotency_key)
    _insert(emails)
    assert sorted(Email.objects.values_list("to", flat=True)) == [
        ["ann@example.com"], ["bob@example.com"], ["cat@example.com"]]
    assert Email.objects.get(to=["bob@example.com"]).context == {"name": "Bob"}


def test_resuming_a_run_finishes_it_and_starts_no_other_period(
        settings, small_batches, report_template, enqueued):
    """The admin's "resume now": the stopped period is finished; the current one is not
    started (a schedule paused in beat stays paused); a second resume does nothing."""
    from transactional_mail.periodic.tasks import resume_schedule_run

    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULES": {
        "numbers": weekly(recipients="tests.periodic.recipients.failing_after")}}
    schedule = parse_schedule("numbers", settings.TRANSACTIONAL_MAIL["SCHEDULES"]["numbers"])
    recipients.FAIL_AFTER["count"] = 15
    with pytest.raises(RuntimeError):
        run(schedule, MONDAY)
    recipients.FAIL_AFTER["count"] = None
    record = ScheduleRun.objects.get()

    assert resume_schedule_run(record.pk) == "done"
    assert list(ScheduleRun.objects.values_list("period", "status")) == [(LABEL, "done")]
    assert Email.objects.count() == 25
    assert resume_schedule_run(record.pk) == "already done"
    assert resume_schedule_run(record.pk + 1000) == "already done"
    assert Email.objects.count() == 25


def test_resuming_a_run_of_a_removed_schedule_does_nothing(settings, report_template,
                                                           enqueued):
    from transactional_mail.periodic.tasks import resume_schedule_run

    record = ScheduleRun.objects.create(schedule_key="gone", period=LABEL)
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULES": {}}
    assert resume_schedule_run(record.pk) == "unknown"
    assert not Email.objects.exists()


def test_a_schedule_naming_an_undeclared_category_stops_before_recording(
        settings, report_template, enqueued):
    """Every recipient's email would be refused (send() refuses the category): the run
    says why at once instead of skipping everyone and calling the period done."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "CATEGORIES": {"orders": {}}}
    schedule = parse_schedule("weekly_report", weekly())
    with pytest.raises(ConfigurationError,
                       match=r"Schedule 'weekly_report': The category 'reports' is not "
                       r"declared .*\(declared: orders\)"):
        run(schedule, MONDAY)
    with pytest.raises(ConfigurationError):
        run(schedule, MONDAY, dry_run=True)
    assert not ScheduleRun.objects.exists() and not Email.objects.exists()
