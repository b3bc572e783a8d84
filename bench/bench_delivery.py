"""End to end: how fast a real worker delivers the outbox, against its ceiling and its peer.

Run: ``python bench/bench_delivery.py`` (``--quick``: N=300, one repetition; ``-n`` and
``--repetitions``; ``--no-peer``; ``--profile``: cProfile in the worker's processes).

It needs ``TM_TEST_POSTGRES`` (a server where it creates, then drops, the databases
``tm_bench_delivery`` and ``tm_bench_delivery_peer``) and ``TM_TEST_REDIS`` (the broker; the
benchmark uses database ``--redis-db``, 11 by default, and a queue of its own). The worker is
a real ``celery worker -P prefork -c 2`` on the test site (tests/settings.py, started with
tests/workers.py's helpers), sending with Anymail's Postmark backend to a fake Postmark in
its own process. Every email is the same branded order confirmation (the rendering corpus's
layout and CSS, a content template with a loop over 8 to 17 items: 18-26 KB of HTML once
the CSS is inlined, 22 KB on average), to a different address.

Figures, each repetition running every system once, interleaved:

1. backlog drain: N emails queued with the worker stopped, then the worker started;
   emails/s from the worker's "ready" to the last one sent (polled in the database);
2. end to end: a producer process queues N emails, one transaction each as a web app
   would, while the worker delivers; emails/s from the first queued to the last sent;
3. queueing: the producer alone, the worker stopped;
4. CPU per email by process (from /proc: producer, worker main process, worker pool
   processes, every PostgreSQL process, redis-server);
5. the ceiling: Anymail's own render + send, 2 processes, no database: each renders the
   same email with Django's template engine and sends it over one open connection;
6. the peer: django-post_office in a virtualenv of its own (bench/.venv-peer, created on
   the first run), delivering with its Celery task, measured as in 1-4.

Targets (issue 12), on the medians: backlog drain >= 0.8x the ceiling; end to end >= 3x
post_office's end to end. The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import http.client
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

# Only the standard library at module level: bench/peer_post_office.py imports the email
# from here in the peer's virtualenv, where neither the project nor pytest is installed.

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CORPUS = ROOT / "tests" / "rendering_corpus"
LOG_DIR = ROOT / "build" / "bench-logs"
PEER_VENV = BENCH / ".venv-peer"
DB_NAME = "tm_bench_delivery"
PEER_DB_NAME = "tm_bench_delivery_peer"
TARGET_CEILING = 0.8  # backlog drain / ceiling
TARGET_PEER = 3.0  # end to end / post_office's end to end
STALL_SECONDS = 60  # a phase without progress for this long has failed
FROM_EMAIL = "Shop <shop@example.com>"

# --- The email --------------------------------------------------------------------------

SUBJECT = "Order #{{ order.number }} confirmed"

# The content of the corpus's order confirmation (tests/rendering_corpus), grown into what
# shops send: items with links and SKUs, totals, addresses, recommendations, help. Only
# Django's built-in tags and filters, so the ceiling and post_office render it as it is.
CONTENT = """\
<h1>Thank you for your order, {{ customer.first_name|default:"there" }}!</h1>
<p>Order <strong>#{{ order.number }}</strong> was placed on {{ order.date }}. We will email \
you again as soon as it ships.</p>
<h2>Your items</h2>
<table class="items" width="100%" cellpadding="0" cellspacing="0" role="presentation">
  <tr>
    <th>Item</th>
    <th class="num">Qty</th>
    <th class="num">Price</th>
  </tr>
  {% for item in order.items %}
  <tr>
    <td><a href="{{ item.url }}"><img class="product" src="{{ item.image }}" \
alt="{{ item.name }}" width="40" height="40"></a> <a href="{{ item.url }}">{{ item.name }}</a>\
{% if item.variant %} <span class="muted">({{ item.variant }})</span>{% endif %}<br>
      <span class="muted">SKU {{ item.sku }} &middot; {{ item.unit_price }} {{ order.currency }} \
each &middot; sold by {{ item.seller }}</span> <a href="{{ item.url }}?again=1">Buy again</a></td>
    <td class="num">{{ item.quantity }}</td>
    <td class="num">{{ item.price }} {{ order.currency }}</td>
  </tr>
  {% endfor %}
  <tr>
    <td colspan="2">Subtotal</td>
    <td class="num">{{ order.subtotal }} {{ order.currency }}</td>
  </tr>
  <tr>
    <td colspan="2">Shipping ({{ order.delivery_method }})</td>
    <td class="num">{{ order.shipping_cost }} {{ order.currency }}</td>
  </tr>
  <tr>
    <td colspan="2" class="muted">Including VAT</td>
    <td class="num muted">{{ order.tax }} {{ order.currency }}</td>
  </tr>
  <tr>
    <td class="total" colspan="2">Total</td>
    <td class="num total">{{ order.total }} {{ order.currency }}</td>
  </tr>
</table>
{% if order.note %}
<p class="muted">Your note: {{ order.note }}</p>
{% endif %}
<p><a class="btn" href="{{ order.url }}">View your order</a></p>
<table class="items" width="100%" cellpadding="0" cellspacing="0" role="presentation">
  <tr>
    <th>Shipping to</th>
    <th>Billing address</th>
  </tr>
  <tr>
    {% for address in order.addresses %}
    <td>{{ address.name }}<br>{{ address.line1 }}<br>{% if address.line2 %}\
{{ address.line2 }}<br>{% endif %}{{ address.postcode }} {{ address.city }}<br>\
{{ address.country }}</td>
    {% endfor %}
  </tr>
  <tr>
    <td><span class="muted">Delivery</span><br>{{ order.delivery_method }}, expected \
{{ order.delivery_date }}</td>
    <td><span class="muted">Payment</span><br>{{ order.payment }}</td>
  </tr>
