"""Attacks on the throughput changes of 2026-11-30: the background publisher, the raw
outbox INSERT, the one-statement result, the per-process cache and ``addr_spec``."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.db import connection, connections, transaction

from transactional_mail.models import Trigger
from transactional_mail.models.triggers import disabled_triggers_cache_key

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql",
                                   reason="needs a second connection reading meanwhile")


def _read_in_another_thread() -> frozenset[str]:
    """``disabled_keys()`` as a concurrent request of this process reads it."""
    result = []

    def run():
        try:
            result.append(Trigger.objects.disabled_keys())
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result[0]


@pytest.mark.django_db(transaction=True)
def test_a_trigger_disabled_in_a_transaction_stays_disabled_after_a_read_before_commit():
    """Attack: the admin (or code) disables a trigger inside a transaction (the admin's
    change view is atomic). ``Trigger.save()`` forgets the cached disabled keys at once,
    before the commit. Any read in between (another process; here another process's
    write to Django's cache, exactly what its ``disabled_keys()`` does) still sees the
    committed row (enabled) and caches ``frozenset()`` for ``CACHE_TIMEOUT`` (60 s). After
    the commit, this process reads that stale value: the disabled trigger keeps firing
    for a minute in every process.
    """
    Trigger.objects.create(key="order_placed")
    assert Trigger.objects.disabled_keys() == frozenset()
    with transaction.atomic():
        switch = Trigger.objects.get(key="order_placed")
        switch.enabled = False
        switch.save()
        # Another process's disabled_keys(), between the save and the commit: it reads
        # the committed row (still enabled) and caches what it read.
        cache.set(disabled_triggers_cache_key(), frozenset(), 60)
    assert "order_placed" in Trigger.objects.disabled_keys()


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_read_in_this_process_does_not_revive_a_disabled_trigger():
    """Attack, in one process: a request thread fires triggers while the admin's thread
    disables one. The firing thread's read between the admin's save (which forgets the
    process's copy and Django's cache) and its commit loads the committed row (enabled)
    and stores it in this process's copy and in Django's cache; after the commit the
    admin's own process keeps firing the disabled trigger."""
    Trigger.objects.create(key="order_placed")
    with transaction.atomic():
        switch = Trigger.objects.get(key="order_placed")
        switch.enabled = False
        switch.save()
        assert _read_in_another_thread() == frozenset()  # the committed row: enabled
    assert "order_placed" in Trigger.objects.disabled_keys()


#: What needs quoting, in SQL and in the driver's parameter syntax.
HOSTILE = "O'Brien \"q\" \\ \\' %s %% %(x)s $1 ::jsonb ');DELETE FROM x;-- é 🙂"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the raw INSERT is "
                    "PostgreSQL's; elsewhere insert() is save()")
@pytest.mark.django_db
def test_hostile_strings_in_every_field_round_trip_through_the_raw_insert():
    """Attempt (held): every string ``send()`` lets through, in every field the raw
    INSERT writes as a parameter or through the context's JSON text, with SQL quotes,
    backslashes, the driver's ``%s``/``%(x)s`` and a 1 MB value: the row is the one
    ``save()`` writes, no other row is touched."""
    from tests.factories import make_template
    from transactional_mail import outbox_insert
    from transactional_mail.api import build_email
    from transactional_mail.models import Email

    make_template()
    bystander = build_email("order_confirmation", ["bystander@example.com"], {"n": 1})
    bystander.save()
    options = dict(
        context={HOSTILE: HOSTILE, "big": "x" * 1_000_000, "list": [HOSTILE, {HOSTILE: 1}]},
        metadata={HOSTILE: HOSTILE}, tags=[HOSTILE], headers={"X-Note": HOSTILE},
        idempotency_key=HOSTILE, trigger_key=HOSTILE[:100],
        cc=['"O\'Brien \\" %s %(x)s" <cc@example.com>'],
        attachments=[(HOSTILE + ".txt", HOSTILE.encode(), "text/plain")],
    )
    to = ['"O\'Brien %s %(x)s \\\\" <ann@example.com>']
    saved = build_email("order_confirmation", to, **options)
    saved.idempotency_key = None  # unique: the compared row has its own
    saved.save()
    inserted = build_email("order_confirmation", to, **options)
    outbox_insert.insert(inserted, "default")

    def row(pk):
        values = Email.objects.filter(pk=pk).values()[0]
        for name in ("id", "created_at", "updated_at", "status_changed_at",
                     "next_attempt_at", "idempotency_key"):
            values.pop(name, None)
        return values

    assert row(inserted.pk) == row(saved.pk)
    assert Email.objects.get(pk=inserted.pk).idempotency_key == HOSTILE
    assert Email.objects.get(pk=inserted.pk).context["big"] == "x" * 1_000_000
    assert row(bystander.pk)["context"] == {"n": 1} and Email.objects.count() == 3


def test_concurrent_commits_publish_every_id_exactly_once(monkeypatch):
    """Attempt (held): 8 request threads hand over 4,000 ids while the publisher thread
    gathers and publishes, and some of them, finding ids waiting past ``STALL`` (made
    tiny here), publish in line at the same time: no id is lost between ``add``,
    ``flush`` and the thread, and none is published twice."""
    import collections
    import time

    from transactional_mail import background_publish

    monkeypatch.setattr(background_publish, "GATHER", 0.001)
    monkeypatch.setattr(background_publish, "STALL", 0.002)
    published: list[int] = []
    lock = threading.Lock()

    def publish(ids):
        time.sleep(0.003)  # a broker round trip: ids pile up, stalls happen
        with lock:
            published.extend(ids)

    publisher = background_publish.Publisher(publish)

    def commit_many(start):
        for number in range(start, start + 500):
            publisher.add([number])

    threads = [threading.Thread(target=commit_many, args=(start,))
               for start in range(0, 4000, 500)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 5
    while publisher.waiting() and time.monotonic() < deadline:
        time.sleep(0.01)
    publisher.flush()
    time.sleep(0.05)  # a publish the thread had started
    counts = collections.Counter(published)
    assert sorted(counts) == list(range(4000))
    assert [number for number, count in counts.items() if count > 1] == []


def test_ids_waiting_at_interpreter_exit_are_published(tmp_path):
    """Attempt (held): a process that exits (a worker recycled after its last request)
    right after a commit handed ids to the thread: ``atexit`` publishes them, once, though
    the daemon thread may be gathering at that moment."""
    import subprocess
    import sys

    out = tmp_path / "published"
    script = f"""
import time
from transactional_mail import background_publish
background_publish.GATHER = 5  # the thread would publish long after the exit
def publish(ids):
    with open({str(out)!r}, "a") as f:
        f.write(",".join(map(str, ids)) + "\\n")
p = background_publish.publisher(publish)
p.add([1, 2])
time.sleep(0.05)
p.add([3])
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30,
                   cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.read_text().splitlines() == ["1,2,3"]
