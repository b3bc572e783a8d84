"""Publishing delivery tasks from a thread (``PUBLISH_IN_BACKGROUND``).

The thread's own behaviour is tested on ``Publisher`` objects with a recording publish
function; ``send()``'s use of it with a mocked ``enqueue_delivery``; a real broker and
worker in tests/integration/test_background_publish.py.
"""

from __future__ import annotations

import os
import threading
from unittest import mock

import pytest
from django.db import transaction

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_template
from tests.workers import wait_for
from transactional_mail import background_publish, tasks


class Recorder:
    """A publish function: records each call's ids and the thread that made it."""

    def __init__(self, block_first: bool = False, fail_first: bool = False) -> None:
        self.calls: list[tuple[list[int], str]] = []
        self.release = threading.Event()
        self.block_first, self.fail_first = block_first, fail_first
        self.lock = threading.Lock()

    def __call__(self, ids: list[int]) -> None:
        with self.lock:
            self.calls.append((ids, threading.current_thread().name))
            first = len(self.calls) == 1
        if first and self.block_first:
            self.release.wait(10)
        if first and self.fail_first:
            raise RuntimeError("broker exploded")

    def ids(self) -> list[list[int]]:
        with self.lock:
            return [ids for ids, _ in self.calls]


@pytest.fixture
def gather(monkeypatch):
    """A long gathering wait, so that ids added one after the other share a publish."""
    monkeypatch.setattr(background_publish, "GATHER", 0.3)


def test_ids_added_together_are_published_once_by_the_thread(gather):
    recorder = Recorder()
    publisher = background_publish.Publisher(recorder)
    for ids in ([1], [2, 3], [4]):
        publisher.add(ids)
    assert recorder.calls == []  # add() returned before anything was published
    wait_for(lambda: recorder.calls, 5)
    assert recorder.calls == [([1, 2, 3, 4], "transactional-mail-publisher")]
    assert publisher.waiting() == 0


def test_an_id_is_published_once_however_often_it_is_added(gather):
    recorder = Recorder()
    publisher = background_publish.Publisher(recorder)
    publisher.add([7, 8])
    publisher.add([7])
    wait_for(lambda: recorder.calls, 5)
    assert recorder.ids() == [[7, 8]]


def test_a_stalled_thread_is_overtaken_by_the_next_commit(monkeypatch):
    """The thread is stuck in a publish (a hanging broker): ids that wait longer than
    STALL are published by the commit that finds them, in its own thread."""
    monkeypatch.setattr(background_publish, "GATHER", 0)
    monkeypatch.setattr(background_publish, "STALL", 0.2)
    recorder = Recorder(block_first=True)
    publisher = background_publish.Publisher(recorder)
    publisher.add([1])
    wait_for(lambda: recorder.calls, 5)  # the thread is now stuck publishing [1]
    publisher.add([2])
    assert publisher.waiting() == 1  # not stalled yet: left to the thread
    threading.Event().wait(0.3)
    publisher.add([3])
    assert recorder.calls[1] == ([2, 3], threading.current_thread().name)
    assert publisher.waiting() == 0
    recorder.release.set()


def test_a_dead_thread_is_replaced_by_publishing_in_line(gather):
    recorder = Recorder()
    publisher = background_publish.Publisher(recorder)
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    publisher._thread = dead
    publisher.add([5])
    assert recorder.calls == [([5], threading.current_thread().name)]


def test_a_failing_publish_does_not_stop_the_thread(monkeypatch, caplog):
    monkeypatch.setattr(background_publish, "GATHER", 0)
    recorder = Recorder(fail_first=True)
    publisher = background_publish.Publisher(recorder)
    publisher.add([1])
    wait_for(lambda: recorder.calls, 5)
    wait_for(lambda: "Publishing delivery tasks failed" in caplog.text, 5)
    publisher.add([2])
    wait_for(lambda: len(recorder.calls) == 2, 5)
    assert recorder.ids() == [[1], [2]]
    assert publisher._thread.is_alive()


def test_flush_publishes_what_waits_in_the_caller(gather):
    """What atexit runs: nothing waiting is left behind when the process ends."""
    recorder = Recorder()
    publisher = background_publish.Publisher(recorder)
    publisher.add([9])
    publisher.flush()
    assert recorder.calls == [([9], threading.current_thread().name)]