</table>
<h2>You may also like</h2>
<table class="items" width="100%" cellpadding="0" cellspacing="0" role="presentation">
  {% for product in recommendations %}
  <tr>
    <td><a href="{{ product.url }}"><img class="product" src="{{ product.image }}" \
alt="{{ product.name }}" width="40" height="40"></a> <a href="{{ product.url }}">\
{{ product.name }}</a><br><span class="muted">{{ product.price }} {{ order.currency }}</span></td>
    <td class="num"><a class="btn" href="{{ product.url }}">Shop now</a></td>
  </tr>
  {% endfor %}
</table>
<h2>Questions?</h2>
<p>Reply to this email or visit <a href="https://shop.example.com/help/">our help centre</a>; \
quote your order number, <strong>#{{ order.number }}</strong>. You can follow your parcel \
from <a href="{{ order.url }}">your order page</a> once it has shipped.</p>
<p class="muted">You can return any item within 30 days of delivery, free of charge: start \
a return from <a href="{{ order.url }}returns/">your order page</a> and drop the parcel at \
any post office. Refunds reach your original payment method within 5 working days of our \
receiving the parcel. Items marked final sale cannot be returned.</p>
<p class="muted">{{ order.items|length }} item{{ order.items|length|pluralize }} will ship \
to {{ order.addresses.0.city }}. Prices include VAT at the rate of your delivery country.</p>
"""

TEXT = """\
Thank you for your order, {{ customer.first_name|default:"there" }}!

Order #{{ order.number }} was placed on {{ order.date }}.
{% for item in order.items %}
- {{ item.quantity }} x {{ item.name }}: {{ item.price }} {{ order.currency }}{% endfor %}

Total: {{ order.total }} {{ order.currency }}

View your order: {{ order.url }}
"""


def branded_layout() -> dict[str, str]:
    """The rendering corpus's branded layout (bench_render.py's): HTML, CSS, brand values."""
    spec = json.loads((CORPUS / "cases.json").read_text())["layouts"]["branded"]
    return {
        "html": (CORPUS / spec["html"]).read_text(),
        "css": (CORPUS / spec["css"]).read_text(),
        **spec["brand"],
    }


def plain_document(layout: dict[str, str]) -> str:
    """The same email as one Django template, the CSS in a ``<style>`` element.

    What the ceiling and post_office render: neither has layouts nor inlines CSS, so
    their HTML is smaller than the app's (the sizes are printed).
    """

    def fill(text: str, escape) -> str:
        for key, value in layout.items():
            text = text.replace("{{ brand.%s }}" % key, escape(value))  # noqa: UP031
        return text

    footer = fill(layout["footer_html"], html.escape)
    document = fill(layout["html"].replace("{{ brand.footer_html }}", footer), html.escape)
    style = f"<style>\n{fill(layout['css'], str)}</style>\n</head>"
    return document.replace("{{ content }}", CONTENT).replace("</head>", style, 1)


def recipient(i: int) -> str:
    # One address per email: the fake ESP counts distinct recipients to spot duplicates.
    return f"customer{i}@example.com"


def order_context(i: int) -> dict:
    """The JSON snapshot of order ``i``: 8 to 17 items (12.5 on average)."""
    items = [
        {
            "name": f"Product {k} & co",
            "variant": "large" if k % 2 else "",
            "sku": f"SKU-{10000 + k * 7}",
            "quantity": 1 + k % 3,
            "unit_price": f"{k * 3}.50",
            "price": f"{(1 + k % 3) * k * 3}.{50 * ((1 + k % 3) % 2):02d}",
            "image": f"https://cdn.example.com/p/{k}.jpg",
            "url": f"https://shop.example.com/p/{k}/",
            "seller": "Acme & Sons" if k % 4 else "Partner Store Ltd",
        }
        for k in range(1, 9 + i % 10)
    ]
    address = {
        "name": f"Customer {i}",
        "line1": f"{1 + i % 90} Rue de la République",
        "line2": "Bâtiment B" if i % 2 else "",
        "postcode": "69002",
        "city": "Lyon",
        "country": "France",
    }
    return {
        "customer": {"first_name": f"Customer {i}"},
        "order": {
            "number": 100000 + i,
            "date": "29 November 2026",
            "currency": "EUR",
            "subtotal": f"{len(items) * 21}.00",
            "shipping_cost": "4.90",
            "tax": f"{len(items) * 3}.50",
            "total": f"{len(items) * 21 + 4}.90",
            "url": f"https://shop.example.com/orders/{100000 + i}/",
            "delivery_method": "Standard delivery",
            "delivery_date": "3 December 2026",
            "payment": "Visa ending in 4242",
            "note": "Leave it with the neighbour" if i % 3 == 0 else "",
            "addresses": [address, address],
            "items": items,
        },
        "recommendations": [
            {
                "name": f"Recommended product {k}",
                "price": f"{k * 5}.00",
                "image": f"https://cdn.example.com/r/{k}.jpg",
                "url": f"https://shop.example.com/p/r{k}/",
            }
            for k in range(1, 7)
        ],
    }


# --- CPU time by process, from /proc ------------------------------------------------------

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, command name, CPU ticks), for every process on the machine.

    The ticks include the process's reaped children (cutime, cstime): PostgreSQL forks a
    backend per connection, and a backend that exited during a phase is only counted
    through its parent, the postmaster.
    """
    result = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                raw = stat.read()
        except OSError:  # exited meanwhile
            continue
        name_end = raw.rindex(b")")
        name = raw[raw.index(b"(") + 1 : name_end].decode(errors="replace")
        fields = raw[name_end + 2 :].split()  # fields[0] is field 3 of proc(5), the state
        ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        result[int(entry.name)] = (int(fields[1]), name, ticks)
    return result


