"""Attacks on a scheduled run's writer thread (PostgreSQL, outside a transaction): a
caller's transaction opened with autocommit off, a lease lost while a batch is in the
thread, a source failing while one is pending, counts the thread and the run both add to."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction

from tests.periodic import recipients
from tests.periodic.conftest import MONDAY, report_template, weekly  # noqa: F401
from transactional_mail.models import Email, ScheduleRun
from transactional_mail.periodic import runs
from transactional_mail.periodic.batch_writer import BatchWriter
from transactional_mail.periodic.definitions import parse_schedule

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="the writer thread is used on PostgreSQL only"),
    pytest.mark.django_db(transaction=True),
]

WRITER_THREAD = "transactional-mail-batches"


@pytest.fixture(autouse=True)
def _batches_of_ten(settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULE_BATCH_SIZE": 10}
    recipients.FAIL_AFTER["count"] = None
    yield
    recipients.FAIL_AFTER["count"] = None


def numbers(**overrides):
    return parse_schedule("numbers", weekly(**{
        "recipients": "tests.periodic.recipients.numbered", **overrides}))


def writer_threads():
    return [thread for thread in threading.enumerate()
            if thread.name.startswith(WRITER_THREAD)]


def test_with_autocommit_off_the_batches_are_written_in_line():
    """``set_autocommit(False)`` opens a transaction without an atomic block: a thread's
    connection would commit the batches apart from it, and wait for the rows it locked
    (the run's lease) while the run waits for the thread."""
    transaction.set_autocommit(False)
    try:
        assert not connection.in_atomic_block
        assert not BatchWriter("default").threaded
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)


def test_a_run_with_autocommit_off_queues_in_the_callers_transaction(
        report_template, enqueued):  # noqa: F811
    """The thread saw neither the run's new row nor its lease: the run stopped as if
    another had taken it over, queueing nobody."""
    transaction.set_autocommit(False)
    try:
        tally = runs.run(parse_schedule("weekly_report", weekly()), MONDAY)
        assert (tally.outcome, tally.queued) == ("done", 3)
        transaction.commit()
    finally:
        transaction.rollback()
        transaction.set_autocommit(True)
    assert Email.objects.count() == 3


def test_a_lease_lost_while_a_batch_is_in_the_thread_stops_the_run(
        report_template, enqueued, monkeypatch):  # noqa: F811
    """The second batch finds the lease taken: it is rolled back, the third is built but
    never written, and the run stops quietly."""
    written = []
    original = runs._write_batch

    def write_batch(*args, **kwargs):
        written.append(threading.current_thread().name)
        if len(written) == 2:
            ScheduleRun.objects.update(lease_token="00000000-0000-0000-0000-000000000001")
        return original(*args, **kwargs)

    monkeypatch.setattr(runs, "_write_batch", write_batch)
    tally = runs.run(numbers(), MONDAY)

    assert tally.outcome == "running"
    assert len(written) == 2 and all(name.startswith(WRITER_THREAD) for name in written)
    assert Email.objects.count() == 10
    record = ScheduleRun.objects.get()
    assert record.recipients_done == 10
    assert not writer_threads()


def test_a_source_failing_while_a_batch_is_pending_waits_for_it_and_releases_the_lease(
        report_template, enqueued, monkeypatch):  # noqa: F811
    """The first batch is still in the thread when the source raises: it is committed
    (the resume starts after it), the lease is released, the thread's connection closed
    and the thread gone."""
    thread_connections = []
    original = runs._write_batch

    def slow_write_batch(*args, **kwargs):
        time.sleep(0.3)
        thread_connections.append(connections["default"])
        return original(*args, **kwargs)

    monkeypatch.setattr(runs, "_write_batch", slow_write_batch)
    recipients.FAIL_AFTER["count"] = 15
    with pytest.raises(RuntimeError, match="the worker died"):
        runs.run(numbers(recipients="tests.periodic.recipients.failing_after"), MONDAY)

    record = ScheduleRun.objects.get()
    assert (record.status, record.recipients_done, record.lease_token) == ("running", 10, None)
    assert Email.objects.count() == 10
    assert len(thread_connections) == 1 and thread_connections[0].connection is None
    assert not writer_threads()

    recipients.FAIL_AFTER["count"] = None
    monkeypatch.setattr(runs, "_write_batch", original)
    tally = runs.run(numbers(recipients="tests.periodic.recipients.failing_after"), MONDAY)
    assert (tally.outcome, tally.done, tally.queued) == ("done", 25, 15)
    assert sorted(Email.objects.values_list("to", flat=True)) == sorted(
        [f"user{n}@example.com"] for n in range(25))


