"""Real services for the integration tests: PostgreSQL, Redis, RabbitMQ, celery workers.

They run when the environment names the services (``.ci/run`` does)::

    TM_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test
    TM_TEST_REDIS=redis://127.0.0.1:6379/7
    TM_TEST_RABBITMQ=amqp://guest:guest@127.0.0.1:5672//

Otherwise they skip with a one-line reason, except under ``CI=true``, where a missing
service is an error: in CI these tests must run.

Worker subprocesses are started once per session and broker and shared by the tests;
each test starts with an empty queue and a reset fake ESP. Tests that kill workers or
need a worker of their own start it with ``spawn_worker`` (on a scratch Redis database,
so the shared worker cannot take their tasks).
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from tests.celery_app import app as celery_app
from tests.integration.helpers import WORKER_ESP_TIMEOUT, WORKER_MAIL_SETTINGS
from tests.workers import celery_env, log_dir, start_beat, start_worker

SERVICES = {
    "PostgreSQL": "TM_TEST_POSTGRES",
    "Redis": "TM_TEST_REDIS",
    "RabbitMQ": "TM_TEST_RABBITMQ",
}

#: Where the test process publishes when no broker fixture is active (tests/settings.py).
DEFAULT_BROKER = settings.CELERY_BROKER_URL
#: A broker nobody listens on: publishing fails at once (connection refused).
DEAD_BROKER = "redis://127.0.0.1:1/0"


def _missing_services() -> list[str]:
    return [f"{name} ({var})" for name, var in SERVICES.items() if not os.environ.get(var)]


def pytest_collection_modifyitems(config, items):
    missing = _missing_services()
    if not missing or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason=f"needs {', '.join(missing)}; .ci/run sets them")
    for item in items:
        if item.get_closest_marker("integration"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def services():
    """The service URLs; a hard failure under CI=true when one is missing."""
    missing = _missing_services()
    if missing:
        message = f"integration tests need {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {message} (see .ci/run)", pytrace=False)
        pytest.skip(message)
    if connection.vendor != "postgresql":
        pytest.fail(
            "integration tests run on PostgreSQL: TM_TEST_POSTGRES is set but the "
            f"default database is {connection.vendor}",
            pytrace=False,
        )
    for var in SERVICES.values():
        _check_reachable(var, os.environ[var])
    redis_url = os.environ["TM_TEST_REDIS"]
    yield {
        "redis": redis_url,
        "redis-scratch": _next_redis_db(redis_url),
        "rabbitmq": os.environ["TM_TEST_RABBITMQ"],
    }
    # RabbitMQ keeps a durable queue after its last consumer left: drop this run's.
    with celery_app.connection_for_write(os.environ["TM_TEST_RABBITMQ"]) as conn:
        conn.default_channel.queue_delete(settings.CELERY_TASK_DEFAULT_QUEUE)


def _check_reachable(var: str, url: str) -> None:
    """Fail at once, naming the variable, when nothing listens where it points."""
    parts = urlsplit(url)
    default_port = {"postgres": 5432, "postgresql": 5432, "redis": 6379, "amqp": 5672}
    address = (parts.hostname or "127.0.0.1", parts.port or default_port.get(parts.scheme, 0))
    try:
        socket.create_connection(address, timeout=3).close()
    except OSError as err:
        pytest.fail(
            f"{var}={url}: cannot connect to {address[0]}:{address[1]} ({err})", pytrace=False
        )


def _next_redis_db(url: str) -> str:
    base, _, db = url.rstrip("/").rpartition("/")
    if not db.isdigit():
        return url.rstrip("/") + "/1"
    return f"{base}/{(int(db) + 1) % 16}"


@pytest.fixture(scope="session")
def test_db_name(services, django_db_setup):
    """The name of the test database pytest-django created (the workers connect to it)."""
    return connection.settings_dict["NAME"]


@pytest.fixture(scope="session")
def process_logs():
    """The folder of this run's worker and beat logs: build/celery-logs/<queue>/."""
    return log_dir()


@pytest.fixture(scope="session")
def make_env(services, test_db_name, esp_server):
    def make(broker: str, esp_timeout: float = WORKER_ESP_TIMEOUT, **mail_settings):
        return celery_env(
            broker_url=services[broker],
            db_name=test_db_name,
            esp_url=esp_server.url,
            mail_settings={**WORKER_MAIL_SETTINGS, **mail_settings},
            esp_timeout=esp_timeout,
        )

    return make


