"""How many emails per second ``send()`` queues inside one transaction.

Run: ``python bench/bench_send.py`` (SQLite, and PostgreSQL when ``TM_TEST_POSTGRES`` is
set, e.g. ``postgres://postgres@127.0.0.1:5432/test``). Each database runs in its own
subprocess, because Django settings are configured once per process. The broker is
Kombu's in-process ``memory://`` transport, so the figure is the app's cost, not a
broker's round trip; the commit (with its on_commit publishes) is timed separately.

Target (issue 2): >= 1,000 emails/s queued by send() inside one transaction, on SQLite
and on PostgreSQL. The verdict reads the send() calls; the figure including the commit
(which publishes one task per email after the transaction) is printed beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
N = int(os.environ.get("BENCH_SEND_N", "2000"))
ROUNDS = 3


def configure(database: str, extra_apps: list[str] | None = None, **overrides) -> None:
    """Configure Django for a benchmark on ``database`` ("sqlite" or "postgres"), the app's
    apps plus ``extra_apps``, and ``overrides`` of any other setting; then migrate."""
    import django
    from django.conf import settings

    if database == "sqlite":
        db = {"ENGINE": "django.db.backends.sqlite3",
              "NAME": os.path.join(tempfile.mkdtemp(), "bench.sqlite3")}
    else:
        url = urlsplit(os.environ["TM_TEST_POSTGRES"])
        db = {"ENGINE": "django.db.backends.postgresql", "NAME": "tm_bench",
              "USER": url.username or "postgres", "PASSWORD": url.password or "",
              "HOST": url.hostname or "127.0.0.1", "PORT": str(url.port or 5432)}
        _recreate_postgres_database(db)
    settings.configure(**{
        "INSTALLED_APPS": ["django.contrib.auth", "django.contrib.contenttypes", "anymail",
                           "django_celery_beat", "transactional_mail", *(extra_apps or [])],
        "DATABASES": {"default": db},
        "USE_TZ": True,
        "TRANSACTIONAL_MAIL": {"DEFAULT_FROM_EMAIL": "Shop <shop@example.com>"},
        "CELERY_BROKER_URL": "memory://",
        "LOGGING_CONFIG": None,
        **overrides,
    })
    django.setup()
    from celery import Celery

    app = Celery("bench", set_as_current=True)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _recreate_postgres_database(db: dict) -> None:
    import psycopg

    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"],
                         password=db["PASSWORD"], dbname="postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS tm_bench")
        conn.execute("CREATE DATABASE tm_bench")


def run(database: str) -> dict:
    configure(database)
    from django.db import transaction

    import transactional_mail
    from transactional_mail.models import Email, EmailTemplate, Layout

    layout = Layout.objects.create(name="Brand", html="<html><body>{{ content }}</body></html>")
    layout.publish()
    EmailTemplate.objects.create(key="order_confirmation", subject="Order {{ n }}",
                                 html="<p>Order {{ n }}</p>", layout=layout).publish()
    context = {"n": 1, "customer": {"name": "Ann", "email": "ann@example.com"},
               "items": [{"sku": f"SKU-{i}", "qty": i, "price": "9.90"} for i in range(5)]}
    best_send = best_total = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        with transaction.atomic():
            for i in range(N):
                transactional_mail.send("order_confirmation", f"c{i}@example.com",
                                        {**context, "n": i})
            sent_all = time.perf_counter()
        committed = time.perf_counter()  # on_commit publishes to the broker ran here
        best_send = min(best_send, sent_all - start)
        best_total = min(best_total, committed - start)
    assert Email.objects.count() == N * ROUNDS
    return {"database": database, "emails": N, "send_per_s": N / best_send,
            "with_commit_per_s": N / best_total}


def main() -> None:
    databases = ["sqlite"] + (["postgresql"] if os.environ.get("TM_TEST_POSTGRES") else [])
    results = []
    for database in databases:
        out = subprocess.run([sys.executable, __file__, "--one", database], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"send() queueing rate, {N} emails in one transaction, best of {ROUNDS}")
    print(f"{'database':<12}{'send() calls/s':>16}{'incl. commit/s':>16}{'target':>10}")
    for row in results:
        verdict = "ok" if row["send_per_s"] >= 1000 else "BELOW"  # the target: send() calls
        print(f"{row['database']:<12}{row['send_per_s']:>16,.0f}"
              f"{row['with_commit_per_s']:>16,.0f}{'>=1,000':>10} {verdict}")
    if "postgresql" not in databases:
        print("(PostgreSQL skipped: set TM_TEST_POSTGRES to include it)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(run(sys.argv[2])))
    else:
        main()
