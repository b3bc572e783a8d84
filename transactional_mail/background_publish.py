"""Publishing delivery tasks from a thread of the process, off the request's path.

The emails a transaction queues for now are published after its commit, in an
``on_commit`` callback: before this module, inside the request, where Celery building the
message and the broker's round trip were a third of what a matching trigger adds to a
save (``bench/bench_triggers.py``). With ``PUBLISH_IN_BACKGROUND`` (the default) the
callback hands the ids to this process's publisher thread and returns; the thread
publishes every id waiting at that moment, ``BATCH_SIZE`` to a task. Under load the emails
of several requests share one task, so the worker pays Celery's cost per task once for
them.

The outbox is not weakened: an id is handed over only after its row committed, and the
row, not the message, is what guarantees the email:

- a thread that does not run (a server that runs no Python thread between requests),
  has fallen behind or has died: the next commit that finds ids waiting for longer than
  ``STALL`` seconds publishes them itself, in line;
- at the interpreter's exit, the ids still waiting are published (``atexit``);
- a process killed before its thread published leaves its rows to the outbox sweep, as a
  broker outage does.

After a fork (a pre-forking server) the child gets a publisher of its own; the ids the
parent had waiting stay the parent's to publish.

Eager mode and publishes from inside a running Celery task stay in line: eager tasks run
in the caller, and a task's publishes record their parent task. So does everything in a
uWSGI worker started without threads (``threads_run``), where the thread would never run.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: Seconds the thread waits, once woken, for more ids to publish with the first.
GATHER = 0.02

#: Seconds ids may wait for the thread before a commit publishes them in line.
STALL = 1.0


class Publisher:
    """One process's publisher thread and the ids waiting for it."""

    def __init__(self, publish: Callable[[list[int]], object]) -> None:
        self.pid = os.getpid()
        self._publish = publish
        self._lock = threading.Lock()
        self._ids: list[int] = []
        self._waiting_since: float | None = None
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="transactional-mail-publisher")
        self._thread.start()

    def add(self, email_ids: list[int]) -> None:
        """Have ``email_ids`` published soon: by the thread, or now when it is stalled."""
        now = time.monotonic()
        with self._lock:
            self._ids.extend(email_ids)
            if self._waiting_since is None:
                self._waiting_since = now
            stalled = now - self._waiting_since > STALL or not self._thread.is_alive()
        if stalled:
            logger.warning("The email publisher thread is stalled (ids waiting for over %s "
                           "s, or the thread is gone): publishing in line.", STALL)
            self.flush()
        else:
            self._wake.set()

    def flush(self) -> None:
        """Publish every id waiting, in this thread."""
        with self._lock:
            ids, self._ids, self._waiting_since = self._ids, [], None
        if ids:
            self._publish(list(dict.fromkeys(ids)))

    def waiting(self) -> int:
        """How many ids wait for the thread."""
        with self._lock:
            return len(self._ids)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(GATHER)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the publish logs a broker outage itself; never die
                logger.exception("Publishing delivery tasks failed; the outbox sweep will "
                                 "enqueue the emails.")


_publisher: Publisher | None = None
_publisher_lock = threading.Lock()


@functools.cache
def threads_run() -> bool:
    """Whether this process runs Python threads besides the one serving requests: uWSGI
    does not, unless started with ``enable-threads`` or ``threads`` > 1 (``uwsgi.opt``
    holds its options, as bytes)."""
    try:
        import uwsgi  # only importable inside a uWSGI worker
    except ImportError:
        return True

    def option(name: str) -> str:
        value = getattr(uwsgi, "opt", {}).get(name)
        return (value.decode() if isinstance(value, bytes) else str(value or "")).lower()

    threads = option("threads")
    return (option("enable-threads") not in ("", "0", "false", "no")
            or (threads.isdigit() and int(threads) > 1))


def publisher(publish: Callable[[list[int]], object]) -> Publisher:
    """This process's publisher (a new one after a fork), publishing with ``publish``."""
    global _publisher
    current = _publisher
    if current is not None and current.pid == os.getpid():
        return current
    with _publisher_lock:
        if _publisher is None or _publisher.pid != os.getpid():
            _publisher = Publisher(publish)
        return _publisher


def flush() -> None:
    """Publish what this process's publisher has waiting (at exit; in tests)."""
    current = _publisher
    if current is not None and current.pid == os.getpid():
        current.flush()


atexit.register(flush)
