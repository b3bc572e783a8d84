"""Values read on the request path, kept for a second by each process in front of Django's
cache.

A matching trigger reads two cached values per save (the triggers staff switched off, the
languages of the template key), and so does a schedule run per recipient. With a Redis or
memcached cache each read is a network round trip, and even a local-memory cache unpickles
the value. Each process keeps what it read for ``SECONDS``: a change made in the admin is
seen at once by the process that made it (it forgets its copy) and within a second by the
others, which then read Django's cache (invalidated on save) as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache
from django.db import connections, transaction

from .conf import get_setting

T = TypeVar("T")

#: How long a process keeps a value it read.
SECONDS = 1.0

#: Entries a process keeps at most (one per template key, and one): cleared when full.
_MAX_ENTRIES = 1024

_values: dict[str, tuple[float, object]] = {}


def read(key: str, load: Callable[[], T], keep: Callable[[T], bool] = lambda value: True) -> T:
    """The value of ``key``: this process's copy (under a second old), Django's cache's,
    or ``load()``'s, which is cached when ``keep(value)``. Nothing is cached when
    ``CACHE_TIMEOUT`` is 0."""
    timeout = get_setting("CACHE_TIMEOUT")
    if not timeout:
        return load()
    change = _open_change(key)
    if change is not None:
        # Changed by a transaction still open here: its reads see its own rows, which a
        # rollback would undo. Kept for that transaction only.
        if key not in change.values:
            value = load()
            if not keep(value):
                return value
            change.values[key] = value
        return change.values[key]  # type: ignore[return-value]
    now = time.monotonic()
    entry = _values.get(key)
    if entry is not None and entry[0] > now:
        return entry[1]  # type: ignore[return-value]
    value = cache.get(key)
    if value is None:
        value = load()
        if not keep(value):
            return value
        cache.set(key, value, timeout)
    if len(_values) >= _MAX_ENTRIES:
        _values.clear()
    _values[key] = (now + SECONDS, value)
    return value


def forget(*keys: str, using: str | None = None) -> None:
    """Drop ``keys`` from Django's cache and from this process. Inside a transaction on
    ``using``: again when it commits (a read in between, by another thread or process,
    still saw the committed rows and cached them), and until it ends its own reads of
    ``keys`` are kept for it alone (they see its uncommitted rows, which a rollback
    undoes)."""
    _forget(keys)
    if using is None or not transaction.get_connection(using).in_atomic_block:
        return
    connection = connections[using]
    pending = _ForgetOnCommit(keys, connection)
    changed = connection.__dict__.setdefault(_CHANGED, {})
    changed.update(dict.fromkeys(keys, pending))
    transaction.on_commit(pending, using=using)


#: Per database connection: the keys an open transaction changed, each with the callback
#: that forgets it at the commit.
_CHANGED = "_transactional_mail_changed_cache_keys"


class _ForgetOnCommit:
    def __init__(self, keys: tuple[str, ...], connection) -> None:
        self.keys, self.connection = keys, connection
        self.values: dict[str, object] = {}  # what the open transaction read

    def __call__(self) -> None:
        _forget(self.keys)
        changed = self.connection.__dict__.get(_CHANGED, {})
        for key in self.keys:
            if changed.get(key) is self:
                del changed[key]


def _open_change(key: str) -> _ForgetOnCommit | None:
    """The change to what ``key`` holds by a transaction still open in this thread: its
    callback still waits for the commit (Django drops it on a rollback)."""
    for connection in connections.all(initialized_only=True):
        changed = connection.__dict__.get(_CHANGED)
        pending = changed.get(key) if changed else None
        if pending is None:
            continue
        if connection.in_atomic_block and any(
                entry[1] is pending for entry in connection.run_on_commit):
            return pending
        del changed[key]  # that transaction rolled back
    return None


def _forget(keys: tuple[str, ...]) -> None:
    cache.delete_many(keys)
    for key in keys:
        _values.pop(key, None)


def clear() -> None:
    """Forget this process's copies (tests)."""
    _values.clear()
