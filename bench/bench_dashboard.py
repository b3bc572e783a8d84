"""The statistics dashboard over a 5-million-email log on PostgreSQL: each of its
queries read from the daily rows (``MailStatDay``), side by side with the same numbers
computed from the send log (``Email`` and ``EmailEvent``), and the whole page.

Run: ``TM_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test python
bench/bench_dashboard.py`` (``-n`` emails, 5 000 000 by default; ``--runs``, 7). It
creates the database ``tm_bench_dashboard`` (or ``$TM_BENCH_DB``) on that server,
migrates it, seeds a year of emails (20 templates, three categories, ten triggers, two
subject variants on two templates) and their events (95 % delivered 1 s to 2 h after
being queued, 30 % of those opened, some twice, 5 % clicked, 2 % hard bounces, 0.1 %
complaints) with ``INSERT ... SELECT generate_series``, builds the daily rows from them
in one ``INSERT ... SELECT`` (what ``rebuild_mail_stats`` writes, in SQL: the command
classifies each event in Python, too slow for a 7-million-event seed), checks that the
two sources agree, prints the median of the runs per query and source, times
``rebuild_mail_stats`` over the last week (and checks it writes the seed's rows), times
the page, and drops the database.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_delivery  # noqa: E402 - after the path above

DB_NAME = os.environ.get("TM_BENCH_DB", "tm_bench_dashboard")
TEMPLATES = 20
#: The page must answer within this many milliseconds.
TARGET_MS = 300

#: Which emails get which event, a pure function of the id (so the seed is repeatable):
#: the share, in thousandths, of each kind.
SEED_EMAILS = """
INSERT INTO transactional_mail_email (
    status, template_key, trigger_key, category, language, from_email, "to", cc, bcc,
    reply_to, headers, tags, metadata, attachments, context, subject, html_compressed,
    text_compressed, esp_name, esp_message_id, attempts, last_error, outcome_uncertain,
    is_test, source_object_id, created_at, next_attempt_at, status_changed_at, sent_at,
    subject_variant, stat_flags, secret_keys)
SELECT
    'sent', 'template_' || (g %% %(templates)s),
    CASE WHEN g %% 3 = 0 THEN '' ELSE 'trigger_' || (g %% 10) END,
    (ARRAY['orders', 'account', 'billing'])[1 + g %% 3],
    'en', 'shop@example.com', jsonb_build_array('user' || g || '@example.com'),
    '[]', '[]', '[]', '{}', '[]', '{}', '[]', '{}', 'Your order', '', '', 'Postmark',
    md5(g::text), 1, '', false, false, '', t, t, t, t,
    CASE WHEN g %% %(templates)s < 2 THEN 1 + (g / %(templates)s) %% 2 ELSE 0 END, 0, '[]'
FROM (
    SELECT g, now() - (%(rows)s - g) * interval '1 second' * (31536000.0 / %(rows)s) AS t
    FROM generate_series(1, %(rows)s) AS g
) AS rows
"""

#: (event type, hard bounce, which emails: an SQL condition on id, seconds after queued).
EVENT_KINDS = (
    ("delivered", False, "(id * 7919) %% 1000 < 950", "1 + (id * 31) %% 7200"),
    ("opened", False, "(id * 7919) %% 1000 < 950 AND (id * 104729) %% 1000 < 300",
     "600 + (id * 17) %% 86400"),
    ("opened", False, "(id * 7919) %% 1000 < 950 AND (id * 104729) %% 1000 < 100",
     "90000 + (id * 13) %% 86400"),
    ("clicked", False, "(id * 7919) %% 1000 < 950 AND (id * 104729) %% 1000 < 50",
     "900 + (id * 11) %% 86400"),
    ("complained", False, "(id * 7919) %% 1000 < 950 AND (id * 1299709) %% 1000 = 0",
     "3600"),
    ("bounced", True, "(id * 7919) %% 1000 >= 980", "30"),
)

SEED_EVENTS = """
INSERT INTO transactional_mail_emailevent (
    email_id, esp_name, event_id, event_type, timestamp, recipient, recipient_key,
    esp_message_id, hard_bounce, reject_reason, description, mta_response, click_url,
    raw_pruned, received_at)
SELECT id, 'Postmark', '%(number)s-' || id, '%(type)s',
       created_at + (%(seconds)s) * interval '1 second', '', '', esp_message_id,
       %(hard)s, '', '', '', '', false, created_at + (%(seconds)s) * interval '1 second'
