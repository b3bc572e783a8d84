"""Where one delivery worker's time goes, per email: the claim, the batch's rows, the
render, the message, the send, the result.

Run: ``python bench/bench_delivery_split.py`` (``TM_TEST_POSTGRES`` required; ``-n``, 600
by default). No Celery: this process queues N emails (bench_delivery.py's branded order
confirmation), then calls ``delivery.deliver_batch`` until the outbox is empty, against
bench_delivery.py's fake Postmark, timing each step in this process (CPU and wall, so the
difference is the wait for PostgreSQL or the ESP). It uses the database
``tm_bench_delivery`` on that server (created, then dropped). Read it with
bench_delivery.py's "CPU per email" table: the worker's pool processes pay these steps
plus Celery's own cost per task.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_delivery  # noqa: E402 - after the path above

STEPS = {  # (module attribute, label) of what is timed
    "claims._claim_rows_postgresql": "claim (one UPDATE ... RETURNING)",
    "delivery._Batch.emails": "the batch's rows, suppressions, revisions",
    "delivery.render_email": "render (subject, HTML, text)",
    "delivery.build_message": "build the message",
    "claims.Claim.holds": "fence check before the send",
    "EmailBackend.send_messages": "send (Anymail Postmark backend, HTTP)",
    "delivery._finish": "write the result (UPDATE, commit)",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=600, help="emails (600)")
    args = parser.parse_args()
    postgres_url = os.environ.get("TM_TEST_POSTGRES")
    if not postgres_url:
        print("Set TM_TEST_POSTGRES, e.g. postgres://postgres@127.0.0.1:5432/test")
        return 2
    esp = bench_delivery.FakeESP()
    os.environ.update(DJANGO_SETTINGS_MODULE="tests.settings",
                      TM_TEST_DB_NAME=bench_delivery.DB_NAME, TM_TEST_BROKER="memory://",
                      TM_ESP_URL=esp.url)
    bench_delivery._databases(postgres_url, create=True)
    try:
        bench_delivery.setup_app_site()
        return run(args.n)
    finally:
        esp.stop()
        from django.db import connections

        connections.close_all()
        bench_delivery._databases(postgres_url, create=False)


def run(n: int) -> int:
    from anymail.backends.postmark import EmailBackend
    from django.db import transaction

    import transactional_mail
    from transactional_mail import claims, delivery

    for i in range(n):
        with transaction.atomic():
            transactional_mail.send("order_confirmation", bench_delivery.recipient(i),
                                    bench_delivery.order_context(i))
    cpu, wall = collections.defaultdict(float), collections.defaultdict(float)
    owners = {"claims": claims, "delivery": delivery, "EmailBackend": EmailBackend}

    def timed(function, label):
        def wrapper(*args, **kwargs):
            started_cpu, started = time.process_time(), time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                cpu[label] += time.process_time() - started_cpu
                wall[label] += time.perf_counter() - started
        return wrapper

    for path, label in STEPS.items():
        *names, attribute = path.split(".")
        owner = owners[names[0]]
        for name in names[1:]:
            owner = getattr(owner, name)
        setattr(owner, attribute, timed(getattr(owner, attribute), label))

    started_cpu, started, sent = time.process_time(), time.perf_counter(), 0
    while outcomes := delivery.deliver_batch(None, 50):
        sent += len(outcomes)
    total_cpu, total = time.process_time() - started_cpu, time.perf_counter() - started
    print(f"{sent} emails in batches of 50, one process, PostgreSQL; ms per email")
    print(f"{'step':<45}{'cpu':>8}{'wall':>8}")
    for label in STEPS.values():
        print(f"{label:<45}{cpu[label] * 1000 / sent:>8.2f}{wall[label] * 1000 / sent:>8.2f}")
    rest_cpu = total_cpu - sum(cpu.values())
    rest = total - sum(wall.values())
    print(f"{'the rest (recipients, compression, signals)':<45}{rest_cpu * 1000 / sent:>8.2f}"
          f"{rest * 1000 / sent:>8.2f}")
    print(f"{'total':<45}{total_cpu * 1000 / sent:>8.2f}{total * 1000 / sent:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
