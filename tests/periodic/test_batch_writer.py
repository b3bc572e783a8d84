"""A run's batches are written on a thread of their own only where that changes nothing
committed (PostgreSQL, outside the caller's transaction), in order, errors raised."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from transactional_mail.models import ScheduleRun
from transactional_mail.periodic.batch_writer import BatchWriter

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                     reason="the writer thread is used on PostgreSQL only")


@pytest.mark.django_db
def test_inside_the_callers_transaction_batches_are_written_in_line():
    """A thread's connection would neither see nor join the caller's transaction."""
    threads = []
    writer = BatchWriter("default")
    assert not writer.threaded
    writer.write(lambda: threads.append(threading.current_thread()))
    writer.close()
    assert threads == [threading.current_thread()]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_outside_one_batches_go_to_one_thread_in_order_and_its_connection_is_closed():
    written, threads, thread_connections = [], set(), []

    def batch(number):
        def work():
            with transaction.atomic():
                ScheduleRun.objects.create(schedule_key="k", period=str(number))
            written.append(number)
            threads.add(threading.current_thread())
            thread_connections.append(connections["default"])
        return work

    writer = BatchWriter("default")
    assert writer.threaded
    for number in range(5):
        writer.write(batch(number))
    writer.close()
    assert written == [0, 1, 2, 3, 4]
    assert len(threads) == 1 and threading.current_thread() not in threads
    assert thread_connections[0].connection is None  # closed when the writer closed
    assert sorted(ScheduleRun.objects.values_list("period", flat=True)) == list("01234")


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_batch_that_failed_in_the_thread_raises_at_the_next_write_or_close():
    def fail():
        raise ValueError("batch 1 failed")

    writer = BatchWriter("default")
    writer.write(fail)
    with pytest.raises(ValueError, match="batch 1 failed"):
        writer.write(lambda: None)
    writer.write(fail)
    with pytest.raises(ValueError, match="batch 1 failed"):
        writer.close()


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the SQLite case")
@pytest.mark.django_db(transaction=True)
def test_on_sqlite_batches_are_written_in_line_even_outside_a_transaction():
    assert not connection.in_atomic_block
    assert not BatchWriter("default").threaded
