"""A periodic email to 100,000 recipients: time to queue, peak memory, then the drain.

Run: ``python bench/bench_schedule.py`` (``-n`` recipients, 100,000 by default; ``--quick``:
N=2,000). It needs ``TM_TEST_POSTGRES`` (a server where it creates, then drops, the
database ``tm_bench_schedule``) and ``TM_TEST_REDIS`` (the broker, database ``--redis-db``,
12 by default, on a queue of its own).

1. queue: ``manage.py run_schedule``'s work (``periodic.runs.run``) in a process of its
   own, the worker stopped: a schedule whose recipients callable yields N (address,
   context) pairs, the context being bench_delivery.py's order (8 to 17 items). Seconds
   from start to every row committed and every deliver task published, and the process's
   peak RSS (``ru_maxrss``, Django and the app loaded included). Targets: under 60 s and
   under 200 MB.
2. drain: a real ``celery worker -P prefork -c 2`` (tests/workers.py) started on that
   backlog, delivering with Anymail's Postmark backend to bench_delivery.py's fake
   Postmark: emails/s from the worker's "ready" to the last one sent.
3. the ceiling: Anymail's own render + send of the same email, 2 processes, no database
   (bench_delivery.py's), on ``--ceiling-n`` emails, in the same run; the drain is
   printed as a fraction of it.

The exit status is 1 when the queueing targets are missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import bench_delivery  # noqa: E402 - bench/ is not a package

DB_NAME = "tm_bench_schedule"
SCHEDULE = "bench_report"
TARGET_SECONDS = 60
TARGET_RSS_MB = 200


def recipients(period):
    """The schedule's recipients: BENCH_SCHEDULE_N customers and their orders."""
    for i in range(int(os.environ["BENCH_SCHEDULE_N"])):
        yield bench_delivery.recipient(i), bench_delivery.order_context(i)


def mail_settings() -> dict:
    return {"SCHEDULES": {SCHEDULE: {
        "schedule": "1d", "timezone": "UTC", "template": "order_confirmation",
        "recipients": "bench_schedule.recipients",
    }}}


def queue() -> None:
    """The queueing process: run the schedule's current period, print its figures."""
    import django

    django.setup()
    import tests.celery_app  # noqa: F401 - the site's Celery app, as a project's __init__ does
    from transactional_mail.periodic.definitions import get_schedule
    from transactional_mail.periodic.periods import due_time
    from transactional_mail.periodic.runs import run

    schedule = get_schedule(SCHEDULE)
    started, cpu = time.monotonic(), time.process_time()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        with cProfile.Profile() as profile:
            tally = run(schedule, due_time(schedule))
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    else:
        tally = run(schedule, due_time(schedule))
    print(json.dumps({
        "seconds": time.monotonic() - started, "cpu": time.process_time() - cpu,
        "queued": tally.queued, "outcome": tally.outcome,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def _database(postgres_url: str, *, create: bool) -> None:
    bench_delivery.recreate_databases(postgres_url, (DB_NAME,), create=create)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="A periodic email to N recipients.")
    parser.add_argument("-n", type=int, default=100_000, help="recipients (100,000)")
    parser.add_argument("--ceiling-n", type=int, default=4000,
                        help="emails of the ceiling measurement (4,000)")
    parser.add_argument("--quick", action="store_true", help="N=2,000, ceiling on 1,000")
    parser.add_argument("--no-drain", action="store_true", help="queue only")
    parser.add_argument("--redis-db", type=int, default=12,
                        help="Redis database for the broker (12; the tests use 7 and 8)")
    args = parser.parse_args()
    if args.quick:
        args.n, args.ceiling_n = 2000, 1000
    return args


def main() -> int:
    args = parse_args()
    postgres_url, redis_url = bench_delivery.services()
    if not (postgres_url and redis_url):
        return 2
    sys.path.insert(0, str(ROOT))
    broker = urlsplit(redis_url)._replace(path=f"/{args.redis_db}").geturl()
    bench_delivery.LOG_DIR.mkdir(parents=True, exist_ok=True)
    esp = bench_delivery.FakeESP()  # forked before Django is set up: it stays small
    os.environ.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        TM_TEST_DB_NAME=DB_NAME,
        TM_TEST_QUEUE=f"tm-bench-schedule-{os.getpid()}",
        TM_TEST_BROKER=broker,
        TM_ESP_URL=esp.url,
        TM_TEST_MAIL_SETTINGS=json.dumps(mail_settings()),
        BENCH_SCHEDULE_N=str(args.n),
    )
    _database(postgres_url, create=True)
    try:
        bench_delivery.setup_app_site()
        from tests.workers import celery_env, start_worker
        from transactional_mail.models import Email, EmailStatus

        print(f"Periodic email, N = {args.n:,} recipients, {os.cpu_count()} CPUs, load "
              f"average {os.getloadavg()[0]:.2f}; code at {bench_delivery.git_revision()}")
        result = subprocess.run(
            [sys.executable, __file__, "--queue"], cwd=ROOT, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)])},
        )
        if result.returncode:
            print(result.stderr[-3000:])
            return 1
        queued = json.loads(result.stdout.strip().splitlines()[-1])
        met = queued["seconds"] < TARGET_SECONDS and queued["rss_mb"] < TARGET_RSS_MB
        print(f"queue: {queued['queued']:,} emails in {queued['seconds']:.1f} s "
              f"({queued['queued'] / queued['seconds']:,.0f}/s, CPU {queued['cpu']:.1f} s), "
              f"peak RSS {queued['rss_mb']:.0f} MB (targets: < {TARGET_SECONDS} s, "
              f"< {TARGET_RSS_MB} MB: {'met' if met else 'MISSED'})", flush=True)
        if args.no_drain:
            return 0 if met else 1

        env = celery_env(broker_url=broker, db_name=DB_NAME, esp_url=esp.url,
                         mail_settings=mail_settings())
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(BENCH)])
        esp.reset()
        worker = start_worker("bench-schedule", env, bench_delivery.LOG_DIR, concurrency=2)
        try:
            started = time.monotonic()

            def count_sent() -> int:
                return Email.objects.filter(status=EmailStatus.SENT).count()

            done = bench_delivery.wait_until_sent(args.n, esp, count_sent, "drain")
        finally:
            worker.stop()
        drain = args.n / (done - started)
        stats = esp.stats()
        document = bench_delivery.plain_document(bench_delivery.branded_layout())
        ceiling = bench_delivery.ceiling(args.ceiling_n, document)["rate"]
        print(f"drain: {drain:,.0f} emails/s with 2 worker processes "
              f"({stats['messages']:,} messages at the ESP, {stats['distinct']:,} distinct "
              f"recipients); Anymail's own render + send: {ceiling:,.0f}/s; the drain is "
              f"{drain / ceiling:.2f}x of it")
        return 0 if met else 1
    finally:
        esp.stop()
        from django.db import connections

        connections.close_all()
        bench_delivery._redis(broker).delete(os.environ["TM_TEST_QUEUE"])
        _database(postgres_url, create=False)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--queue"]:
        queue()
    else:
        sys.exit(main())