FROM transactional_mail_email WHERE %(condition)s
"""


def _bucket_sums(seconds: str) -> str:
    """The histogram columns' sums in SQL, ``seconds`` being the delivery time."""
    from transactional_mail.models.stats import BUCKET_FIELDS, DELIVERY_BUCKETS

    sums, lower = [], None
    for bound, field in zip((*DELIVERY_BUCKETS, None), BUCKET_FIELDS, strict=True):
        conditions = [f"{seconds} > {lower}"] if lower is not None else [f"{seconds} >= 0"]
        if bound is not None:
            conditions.append(f"{seconds} <= {bound}")
        sums.append(f"count(*) FILTER (WHERE {' AND '.join(conditions)}) AS {field}")
        lower = bound
    return ",\n    ".join(sums)


#: Per email, its first event of each kind: the live hooks count each email once.
FIRSTS = """
    SELECT email_id,
           min(coalesce(timestamp, received_at)) FILTER (WHERE event_type = 'delivered')
               AS delivered,
           bool_or(hard_bounce) AS bounced,
           bool_or(event_type = 'complained') AS complained,
           bool_or(event_type = 'opened') AS opened,
           bool_or(event_type = 'clicked') AS clicked
    FROM transactional_mail_emailevent ev
"""


def _log_query(by: str, where: str) -> str:
    """The dashboard's counters computed from the send log, grouped by ``by``."""
    seconds = "extract(epoch FROM f.delivered - e.created_at)"
    return f"""
    WITH e AS (SELECT id, created_at, sent_at, template_key, trigger_key, category,
                      subject_variant FROM transactional_mail_email
               WHERE NOT is_test AND created_at >= %(start)s AND created_at < %(end)s
                     {where}),
         f AS ({FIRSTS} WHERE email_id IN (SELECT id FROM e) GROUP BY email_id)
    SELECT {by} AS key,
           count(*) FILTER (WHERE e.sent_at IS NOT NULL) AS sent,
           count(f.delivered) AS delivered,
           count(*) FILTER (WHERE f.bounced) AS bounced,
           count(*) FILTER (WHERE f.complained) AS complained,
           count(*) FILTER (WHERE f.opened) AS opened,
           count(*) FILTER (WHERE f.clicked) AS clicked,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY {seconds}) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY {seconds}) AS p95
    FROM e LEFT JOIN f ON f.email_id = e.id
    GROUP BY 1 ORDER BY 1
    """


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5_000_000, help="emails (5 000 000)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per query (7)")
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
        return run(args.runs)
    finally:
        from django.db import connections

        connections.close_all()
        _database(postgres_url, create=False)


def _database(postgres_url: str, *, create: bool) -> None:
    bench_delivery.recreate_databases(postgres_url, (DB_NAME,), create=create)


def seed(rows: int) -> None:
    """The emails and events in a few statements (indexes built afterwards, as a restore
    would), then the daily rows from them."""
    from django.conf import settings
    from django.db import connection

    from tests.factories import make_template

    for number in range(TEMPLATES):
        variants = {"subject_b": "Another subject"} if number < 2 else {}
        make_template(f"template_{number}", **variants)
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
        cursor.execute(SEED_EMAILS % {"rows": rows, "templates": TEMPLATES})
        for number, (kind, hard, condition, seconds) in enumerate(EVENT_KINDS):
            cursor.execute(SEED_EVENTS % {"number": number, "type": kind, "hard": hard,
                                          "condition": condition % (),
                                          "seconds": seconds % ()})
        seeded = time.perf_counter()
        for _, definition in indexes:
            cursor.execute(definition)
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")
        indexed = time.perf_counter()
        seconds = "extract(epoch FROM f.delivered - e.created_at)"
        cursor.execute(f"""
            INSERT INTO transactional_mail_mailstatday (
                day, template_key, trigger_key, category, subject_variant, sent, delivered,
                bounced, complained, opened, clicked, unsubscribed,
                {", ".join(_bucket_fields())})
            SELECT (e.created_at AT TIME ZONE %s)::date, e.template_key, e.trigger_key,
                   e.category, e.subject_variant,
                   count(*) FILTER (WHERE e.sent_at IS NOT NULL), count(f.delivered),
                   count(*) FILTER (WHERE f.bounced), count(*) FILTER (WHERE f.complained),
                   count(*) FILTER (WHERE f.opened), count(*) FILTER (WHERE f.clicked), 0,
                   {_bucket_sums(seconds).replace(" AS ", " AS _")}
            FROM transactional_mail_email e
            LEFT JOIN ({FIRSTS} GROUP BY email_id) f ON f.email_id = e.id
            WHERE NOT e.is_test
            GROUP BY 1, 2, 3, 4, 5
        """, [settings.TIME_ZONE])
        cursor.execute("VACUUM ANALYZE transactional_mail_mailstatday")
        cursor.execute("SELECT count(*) FROM transactional_mail_mailstatday")
        [(daily_rows,)] = cursor.fetchall()
    print(f"seeded {rows:,} emails and their events in {seeded - started:.0f} s, indexed "
          f"in {indexed - seeded:.0f} s; {daily_rows:,} daily rows built in "
          f"{time.perf_counter() - indexed:.0f} s")