CPU_COLUMNS = ["producer", "worker main", "worker pool", "PostgreSQL", "Redis"]


def cpu_snapshot(worker_pid: int | None = None) -> dict[str, float]:
    """CPU seconds used so far by the worker's processes, PostgreSQL and Redis.

    PostgreSQL and Redis are the whole servers: another client's work shows up here too.
    """
    seconds = dict.fromkeys(CPU_COLUMNS, 0.0)
    for pid, (parent, name, ticks) in _processes().items():
        if pid == worker_pid:
            seconds["worker main"] += ticks / TICKS_PER_SECOND
        elif worker_pid is not None and parent == worker_pid:
            seconds["worker pool"] += ticks / TICKS_PER_SECOND
        elif name == "postgres":
            seconds["PostgreSQL"] += ticks / TICKS_PER_SECOND
        elif name == "redis-server":
            seconds["Redis"] += ticks / TICKS_PER_SECOND
    return seconds


def background_load(seconds: float = 2.0) -> str:
    """What PostgreSQL and Redis use with nothing of ours running: other clients' noise."""
    before = cpu_snapshot()
    time.sleep(seconds)
    after = cpu_snapshot()
    return ", ".join(f"{name} {(after[name] - before[name]) * 100 / seconds:.0f}%"
                     for name in ("PostgreSQL", "Redis"))


