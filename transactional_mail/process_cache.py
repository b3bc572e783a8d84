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
from django.db import transaction

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
    """Drop ``keys`` from Django's cache and from this process; inside a transaction on
    ``using``, again when it commits: a read in between (another thread or process)
    still saw the committed rows and cached them."""
    _forget(keys)
    if using is not None and transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(lambda: _forget(keys), using=using)


def _forget(keys: tuple[str, ...]) -> None:
    cache.delete_many(keys)
    for key in keys:
        _values.pop(key, None)


def clear() -> None:
    """Forget this process's copies (tests)."""
    _values.clear()