def _bucket_fields() -> tuple[str, ...]:
    from transactional_mail.models.stats import BUCKET_FIELDS

    return BUCKET_FIELDS


def _with_percentiles(counts: dict) -> tuple:
    from transactional_mail.admin.dashboard_queries import percentile

    return counts, percentile(counts, 0.5), percentile(counts, 0.95)


def _median_ms(call, runs: int) -> float:
    call()  # warm-up
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def run(runs: int) -> int:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from transactional_mail.admin.dashboard_queries import (
        Period,
        by_day,
        by_group,
        by_variant,
        totals,
    )

    today = timezone.localdate()
    tz = timezone.get_current_timezone()

    def bounds(period: Period) -> dict:
        start = datetime.datetime.combine(period.start, datetime.time(), tz)
        return {"start": start, "end": datetime.datetime.combine(
            period.end + datetime.timedelta(days=1), datetime.time(), tz)}

    def from_log(by: str, period: Period, where: str = "") -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(_log_query(by, where),
                           {**bounds(period), "template": period.template_key})
            return cursor.fetchall()

    day_sql = f"(e.created_at AT TIME ZONE '{tz.key}')::date"
    cases = []
    for days in (30, 365):
        period = Period(today - datetime.timedelta(days=days - 1), today)
        one = Period(period.start, today, template_key="template_0")
        cases += [
            (f"totals + p50/p95, {days} days",
             lambda p=period: _with_percentiles(totals(p)),
             lambda p=period: from_log("''", p)),
            (f"per day, {days} days", lambda p=period: by_day(p),
             lambda p=period: from_log(day_sql, p)),
            (f"per template, {days} days", lambda p=period: by_group(p, "template_key"),
             lambda p=period: from_log("e.template_key", p)),
            (f"A/B variants of one template, {days} days", lambda p=one: by_variant(p),
             lambda p=one: from_log("e.subject_variant", p,
                                    "AND template_key = %(template)s AND subject_variant > 0")),
        ]
    # The two sources agree (over the whole year, every counter).
    year = Period(today - datetime.timedelta(days=364), today)
    [(_key, *log_counts, _p50, _p95)] = from_log("''", year)
    daily = totals(year)
    counters = ("sent", "delivered", "bounced", "complained", "opened", "clicked")
    assert tuple(daily[name] for name in counters) == tuple(log_counts), (daily, log_counts)
    print(f"both sources agree over the year: {dict(zip(counters, log_counts, strict=True))}")

    print(f"{'query':<44}{'daily rows ms':>14}{'send log ms':>13}{'ratio':>8}")
    for label, daily_query, log_query in cases:
        fast, slow = _median_ms(daily_query, runs), _median_ms(log_query, max(runs // 2, 3))
        print(f"{label:<44}{fast:>14.1f}{slow:>13.0f}{slow / max(fast, 0.01):>7.0f}x")

    # The rebuild of the last week (what an operator runs after an incident) writes the
    # same rows as the seed's SQL, and how long it takes.
    from django.forms.models import model_to_dict

    from transactional_mail.models import MailStatDay
    from transactional_mail.stats_rebuild import rebuild

    week = today - datetime.timedelta(days=6)

    def week_rows() -> list[dict]:
        return [{k: v for k, v in model_to_dict(row).items() if k != "id"}
                for row in MailStatDay.objects.filter(day__gte=week).order_by(
                    "day", "template_key", "trigger_key", "category", "subject_variant")]

    seeded_rows = week_rows()
    started = time.perf_counter()
    rebuild(week)
    took = time.perf_counter() - started
    assert week_rows() == seeded_rows, "the rebuild differs from the seeded rows"
    emails = sum(row["sent"] for row in seeded_rows)
    print(f"rebuild_mail_stats --since {week}: {emails:,} emails in {took:.1f} s "
          f"({emails / took:,.0f} emails/s), the same rows as the seed")

    user = User.objects.create_superuser("bench", "bench@example.com", "x")
    client = Client()
    client.force_login(user)
    url = "/admin/transactional_mail/mailstatday/"
    missed = False
    for label, params in (("page, 30 days", {}),
                          ("page, 365 days, one template (A/B test)", {
                              "start": year.start.isoformat(), "template": "template_0"})):
        def page(params=params):
            assert client.get(url, params).status_code == 200

        median = _median_ms(page, runs)
        missed |= median >= TARGET_MS
        print(f"{label:<44}{median:>14.1f}{'':>13}  target {TARGET_MS} ms: "
              f"{'ok' if median < TARGET_MS else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