class _SlowSkippedProgress(runs.Progress):
    """A tally whose ``skipped`` is read slowly on the run's thread: the pause a thread
    switch makes between the read and the write of ``tally.skipped += n``."""

    def __getattribute__(self, name):
        value = super().__getattribute__(name)
        if name == "skipped" and threading.current_thread() is threading.main_thread():
            time.sleep(0.2)
        return value


def test_the_tally_counts_every_skipped_recipient_of_both_threads(
        report_template, enqueued, monkeypatch):  # noqa: F811
    """The run adds the recipients it skipped while building a batch, the writer thread
    those the database refused: neither addition may overwrite the other."""
    original_insert = runs._insert

    def refuse_the_first(emails):
        # The database refuses the batch's first row (a value it cannot hold).
        original_insert(emails[1:])
        return {emails[0].idempotency_key: "the database refused its row: too long"}

    monkeypatch.setattr(runs, "_insert", refuse_the_first)
    monkeypatch.setattr(runs, "Progress", _SlowSkippedProgress)
    tally = runs.run(numbers(), MONDAY)

    record = ScheduleRun.objects.get()
    assert Email.objects.count() == 22  # 25, less the first of each of the 3 batches
    assert (record.recipients_done, record.emails_queued, record.recipients_skipped) == (
        25, 22, 3)
    assert (tally.done, tally.queued, tally.skipped) == (25, 22, 3)


def hostile_contexts(period):
    """Contexts whose JSON text is not what a second serialization of their snapshot
    writes at first sight: keys made text (1 and "1", None, False), a Decimal, an aware
    time with microseconds, a tuple, a dict subclass, escapes COPY must keep."""
    import datetime
    from collections import OrderedDict
    from decimal import Decimal

    yield "ann@example.com", {1: "int key", "1": "text key", None: "none", False: "bool",
                              "price": Decimal("9.90"), "tuple": (1, 2.5, "x"),
                              "at": datetime.datetime(2026, 11, 30, 8, 0, 0, 123456,
                                                      tzinfo=datetime.timezone.utc),
                              "nested": OrderedDict(b=1, a=[{"z": None}])}
    yield "bob@example.com", {"text": "tab\there\nline\\back\\slash \\u0041 é \u2028 😀",
                              "big": 10 ** 30, "float": 1e16, "neg": -0.0}


def test_the_stored_context_is_the_emails_context(report_template, enqueued):  # noqa: F811
    """COPY writes the snapshot's own JSON text: what the row holds is what the email
    carried, key for key (checked against an email built the same way)."""
    from transactional_mail.periodic.sources import source_for

    schedule = numbers(recipients=f"{__name__}.hostile_contexts")
    tally = runs.run(schedule, MONDAY)
    assert tally.queued == 2
    built = {}
    for recipients_, _cursor in source_for(schedule).batches(MONDAY, "", 10):
        for recipient in recipients_:
            built[recipient.to] = runs._build(schedule, "x", recipient).context
    stored = {email.to[0]: email.context for email in Email.objects.all()}
    assert stored == {to: dict(context) for to, context in built.items()}
    assert stored["ann@example.com"]["1"] == "text key"  # the last of the two, as JSON's


def test_runs_in_one_process_leave_no_connection_nor_thread_behind(
        report_template, enqueued):  # noqa: F811
    """A prefork worker runs period after period: each run's thread and its connection
    end with the run (the worker's own connection is Celery's to close)."""
    def backends():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                           "current_database()")
            return cursor.fetchone()[0]

    before = backends()
    for week in range(3):
        tally = runs.run(numbers(), MONDAY + week * (MONDAY - MONDAY.replace(day=23)))
        assert (tally.outcome, tally.queued) == ("done", 25)
    assert not writer_threads()
    assert backends() == before


def a_bad_address_in_the_third_batch(period):
    for number in range(25):
        to = "a@example.com, b@example.com" if number == 22 else f"user{number}@example.com"
        yield to, {"name": f"User {number}"}


def test_a_run_stopped_by_a_lost_lease_counts_only_what_it_wrote(
        report_template, enqueued, monkeypatch):  # noqa: F811
    """The third batch is built (its bad address skipped) while the second finds the
    lease taken: the tally the run returns matches its record, which counts neither."""
    original = runs._write_batch
    calls = []

    def write_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            time.sleep(0.3)  # the third batch is built meanwhile
            ScheduleRun.objects.update(lease_token="00000000-0000-0000-0000-000000000001")
        return original(*args, **kwargs)

    monkeypatch.setattr(runs, "_write_batch", write_batch)
    tally = runs.run(numbers(recipients=f"{__name__}.a_bad_address_in_the_third_batch"),
                     MONDAY)
    record = ScheduleRun.objects.get()
    assert tally.outcome == "running"
    assert (record.recipients_done, record.recipients_skipped) == (10, 0)
    assert (tally.done, tally.skipped) == (10, 0)
