"""The send log's admin pages over a 5-million-row log on PostgreSQL: the changelist, a
filtered page (status + template + date range), a recipient search and the per-recipient
page, each timed through Django's test client as a logged-in superuser.

Run: ``TM_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test python
bench/bench_admin_log.py`` (``-n`` rows, 5 000 000 by default; ``--runs``, 7). It creates
the database ``tm_bench_admin_log`` on that server, migrates it, seeds the rows with
``INSERT ... SELECT generate_series`` (statuses, templates, triggers, categories, test
sends, 500 000 addresses, a year of dates; a delivery event for every fifth email), builds
the indexes after the rows (as a restore would), ANALYZEs, times the pages, prints the
median of the runs against the target (300 ms) with ``EXPLAIN ANALYZE`` of the slowest
query of each page that misses it (or of every page with ``--explain``), then drops the
database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_delivery  # noqa: E402 - after the path above

DB_NAME = "tm_bench_admin_log"
TARGET_MS = 300
TEMPLATES = 20
ADDRESSES = 500_000

SEED_EMAILS = """
INSERT INTO transactional_mail_email (
    status, template_key, trigger_key, category, language, from_email, "to", cc, bcc,
    reply_to, headers, tags, metadata, attachments, context, subject, html_compressed,
    text_compressed, esp_name, esp_message_id, attempts, last_error, outcome_uncertain,
    is_test, source_object_id, created_at, next_attempt_at, status_changed_at, sent_at,
    subject_variant, stat_flags, secret_keys)
SELECT
    CASE WHEN r < 0.80 THEN 'delivered' WHEN r < 0.93 THEN 'sent'
         WHEN r < 0.96 THEN 'bounced' WHEN r < 0.98 THEN 'failed'
         WHEN r < 0.99 THEN 'deferred' ELSE 'cancelled' END,
    'template_' || (g %% %(templates)s),
    CASE WHEN g %% 3 = 0 THEN '' ELSE 'trigger_' || (g %% 10) END,
    (ARRAY['orders', 'account', 'billing'])[1 + g %% 3],
    'en', 'shop@example.com',
    jsonb_build_array(CASE WHEN g %% 7 = 0 THEN 'User' ELSE 'user' END
                      || ((g::bigint * 7919) %% %(addresses)s) || '@example.com'),
    '[]', '[]', '[]', '{}', '[]', '{}', '[]',
    jsonb_build_object('order', jsonb_build_object('number', 'A-' || g)),
    'Your order A-' || g, '', '', 'Postmark', md5(g::text), 1, '', false,
    g %% 1000 = 0, '', t, t, t, t, 0, 0, '[]'
FROM (
    SELECT g, random() AS r,
           now() - (%(rows)s - g) * interval '1 second' * (31536000.0 / %(rows)s) AS t
    FROM generate_series(1, %(rows)s) AS g
) AS rows
"""

SEED_EVENTS = """
INSERT INTO transactional_mail_emailevent (
    email_id, esp_name, event_id, event_type, timestamp, recipient, recipient_key,
    esp_message_id, hard_bounce, reject_reason, description, mta_response, click_url,
    raw_pruned, received_at)
SELECT id, 'Postmark', 'ev-' || id, 'delivered', created_at + interval '5 seconds',
       lower("to" ->> 0), '', esp_message_id, false, '', '', '', '', false,
       created_at + interval '6 seconds'
FROM transactional_mail_email WHERE id %% 5 = 0
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5_000_000, help="emails (5 000 000)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per page (7)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN every page's queries")
    args = parser.parse_args()
    postgres_url = os.environ.get("TM_TEST_POSTGRES")
    if not postgres_url:
        print("Set TM_TEST_POSTGRES, e.g. postgres://postgres@127.0.0.1:5432/test")
        return 2
    os.environ.update(DJANGO_SETTINGS_MODULE="tests.settings", TM_TEST_DB_NAME=DB_NAME,
                      TM_TEST_BROKER="memory://")
    _database(postgres_url, create=True)
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
        seed(args.n)
        return run(args.runs, args.explain)
    finally:
        from django.db import connections

        connections.close_all()
        _database(postgres_url, create=False)


def _database(postgres_url: str, *, create: bool) -> None:
    bench_delivery.recreate_databases(postgres_url, (DB_NAME,), create=create)


def seed(rows: int) -> None:
    """The rows in two statements, the indexes built afterwards (as a restore would)."""
    from django.db import connection

    from tests.factories import make_template
    from transactional_mail.models import Trigger

    for number in range(TEMPLATES):
        make_template(f"template_{number}", category=("orders", "account", "billing")[number % 3])
    Trigger.objects.bulk_create(Trigger(key=f"trigger_{number}") for number in range(10))
    started = time.perf_counter()
    tables = ("transactional_mail_email", "transactional_mail_emailevent")
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)", [list(tables)])
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        cursor.execute(SEED_EMAILS % {"rows": rows, "templates": TEMPLATES,
                                      "addresses": ADDRESSES})
        cursor.execute(SEED_EVENTS % {})
        seeded = time.perf_counter()
        for _, definition in indexes:
            cursor.execute(definition)
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"seeded {rows:,} emails in {seeded - started:.0f} s, indexed and analysed in "
          f"{time.perf_counter() - seeded:.0f} s")


def run(runs: int, explain: bool) -> int:
    import datetime

    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    user = User.objects.create_superuser("bench", "bench@example.com", "x")
    client = Client()
    client.force_login(user)
    today = timezone.localdate()
    log = "/admin/transactional_mail/email/"
    pages = {
        "changelist": (log, {}),
        "filtered (status + template + date range)": (log, {
            "status": "failed", "template_key": "template_7",
            "created_from": (today - datetime.timedelta(days=90)).isoformat(),
            "created_to": (today - datetime.timedelta(days=30)).isoformat()}),
        "recipient search": (log, {"q": "user4242@example.com"}),
        "per-recipient page": (log + "recipient/", {"address": "user4242@example.com"}),
    }
    print(f"{'page':<45}{'median ms':>10}{'min':>8}{'max':>8}  target {TARGET_MS} ms")
    missed = False
    for label, (url, params) in pages.items():
        assert client.get(url, params).status_code == 200  # warm-up
        timings = []
        for _ in range(runs):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url, params)
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
        median = statistics.median(timings)
        ok = median < TARGET_MS
        missed |= not ok
        print(f"{label:<45}{median:>10.1f}{min(timings):>8.1f}{max(timings):>8.1f}  "
              f"{'ok' if ok else 'MISSED'}")
        if explain or not ok:
            slowest = sorted(queries.captured_queries, key=lambda q: float(q["time"]))[-2:]
            for query in slowest:
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN ANALYZE " + query["sql"])
                    plan = "\n".join(f"    {row[0]}" for row in cursor.fetchall())
                print(f"  {query['time']} s: {query['sql'][:300]}\n{plan}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
