"""Each process keeps a value read on the request path for a second, in front of Django's
cache (``transactional_mail.process_cache``)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from transactional_mail import process_cache


class Loader:
    def __init__(self, *values):
        self.values, self.calls = list(values), 0

    def __call__(self):
        self.calls += 1
        return self.values.pop(0)


@pytest.fixture
def clock(monkeypatch):
    """process_cache's monotonic clock, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(process_cache.time, "monotonic", lambda: now[0])
    return now


def test_a_value_is_read_once_per_second_per_process(clock):
    load = Loader("first", "second")
    assert process_cache.read("k", load) == "first"
    cache.set("k", "changed elsewhere")  # another process's write to the shared cache
    assert process_cache.read("k", load) == "first"  # this process's copy, no cache read
    clock[0] += process_cache.SECONDS + 0.01
    assert process_cache.read("k", load) == "changed elsewhere"  # Django's cache again
    assert load.calls == 1


def test_forget_is_seen_at_once_by_this_process(clock):
    load = Loader({"en": "orders"}, {"en": "orders", "de": "orders"})
    process_cache.read("k", load)
    process_cache.forget("k")
    assert cache.get("k") is None
    assert process_cache.read("k", load) == {"en": "orders", "de": "orders"}


def test_a_value_not_kept_is_cached_nowhere(clock):
    load = Loader({}, {"en": "orders"})
    assert process_cache.read("k", load, keep=bool) == {}
    assert cache.get("k") is None
    assert process_cache.read("k", load, keep=bool) == {"en": "orders"}  # found at once


def test_no_caching_when_cache_timeout_is_zero(settings, clock):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "CACHE_TIMEOUT": 0}
    load = Loader("a", "b")
    assert [process_cache.read("k", load), process_cache.read("k", load)] == ["a", "b"]
    assert cache.get("k") is None


def test_a_full_process_cache_starts_again(monkeypatch, clock):
    monkeypatch.setattr(process_cache, "_MAX_ENTRIES", 3)
    for key in "abcd":
        process_cache.read(key, lambda key=key: key)
    assert len(process_cache._values) <= 3


@pytest.mark.django_db(transaction=True)  # real commits and rollbacks
class TestReadsOfAnOpenChange:
    """A transaction that changed what a key holds (``forget(..., using=...)`` inside it)
    keeps its own reads to itself: they see rows a rollback may undo."""

    def test_a_rolled_back_change_leaves_nothing_cached(self, clock):
        from django.db import transaction

        load = Loader("uncommitted", "committed")
        with pytest.raises(RuntimeError), transaction.atomic():
            process_cache.forget("k", using="default")
            assert process_cache.read("k", load) == "uncommitted"
            assert process_cache.read("k", load) == "uncommitted"  # once per transaction
            raise RuntimeError("rolled back")
        assert cache.get("k") is None and "k" not in process_cache._values
        assert process_cache.read("k", load) == "committed"
        assert load.calls == 2

    def test_a_committed_change_is_read_afresh_after_the_commit(self, clock):
        from django.db import transaction

        load = Loader("inside", "after")
        cache.set("k", "stale")  # another process read the committed rows meanwhile
        with transaction.atomic():
            process_cache.forget("k", using="default")
            assert process_cache.read("k", load) == "inside"
            cache.set("k", "stale")
        assert process_cache.read("k", load) == "after"  # forgotten again at the commit
        assert cache.get("k") == "after"