def cpu_per_email(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
    """Milliseconds of CPU per email in each column between two snapshots."""
    return {column: (after[column] - before[column]) * 1000 / n for column in CPU_COLUMNS}


# --- A fake Postmark fast enough for thousands of emails per second -----------------------

# tests/esp_server.py's FakePostmark writes an answer's headers and body separately, so the
# body waits for the client's delayed ACK (~40 ms: 23 requests/s on one connection here),
# and it keeps every request: right for tests, not for this. This one
# answers Postmark's JSON in one write, keeps counts only, and runs in its own process.
_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")
_TO = re.compile(rb'"To": ?"((?:[^"\\]|\\.)*)"')  # the JSON string, still escaped


def _serve_fake_esp(port_pipe) -> None:
    counts = {"requests": 0, "messages": 0, "bytes": 0}
    recipients: set[bytes] = set()

    def accept(body: bytes) -> bytes:
        counts["requests"] += 1
        counts["bytes"] += len(body)
        answers = []
        for to in _TO.findall(body):
            counts["messages"] += 1
            recipients.add(to)
            answers.append(
                b'{"To": "%s", "SubmittedAt": "2026-11-29T10:00:00Z", "MessageID": '
                b'"bench-%d", "ErrorCode": 0, "Message": "OK"}' % (to, counts["messages"])
            )
        return b"[%s]" % b", ".join(answers) if body.startswith(b"[") else answers[0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:  # keep-alive: Anymail's requests session reuses its connection
                head = await reader.readuntil(_HEADER_END)
                length = _CONTENT_LENGTH.search(head)
                body = await reader.readexactly(int(length.group(1))) if length else b""
                if head.startswith(b"GET /stats"):
                    answer = json.dumps({**counts, "distinct": len(recipients)}).encode()
                elif head.startswith(b"POST /reset"):
                    counts.update(requests=0, messages=0, bytes=0)
                    recipients.clear()
                    answer = b"{}"
                else:  # POST /email or /email/batch
                    answer = accept(body)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
                )
                await writer.drain()
        writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_pipe.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(serve())


class FakeESP:
    """The fake Postmark's process, and a client for its counters."""

    def __init__(self) -> None:
        receiver, sender = multiprocessing.Pipe(duplex=False)
        self.process = multiprocessing.Process(
            target=_serve_fake_esp, args=(sender,), name="fake-postmark", daemon=True
        )
        self.process.start()
        port = receiver.recv()
        self.url = f"http://127.0.0.1:{port}/"
        self._http = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def _call(self, method: str, path: str) -> dict:
        self._http.request(method, path)
        return json.loads(self._http.getresponse().read())

    def stats(self) -> dict[str, int]:
        """requests, messages, bytes (of request bodies) and distinct recipients."""
        return self._call("GET", "/stats")

    def reset(self) -> None:
        self._call("POST", "/reset")

    def stop(self) -> None:
        self._http.close()
        self.process.terminate()
        self.process.join(5)


def wait_until_sent(n: int, esp: FakeESP, count_sent, what: str) -> float:
    """Wait until ``count_sent()`` (a database count) reaches ``n``; return when it did.

    The fake ESP's counter is polled first: the database is asked only once the ESP has
    taken ``n`` messages, so the polling adds next to nothing to PostgreSQL's CPU.
    """
    last_progress, last_change = None, time.monotonic()
    while True:
        messages = esp.stats()["messages"]
        sent = count_sent() if messages >= n else 0
        now = time.monotonic()
        if sent >= n:
            return now
        if (messages, sent) != last_progress:
            last_progress, last_change = (messages, sent), now
        elif now - last_change > STALL_SECONDS:
            raise BenchError(f"{what}: stuck for {STALL_SECONDS} s with {messages} of {n} "
                             f"messages at the ESP and {sent} sent in the database")
        time.sleep(0.02)


def wait_for_tasks(system, what: str) -> float:
    """Wait until the worker has taken every task off the queue; return how long it took.

    Both systems publish a task per email, and a task can send other emails than its own
    (a batch, post_office's whole queue): when the last email is sent, tasks that will
    find nothing to do may still be queued. Their cost is part of the system's, so a
    phase's CPU is read once they have run.
    """
    started = last_change = time.monotonic()
    last = system.queued_tasks()
    while last:
        time.sleep(0.05)
        queued, now = system.queued_tasks(), time.monotonic()
        if queued != last:
            last, last_change = queued, now
        elif now - last_change > STALL_SECONDS:
            raise BenchError(f"{what}: {queued} tasks left in the queue for {STALL_SECONDS} s")
    time.sleep(0.5)  # the tasks the worker took last (prefetched) finish
    return time.monotonic() - started


class BenchError(Exception):
    """A phase did not complete (a worker did not start, emails stopped moving)."""


# --- The ceiling: Anymail's own render + send, no database ---------------------------------


def _ceiling_process(indexes: range, document: str, barrier, results) -> None:
    from anymail.message import AnymailMessage
    from django.core.mail import get_connection
    from django.template import Context, Template

    subject, body, text = Template(SUBJECT), Template(document), Template(TEXT)
    contexts = [(i, order_context(i)) for i in indexes]  # as the worker reads them: ready
    connection = get_connection("anymail.backends.postmark.EmailBackend")
    connection.open()  # one connection (one requests session) for every email
    render = send = 0.0
    barrier.wait()
    for i, context in contexts:
        started = time.process_time()
        message = AnymailMessage(
            subject=subject.render(Context(context, autoescape=False)),
            body=text.render(Context(context, autoescape=False)),
            from_email=FROM_EMAIL,
            to=[recipient(i)],
            metadata={"order": str(i)},
        )
        message.attach_alternative(body.render(Context(context)), "text/html")
        rendered = time.process_time()
        connection.send_messages([message])
        render, send = render + rendered - started, send + time.process_time() - rendered
    connection.close()
    results.put((render, send))


def ceiling(n: int, document: str) -> dict:
    """Emails/s of 2 processes rendering and sending N emails, and their CPU per email."""
    barrier, results = multiprocessing.Barrier(3), multiprocessing.Queue()
    processes = [
        multiprocessing.Process(
            target=_ceiling_process, args=(range(k, n, 2), document, barrier, results)
        )
        for k in range(2)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.monotonic()
    cpu = [results.get(timeout=300) for _ in processes]
    elapsed = time.monotonic() - started
    for process in processes:
        process.join()
    return {
        "rate": n / elapsed,
        "render_ms": sum(render for render, _ in cpu) * 1000 / n,
        "send_ms": sum(send for _, send in cpu) * 1000 / n,
    }


# --- The two systems: this app on the test site, and django-post_office ------------------


class System:
    """What the phases need from a system: queue, deliver, count, clean up."""

    name: str

    def produce(self, n: int) -> dict:
        """Run the producer process: N emails, one transaction each; its timings."""
        result = subprocess.run(self.producer_argv(n), env=self.env, cwd=ROOT,
                                capture_output=True, text=True)
        if result.returncode:
            raise BenchError(f"{self.name}: the producer failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def producer_argv(self, n: int) -> list[str]:
        raise NotImplementedError

    def start_worker(self):
        raise NotImplementedError

    def count_sent(self) -> int:
        raise NotImplementedError

    def queued_tasks(self) -> int:
        """Tasks waiting in the broker's queue (a Redis list)."""
        return _redis(self.env["TM_TEST_BROKER"]).llen(self.queue)

    def clear(self) -> None:
        """Empty the outbox table and the broker queue."""
        raise NotImplementedError


def _redis(url: str):
    import redis

    return redis.Redis.from_url(url)


class App(System):
    """django-transactional-mail on the test site (tests/settings.py, tests/celery_app.py)."""

    name = "this app"

    def __init__(self, env: dict[str, str], profile_dir: Path | None) -> None:
        from django.db import connection

        from transactional_mail.models import Email, EmailStatus

        self.env, self.profile_dir, self.queue = env, profile_dir, env["TM_TEST_QUEUE"]
        self.email_model, self.sent, self.connection = Email, EmailStatus.SENT, connection

    def producer_argv(self, n: int) -> list[str]:
        return [sys.executable, __file__, "--produce", str(n)]

    def start_worker(self):
        from tests.workers import CeleryProcess, start_worker

        if self.profile_dir is None:
            return start_worker("bench-app", self.env, LOG_DIR, concurrency=2)
        # start_worker's command, under cProfile (see profiled_worker()).
        env = {**self.env, "BENCH_PROFILE_DIR": str(self.profile_dir)}
        argv = [
            sys.executable, __file__, "--profiled-worker", "-A", "tests.celery_app", "worker",
            "-P", "prefork", "-c", "2", "--loglevel", "INFO",
            "-n", f"bench-app.{env['TM_TEST_QUEUE']}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        worker = CeleryProcess("bench-app", argv, env, LOG_DIR / "bench-app.log")
        return worker.start(ready_text="ready.")

    def count_sent(self) -> int:
        return self.email_model.objects.filter(status=self.sent).count()

    def clear(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {self.email_model._meta.db_table} CASCADE")
        _redis(self.env["TM_TEST_BROKER"]).delete(self.queue)


class PostOffice(System):
    """django-post_office 3.12 in bench/.venv-peer, run by bench/peer_post_office.py."""

    name = "post_office"
    requirements = ("django-post-office==3.12.*",)

    def __init__(self, env: dict[str, str], postgres_url: str) -> None:
        self.python = self._virtualenv()
        self.env = {
            **env,
            # bench/ for peer_post_office, the checkout for its copy of tests.settings' CELERY_*
            "PYTHONPATH": os.pathsep.join([str(BENCH), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "peer_post_office",
            "BENCH_PEER_DB": PEER_DB_NAME,
            "BENCH_QUEUE": f"{env['TM_TEST_QUEUE']}-peer",
        }
        self.queue = self.env["BENCH_QUEUE"]
        subprocess.run([self.python, BENCH / "peer_post_office.py", "setup"], env=self.env,
                       cwd=ROOT, check=True, capture_output=True, text=True)
        import psycopg

        self.db = psycopg.connect(_postgres_dsn(postgres_url, PEER_DB_NAME), autocommit=True)

    def _virtualenv(self) -> Path:
        """bench/.venv-peer, created on the first run with this venv's Django and friends.

        Django, Celery, Anymail and psycopg are pinned to the versions this benchmark
        runs the app with, so the two systems differ only by what they do themselves.
        """
        from importlib.metadata import version

        wanted = "\n".join([
            *self.requirements,
            f"Django=={version('Django')}",
            f"celery[redis]=={version('celery')}",
            f"django-anymail=={version('django-anymail')}",
            f"psycopg[binary]=={version('psycopg')}",
        ])
        python, marker = PEER_VENV / "bin" / "python", PEER_VENV / "bench-requirements.txt"
        if not (python.exists() and marker.exists() and marker.read_text() == wanted):
            print(f"Installing django-post_office into {PEER_VENV.relative_to(ROOT)} ...",
                  flush=True)
            subprocess.run([sys.executable, "-m", "venv", PEER_VENV], check=True)
            subprocess.run(
                [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 *wanted.splitlines()],
                check=True, capture_output=True, text=True,
            )
            marker.write_text(wanted)
        return python

    def producer_argv(self, n: int) -> list[str]:
        return [str(self.python), str(BENCH / "peer_post_office.py"), "queue", str(n)]

    def start_worker(self):
        from tests.workers import CeleryProcess

        # The same command as tests/workers.py's start_worker, in the peer's virtualenv.
        argv = [
            str(self.python), "-m", "celery", "-A", "peer_post_office", "worker",
            "-P", "prefork", "-c", "2", "--loglevel", "INFO",
            "-n", f"bench-peer.{self.env['BENCH_QUEUE']}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        worker = CeleryProcess("bench-peer", argv, self.env, LOG_DIR / "bench-peer.log")
        return worker.start(ready_text="ready.")

    def count_sent(self) -> int:
        # post_office's STATUS.sent is 0
        return self.db.execute("SELECT count(*) FROM post_office_email WHERE status = 0"
                               ).fetchone()[0]

    def clear(self) -> None:
        self.db.execute("TRUNCATE post_office_email CASCADE")
        _redis(self.env["TM_TEST_BROKER"]).delete(self.queue)


# --- One repetition of one system ----------------------------------------------------------


def run_system(system: System, n: int, esp: FakeESP) -> dict[str, dict]:
    """Queueing with the worker stopped, the backlog drain, then end to end."""
    system.clear()
    esp.reset()
    before = cpu_snapshot()
    produced = system.produce(n)
    queueing = {
        "rate": n / (produced["end"] - produced["start"]),
        "cpu": {**cpu_per_email(before, cpu_snapshot(), n), "producer": produced["cpu"] * 1000 / n},
    }
    worker = system.start_worker()  # returns once the worker has logged "ready."
    try:
        pid = worker.proc.pid
        before, started = cpu_snapshot(pid), time.monotonic()
        done = wait_until_sent(n, esp, system.count_sent, f"{system.name}, backlog drain")
        tail = wait_for_tasks(system, f"{system.name}, backlog drain")
        drain = {"rate": n / (done - started), "cpu": cpu_per_email(before, cpu_snapshot(pid), n),
                 "esp": esp.stats(), "tail": tail}

        system.clear()
        esp.reset()
        before = cpu_snapshot(pid)
        produced = system.produce(n)
        done = wait_until_sent(n, esp, system.count_sent, f"{system.name}, end to end")
        tail = wait_for_tasks(system, f"{system.name}, end to end")
        # CLOCK_MONOTONIC is system-wide on Linux: the producer's clock is this one.
        end_to_end = {
            "rate": n / (done - produced["start"]),
            "cpu": {**cpu_per_email(before, cpu_snapshot(pid), n),
                    "producer": produced["cpu"] * 1000 / n},
            "esp": esp.stats(),
            "tail": tail,
        }
        result = {"queueing": queueing, "drain": drain, "end to end": end_to_end}
        if isinstance(system, App):
            result["task floor"] = task_floor(system, pid, n)
    finally:
        worker.stop()
    return result


def task_floor(system: App, worker_pid: int, n: int) -> dict:
    """N deliver tasks whose emails are gone, on the running worker: what Celery and the
    claim cost per task when there is nothing to send (every email's own task after a
    batch sent it, in the drain)."""
    from transactional_mail.tasks import enqueue_delivery

    system.clear()
    last = system.email_model.objects.order_by("-pk").values_list("pk", flat=True).first()
    missing = range((last or 0) + 1_000_000, (last or 0) + 1_000_000 + n)
    for email_id in missing:
        enqueue_delivery(email_id)
    before, started = cpu_snapshot(worker_pid), time.monotonic()
    while system.queued_tasks():
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # the tasks the worker took last finish
    return {"rate": n / elapsed, "cpu": cpu_per_email(before, cpu_snapshot(worker_pid), n)}


# --- The processes this script also runs as -------------------------------------------------


def produce(n: int) -> None:
    """The producer: queue N emails with send(), each in its own transaction, like views."""
    import django

    django.setup()
    from django.db import transaction

    import tests.celery_app  # noqa: F401 - the site's Celery app, as a project's __init__ does
    import transactional_mail

    contexts = [order_context(i) for i in range(n)]
    started, cpu = time.monotonic(), time.process_time()
    for i, context in enumerate(contexts):
        with transaction.atomic():
            transactional_mail.send("order_confirmation", recipient(i), context)
    print(json.dumps({"start": started, "end": time.monotonic(),
                      "cpu": time.process_time() - cpu}))


def profiled_worker(celery_args: list[str]) -> None:
    """``celery worker`` with cProfile in its main process and in each pool process.

    The pool processes are forked: each starts its own profiler when Celery initialises
    it and writes its statistics when the pool shuts it down (a warm shutdown).
    """
    import cProfile

    from celery.__main__ import main
    from celery.signals import worker_process_init, worker_process_shutdown

    directory = Path(os.environ["BENCH_PROFILE_DIR"])
    pool_profiler, main_profiler = cProfile.Profile(), cProfile.Profile()

    def start_pool_profile(**kwargs) -> None:
        main_profiler.disable()  # inherited from the fork, still running
        pool_profiler.enable()

    def save_pool_profile(**kwargs) -> None:
        pool_profiler.disable()
        pool_profiler.dump_stats(directory / f"pool-{os.getpid()}.prof")

    worker_process_init.connect(start_pool_profile, weak=False)
    worker_process_shutdown.connect(save_pool_profile, weak=False)
    sys.argv = ["celery", *celery_args]
    try:
        main_profiler.runcall(main)
    finally:
        main_profiler.dump_stats(directory / f"main-{os.getpid()}.prof")


def print_profile(directory: Path) -> None:
    import io
    import pstats

    for kind, sort, limit in (("pool", "cumulative", 30), ("main", "tottime", 12)):
        files = sorted(str(path) for path in directory.glob(f"{kind}-*.prof"))
        if not files:
            print(f"(no profile of the worker's {kind} processes was written)")
            continue
        out = io.StringIO()
        stats = pstats.Stats(*files, stream=out)
        stats.strip_dirs().sort_stats(sort).print_stats(limit)
        (LOG_DIR / f"profile-{kind}.txt").write_text(out.getvalue())
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        print(f"\nWorker {kind} process{'es' if kind == 'pool' else ''} under cProfile, by "
              f"{sort} wall time (waits for PostgreSQL included; {len(files)} file(s), "
              f"saved in {LOG_DIR / f'profile-{kind}.txt'}):")
        print("\n".join(lines[start : start + limit + 1]))


# --- Setting up and tearing down ------------------------------------------------------------


def _postgres_dsn(url: str, dbname: str) -> str:
    from urllib.parse import unquote

    from psycopg.conninfo import make_conninfo

    parts = urlsplit(url)
    return make_conninfo(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                         user=unquote(parts.username or "postgres"),
                         password=unquote(parts.password or ""), dbname=dbname)


def recreate_databases(postgres_url: str, names: tuple[str, ...], *, create: bool) -> None:
    """Drop the databases ``names`` on the server of ``postgres_url``, and create them
    empty when ``create`` (the benchmarks' own databases, never the tests')."""
    import psycopg

    admin_db = urlsplit(postgres_url).path.lstrip("/") or "postgres"
    with psycopg.connect(_postgres_dsn(postgres_url, admin_db), autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            if create:
                conn.execute(f"CREATE DATABASE {name}")


def _databases(postgres_url: str, *, create: bool) -> None:
    """Drop this benchmark's databases, and create them empty when ``create``."""
    recreate_databases(postgres_url, (DB_NAME, PEER_DB_NAME), create=create)


def setup_app_site() -> None:
    """Migrate the app's database and store the branded layout and the order template."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    from transactional_mail.models import EmailTemplate, Layout

    layout = Layout.objects.create(**branded_layout())
    layout.publish()
    EmailTemplate.objects.create(key="order_confirmation", subject=SUBJECT, html=CONTENT,
                                 text=TEXT, layout=layout).publish()


def worker_settings() -> list[str]:
    """The worker's settings that decide its cost per task, as the test site sets them."""
    from django.conf import settings

    from tests.celery_app import app

    # Celery's Django fix-up reads app.conf.get("CELERY_DB_REUSE_MAX"): the Django setting
    # CELERY_DB_REUSE_MAX; a CELERY_WORKER_DB_REUSE_MAX setting is not read by it.
    reuse = app.conf.get("CELERY_DB_REUSE_MAX")
    effect = ("" if reuse else ": the worker closes its database connection before and "
              "after every task")
    return [
        f"CELERY_DB_REUSE_MAX = {reuse!r}{effect}",
        f"worker_prefetch_multiplier = {app.conf.worker_prefetch_multiplier}, "
        f"task_acks_late = {app.conf.task_acks_late}, "
        f"CONN_MAX_AGE = {settings.DATABASES['default'].get('CONN_MAX_AGE', 0)}, "
        "pool prefork -c 2, --loglevel INFO",
        "producer: PUBLISH_IN_BACKGROUND = True (the app's default)",
    ]


def git_revision() -> str:
    result = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                            capture_output=True, text=True)
    return result.stdout.strip() or "not a git checkout"


# --- The report -------------------------------------------------------------------------------

PHASES = {
    "drain": "backlog drain (N queued, then the worker started)",
    "end to end": "end to end (producer queueing, worker delivering)",
    "queueing": "queueing (the producer alone, worker stopped)",
}


def _spread(values: list[float]) -> str:
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:,.0f}"
    return f"{median:,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def report(results: dict[str, list[dict]], ceilings: list[dict], skipped: str | None) -> bool:
    """Print the figures, the CPU split and the ratios; return True when targets hold."""
    names = list(results)
    print(f"\n{'emails/s: median (min-max)':<52}" + "".join(f"{name:>22}" for name in names))
    for phase, label in PHASES.items():
        cells = [_spread([run[phase]["rate"] for run in results[name]]) for name in names]
        print(f"{label:<52}" + "".join(f"{cell:>22}" for cell in cells))
    label = "ceiling: Anymail render + send, 2 processes, no DB"
    print(f"{label:<52}{_spread([run['rate'] for run in ceilings]):>22}")
    if skipped:
        print(f"post_office: skipped ({skipped})")

    def median(name: str, phase: str) -> float:
        return statistics.median(run[phase]["rate"] for run in results[name])

    ceiling_rate = statistics.median(run["rate"] for run in ceilings)
    ratios = [("backlog drain / ceiling", median("this app", "drain") / ceiling_rate,
               TARGET_CEILING)]
    if "post_office" in results:
        ratios += [
            ("end to end / post_office end to end",
             median("this app", "end to end") / median("post_office", "end to end"),
             TARGET_PEER),
            ("backlog drain / post_office backlog drain",
             median("this app", "drain") / median("post_office", "drain"), None),
            ("queueing / post_office queueing",
             median("this app", "queueing") / median("post_office", "queueing"), None),
        ]
    print("\nratios of the medians")
    met = True
    for label, ratio, target in ratios:
        verdict = ""
        if target is not None:
            met &= ratio >= target
            verdict = f"   target >= {target:g}  {'ok' if ratio >= target else 'MISSED'}"
        print(f"  {label:<44}{ratio:6.2f}x{verdict}")

    print(f"\nCPU per email, ms (median){'':<26}" + "".join(f"{c:>12}" for c in CPU_COLUMNS)
          + f"{'total':>9}")
    for name in names:
        for phase in PHASES:
            cpu = {column: statistics.median(run[phase]["cpu"][column] for run in results[name])
                   for column in CPU_COLUMNS}
            print(f"  {name + ', ' + phase:<50}"
                  + "".join(f"{cpu[c]:>12.2f}" for c in CPU_COLUMNS)
                  + f"{sum(cpu.values()):>9.2f}")
    render = statistics.median(run["render_ms"] for run in ceilings)
    send = statistics.median(run["send_ms"] for run in ceilings)
    print(f"  {'ceiling (in its 2 processes)':<50}  render {render:.2f} + send {send:.2f}"
          f" = {render + send:.2f}")
    print("  (PostgreSQL and Redis: the whole servers, every client's work included; the\n"
          "   producer's column is its own loop, queueing only)")

    floors = [run["task floor"] for run in results.get("this app", []) if "task floor" in run]
    if floors:
        cpu = {column: statistics.median(run["cpu"][column] for run in floors)
               for column in CPU_COLUMNS}
        print(f"  {'this app, a task with nothing to send (per task)':<50}"
              + "".join(f"{cpu[c]:>12.2f}" for c in CPU_COLUMNS) + f"{sum(cpu.values()):>9.2f}")
        print(f"  (Celery's floor: N deliver tasks whose emails are gone, "
              f"{_spread([run['rate'] for run in floors])} tasks/s)")

    print("\nafter the last email was sent, the worker ran the tasks left in the queue for "
          "(median s, in the CPU above, not in the rates):")
    for name in names:
        print(f"  {name}: " + ", ".join(
            f"{phase} {statistics.median(run[phase]['tail'] for run in results[name]):.1f}"
            for phase in ("drain", "end to end")))

    print("\nat the fake ESP")
    for name in names:
        stats = [run[phase]["esp"] for run in results[name] for phase in ("drain", "end to end")]
        size = statistics.median(s["bytes"] / max(1, s["requests"]) for s in stats) / 1024
        extra = max(s["messages"] - s["distinct"] for s in stats)
        print(f"  {name}: {size:.1f} KiB per request (JSON: HTML, text part, headers); "
              f"{'no email sent twice' if not extra else f'{extra} emails sent twice or more'}")
    return met


# --- Main -------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="End-to-end delivery throughput: a real worker, its ceiling, its peer.")
    parser.add_argument("-n", type=int, default=2000, help="emails per phase (2000)")
    parser.add_argument("--repetitions", "-r", type=int, default=3, help="interleaved (3)")
    parser.add_argument("--quick", action="store_true", help="N=300, one repetition")
    parser.add_argument("--no-peer", action="store_true", help="skip django-post_office")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile in the app's worker (slows it down; prints where)")
    parser.add_argument("--redis-db", type=int, default=11,
                        help="Redis database for the broker (11; the tests use 7 and 8)")
    args = parser.parse_args()
    if args.quick:
        args.n, args.repetitions = 300, 1
    return args


def services() -> tuple[str | None, str | None]:
    """The PostgreSQL and Redis URLs of the environment; when one is missing, say how to
    set them (the caller then exits with 2)."""
    postgres_url, redis_url = os.environ.get("TM_TEST_POSTGRES"), os.environ.get("TM_TEST_REDIS")
    if not (postgres_url and redis_url):
        print("Set TM_TEST_POSTGRES and TM_TEST_REDIS, e.g.\n"
              "  TM_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test\n"
              "  TM_TEST_REDIS=redis://127.0.0.1:6379/7")
    return postgres_url, redis_url


def main() -> int:
    args = parse_args()
    postgres_url, redis_url = services()
    if not (postgres_url and redis_url):
        return 2
    sys.path.insert(0, str(ROOT))
    broker = urlsplit(redis_url)._replace(path=f"/{args.redis_db}").geturl()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    profile_dir = None
    if args.profile:
        profile_dir = LOG_DIR / "profile"
        profile_dir.mkdir(exist_ok=True)
        for old in profile_dir.glob("*.prof"):
            old.unlink()

    esp = FakeESP()  # forked before Django is set up: the server process stays small
    os.environ.update(
        DJANGO_SETTINGS_MODULE="tests.settings",
        TM_TEST_DB_NAME=DB_NAME,
        TM_TEST_QUEUE=f"tm-bench-{os.getpid()}",  # a queue of its own on the broker
        TM_TEST_BROKER=broker,
        TM_ESP_URL=esp.url,
    )
    _databases(postgres_url, create=True)
    systems: list[System] = []
    try:
        setup_app_site()
        import transactional_mail
        from tests.workers import celery_env

        # The app's default publishing (tests/settings.py turns the thread off for tests).
        env = celery_env(broker_url=broker, db_name=DB_NAME, esp_url=esp.url,
                         mail_settings={"PUBLISH_IN_BACKGROUND": True})
        systems.append(App(env, profile_dir))
        skipped = "--no-peer" if args.no_peer else None
        if not args.no_peer:
            try:
                systems.append(PostOffice(env, postgres_url))
            except (OSError, subprocess.CalledProcessError) as err:
                output = getattr(err, "stderr", "") or ""
                skipped = f"could not be set up: {err} {output[-600:]}".strip()

        print(f"End-to-end delivery, N = {args.n}, {args.repetitions} interleaved "
              f"repetition(s), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        print(f"before the run, CPU of a core used by other clients: {background_load()}")
        print(f"code: {Path(transactional_mail.__file__).parent} at {git_revision()}")
        print("worker: celery -A tests.celery_app worker (the test site), PostgreSQL, Redis "
              f"db {args.redis_db}, Anymail's Postmark backend -> fake Postmark")
        for line in worker_settings():
            print(f"  {line}")
        if len(systems) > 1:
            print("post_office: its Celery task (send_queued_mail) on the same Celery "
                  "settings; its defaults (BATCH_SIZE 100, THREADS_PER_PROCESS 5, LOG_LEVEL "
                  "2); render_on_delivery=True, so its worker renders as this app's does")
        document = plain_document(branded_layout())
        results: dict[str, list[dict]] = {system.name: [] for system in systems}
        ceilings: list[dict] = []
        for repetition in range(args.repetitions):
            # Each repetition starts with another system, so none always runs first.
            order = [*systems, None]
            order = order[repetition % len(order) :] + order[: repetition % len(order)]
            for system in order:
                if system is None:
                    ceilings.append(ceiling(args.n, document))
                    print(f"  [{repetition + 1}] ceiling: {ceilings[-1]['rate']:,.0f}/s",
                          flush=True)
                    continue
                if system.name not in results:
                    continue  # the peer failed in an earlier repetition
                try:
                    run = run_system(system, args.n, esp)
                except (BenchError, RuntimeError, subprocess.CalledProcessError) as err:
                    if isinstance(system, App):
                        raise
                    skipped = f"failed: {err}"
                    del results[system.name]
                    continue
                results[system.name].append(run)
                print(f"  [{repetition + 1}] {system.name}: "
                      + ", ".join(f"{phase} {run[phase]['rate']:,.0f}/s" for phase in PHASES),
                      flush=True)
        met = report(results, ceilings, skipped)
        if profile_dir is not None:
            print_profile(profile_dir)
        print(f"\nafter the run, CPU of a core used by other clients: {background_load()} "
              "(more than a few %: the PostgreSQL and Redis columns include their work; run "
              f"again on a quiet machine)\nworker logs: {LOG_DIR}")
        return 0 if met else 1
    finally:
        esp.stop()
        from django.db import connections

        connections.close_all()
        for system in systems:
            if isinstance(system, PostOffice):
                system.db.close()
        queue = os.environ["TM_TEST_QUEUE"]
        with contextlib.suppress(Exception):
            _redis(broker).delete(queue, f"{queue}-peer")
        _databases(postgres_url, create=False)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--produce"]:
        sys.path.insert(0, str(ROOT))
        produce(int(sys.argv[2]))
    elif sys.argv[1:2] == ["--profiled-worker"]:
        sys.path.insert(0, str(ROOT))
        profiled_worker(sys.argv[2:])
    else:
        sys.exit(main())
