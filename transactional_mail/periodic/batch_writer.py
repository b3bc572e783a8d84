"""Write a run's batches on a thread of their own while the next batch is built.

PostgreSQL takes about as long to store a batch's rows (parsing their JSON, compressing
it, writing the WAL) as Python takes to build them, and on one connection the two take
turns. A writer thread with its own connection lets them overlap: one batch is written
while the next is built, never more than one, and in order, so a run's cursor still
moves one committed batch at a time and a crash still resumes after the last one.

Only where that changes nothing that is committed: on PostgreSQL, outside any
transaction of the caller (a thread's connection would neither see nor join it), be it an
atomic block or one opened by ``set_autocommit(False)``. There, and elsewhere, the batches
are written in line.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import connections


class BatchWriter:
    """``write(work)`` runs each batch's transaction after the previous one's; ``close()``
    waits for the last. Either raises the error of a batch written in the background."""

    def __init__(self, using: str) -> None:
        connection = connections[using]
        # With autocommit off the caller's transaction holds the run's row (its lease) and
        # the thread would wait for it while the run waits for the thread.
        threaded = (connection.vendor == "postgresql" and not connection.in_atomic_block
                    and connection.get_autocommit())
        self._executor = (ThreadPoolExecutor(max_workers=1,
                                             thread_name_prefix="transactional-mail-batches")
                          if threaded else None)
        self._pending: Future | None = None

    @property
    def threaded(self) -> bool:
        return self._executor is not None

    def write(self, work: Callable[[], None]) -> None:
        if self._executor is None:
            work()
            return
        self.wait()
        self._pending = self._executor.submit(work)

    def wait(self) -> None:
        """Wait for the batch being written; raise its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the last batch, then close the thread's database connection."""
        if self._executor is None:
            return
        try:
            self.wait()
        finally:
            self._executor.submit(connections.close_all).result()
            self._executor.shutdown()