@pytest.fixture(scope="session")
def shared_workers(make_env, process_logs):
    """One long-lived prefork worker per broker, started the first time a test needs it."""
    workers = {}

    def get(broker: str):
        if broker not in workers or not workers[broker].alive:
            workers[broker] = start_worker(f"shared-{broker}", make_env(broker), process_logs)
        return workers[broker]

    yield get
    for worker in workers.values():
        worker.stop()


@pytest.fixture
def spawn_worker(make_env, process_logs):
    """Start extra workers for one test; all are stopped at its end."""
    started = []

    def spawn(
        broker: str = "redis-scratch", name: str | None = None, env: dict | None = None, **kwargs
    ):
        name = name or f"worker{len(started) + 1}-{broker}"
        worker = start_worker(name, env or make_env(broker), process_logs, **kwargs)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.stop()


@pytest.fixture
def spawn_beat(make_env, process_logs):
    started = []

    def spawn(broker: str = "redis"):
        beat = start_beat(f"beat-{broker}", make_env(broker), process_logs)
        started.append(beat)
        return beat

    yield spawn
    for beat in started:
        beat.stop()


def point_app_at(url: str) -> None:
    """Make the test process's Celery app publish to ``url`` from now on."""
    celery_app.conf.broker_url = url
    # Kombu keeps one pool per broker URL for the process (never closed here, since
    # switching back to a URL reuses its pool); the app only caches which one it uses.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def purge(url: str) -> None:
    """Empty this run's task queue on a broker (other runs' queues are left alone)."""
    with celery_app.connection_for_write(url) as conn:
        celery_app.amqp.TaskConsumer(conn).purge()


class BrokerSwitch:
    """The broker the test process publishes to, switchable within a test."""

    def __init__(self, services):
        self.services = services
        self.name = None

    def use(self, name: str) -> str:
        """Publish to this broker (a key of ``services``, or a URL)."""
        url = self.services.get(name, name)
        point_app_at(url)
        self.name = name
        return url

    def down(self) -> None:
        """From now on every publish from this process fails: the broker is unreachable.

        For the rest of the test, not just a block: a publish the app defers (a thread, a
        retry) must not reach a live broker later. Use ``send_task`` to reach the workers.
        """
        self.use(DEAD_BROKER)


@pytest.fixture
def broker_switch(services):
    switch = BrokerSwitch(services)
    yield switch
    point_app_at(DEFAULT_BROKER)


@pytest.fixture(scope="session")
def send_task(services):
    """Send a task by name to a broker, from an app of its own (not the site's app)."""
    senders = {}

    def send(broker: str, name: str, *args):
        if broker not in senders:
            senders[broker] = Celery(
                f"sender-{broker}", broker=services[broker], set_as_current=False
            )
            senders[broker].conf.task_default_queue = settings.CELERY_TASK_DEFAULT_QUEUE
        senders[broker].send_task(name, args=args)

    yield send
    for sender in senders.values():
        sender.close()


@pytest.fixture
def redis_worker(services, shared_workers, broker_switch):
    """The shared Redis worker, an empty Redis queue, the test process publishing to it."""
    purge(services["redis"])
    broker_switch.use("redis")
    return shared_workers("redis")


@pytest.fixture(params=["redis", "rabbitmq"])
def any_broker_worker(request, services, shared_workers, broker_switch):
    """The shared worker of each broker in turn (the test runs once per broker)."""
    purge(services[request.param])
    broker_switch.use(request.param)
    return shared_workers(request.param)


@pytest.fixture
def scratch_broker(services, broker_switch):
    """The scratch Redis database, empty, with the test process publishing to it."""
    purge(services["redis-scratch"])
    broker_switch.use("redis-scratch")
    yield services["redis-scratch"]
    purge(services["redis-scratch"])


@pytest.fixture
def welcome_template(db):
    """A layout with CSS and a template that uses the context."""
    from transactional_mail.models import EmailTemplate, Layout

    layout = Layout.objects.create(
        name="Brand",
        html=(
            "<!DOCTYPE html><html><head><title>Shop</title></head><body>"
            '<div class="box">{{ content }}</div></body></html>'
        ),
        css=".box { color: #123456; }",
    )
    layout.publish()
    template = EmailTemplate.objects.create(
        key="welcome",
        subject="Welcome, {{ name }}",
        html="<h1>Hello {{ name }}</h1><p>Order {{ order.number }}</p>",
        layout=layout,
    )
    template.publish()
    return template