@pytest.fixture
def fresh_process_publisher(monkeypatch):
    """No process publisher yet (the one a test makes is dropped after it)."""
    monkeypatch.setattr(background_publish, "_publisher", None)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_gets_a_publisher_of_its_own(gather, fresh_process_publisher):
    parent = background_publish.publisher(Recorder())
    parent.add([1])  # waiting in the parent: never the child's to publish
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's teardown
        try:
            recorder = Recorder()
            child = background_publish.publisher(recorder)
            child.add([2])
            background_publish.flush()
            ok = (child is not parent and child.pid == os.getpid()
                  and child._thread.is_alive() and recorder.ids() == [[2]])
            os.write(write, b"ok" if ok else repr(recorder.ids()).encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 200)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert background_publish.publisher(Recorder()) is parent
    parent.flush()


@pytest.mark.django_db(transaction=True)  # real commits, real on_commit callbacks
class TestSend:
    @pytest.fixture(autouse=True)
    def background(self, settings, gather, fresh_process_publisher):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                       "PUBLISH_IN_BACKGROUND": True}
        make_template()
        yield
        background_publish.flush()

    def test_the_commit_hands_its_emails_to_the_thread(self):
        with mock.patch.object(tasks, "enqueue_delivery") as enqueue:
            with transaction.atomic():
                first = transactional_mail.send("order_confirmation", "a@example.com",
                                                ORDER_CONTEXT)
            with transaction.atomic():
                second = transactional_mail.send("order_confirmation", "b@example.com",
                                                 ORDER_CONTEXT)
            assert enqueue.call_count == 0  # the commits did not publish
            wait_for(lambda: enqueue.call_count, 5)
        # Both transactions' emails in one publish, from the thread.
        assert enqueue.call_args_list == [mock.call([first.pk, second.pk])]

    def test_a_rolled_back_email_is_never_handed_over(self):
        with mock.patch.object(tasks, "enqueue_delivery") as enqueue:
            with pytest.raises(RuntimeError), transaction.atomic():
                transactional_mail.send("order_confirmation", "a@example.com", ORDER_CONTEXT)
                raise RuntimeError("the request failed")
            background_publish.flush()
        enqueue.assert_not_called()

    def test_eager_mode_and_later_emails_are_published_in_line(self, settings):
        conf = tasks.deliver.app.conf
        with mock.patch.object(tasks, "enqueue_delivery") as enqueue:
            conf.task_always_eager = True
            try:
                with transaction.atomic():
                    now = transactional_mail.send("order_confirmation", "a@example.com",
                                                  ORDER_CONTEXT)
            finally:
                conf.task_always_eager = False
            assert enqueue.call_args_list == [mock.call([now.pk])]
            with transaction.atomic():
                later = transactional_mail.send("order_confirmation", "b@example.com",
                                                ORDER_CONTEXT, delay=60)
            assert enqueue.call_args_list[1] == mock.call(later.pk, later.next_attempt_at)

    def test_off_publishes_in_the_commit(self, settings):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                       "PUBLISH_IN_BACKGROUND": False}
        with mock.patch.object(tasks, "enqueue_delivery") as enqueue:
            with transaction.atomic():
                email = transactional_mail.send("order_confirmation", "a@example.com",
                                                ORDER_CONTEXT)
            assert enqueue.call_args_list == [mock.call([email.pk])]


class TestUWSGI:
    """uWSGI runs no Python thread without enable-threads: its workers publish in line."""

    @pytest.fixture
    def uwsgi(self, monkeypatch):
        import sys
        import types

        module = types.ModuleType("uwsgi")
        module.opt = {}
        monkeypatch.setitem(sys.modules, "uwsgi", module)
        background_publish.threads_run.cache_clear()
        yield module
        background_publish.threads_run.cache_clear()

    @pytest.mark.parametrize(("options", "expected"), [
        ({}, False),
        ({"enable-threads": True}, True),
        ({"enable-threads": b"1"}, True),
        ({"enable-threads": b"false"}, False),
        ({"threads": b"4"}, True),
        ({"threads": b"1"}, False),
    ])
    def test_threads_run_only_when_uwsgi_is_told_to(self, uwsgi, options, expected):
        uwsgi.opt = options
        assert background_publish.threads_run() is expected

    def test_outside_uwsgi_threads_run(self):
        background_publish.threads_run.cache_clear()
        assert background_publish.threads_run() is True

    @pytest.mark.django_db(transaction=True)
    def test_a_commit_in_a_threadless_uwsgi_worker_publishes_in_line(
            self, uwsgi, settings, fresh_process_publisher):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                       "PUBLISH_IN_BACKGROUND": True}
        make_template()
        with mock.patch.object(tasks, "enqueue_delivery") as enqueue:
            with transaction.atomic():
                email = transactional_mail.send("order_confirmation", "a@example.com",
                                                ORDER_CONTEXT)
            assert enqueue.call_args_list == [mock.call([email.pk])]
        assert background_publish._publisher is None  # no thread was started
