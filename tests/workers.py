"""Real ``celery worker`` and ``celery beat`` subprocesses for the integration tests.

A pytest plugin (tests/conftest.py loads it): the helpers start the processes in their own
process group with the test site's settings and the test database, wait until they are
ready, and kill the whole group on teardown. When a test fails, the log lines every
running process wrote during that test are appended to the report.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Processes alive now, and those stopped during the current test: for failure reports.
_running: list[CeleryProcess] = []
_stopped: list[CeleryProcess] = []


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 30,
    interval: float = 0.1,
    message: str | Callable[[], str] = "condition",
) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Fails the test after ``timeout`` seconds, with ``message`` (a string, or a callable
    that describes the state at that moment).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            pytest.fail(f"timed out after {timeout:g}s waiting for: {text}")
        time.sleep(interval)


class CeleryProcess:
    """One ``celery worker`` or ``celery beat`` subprocess (and its children)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._mark = 0

    def start(self, ready_text: str | None, timeout: float = 60) -> CeleryProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the subprocess
        self._mark = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            self.argv,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: killpg takes the children too
        )
        log.close()
        _running.append(self)
        if ready_text:
            deadline = time.monotonic() + timeout
            while ready_text not in self.log_since(self._mark):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    output = self.log_since(self._mark)
                    self.stop()
                    raise RuntimeError(f"{self.name} did not start:\n{output}")
                time.sleep(0.1)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group at once, and reap the parent."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        if sig == signal.SIGKILL:
            self.proc.wait(10)

    def stop(self, timeout: float = 10) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL whatever is left of the group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # pool children left behind, if any
        if self.proc.poll() is None:
            self.proc.wait(10)
        if self in _running:
            _running.remove(self)
            _stopped.append(self)

    def log_since(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def mark(self) -> None:
        """Start of the current test's part of the log."""
        try:
            self._mark = self.log_path.stat().st_size
        except FileNotFoundError:
            self._mark = 0

    @property
    def test_log(self) -> str:
        return self.log_since(self._mark)


def celery_env(
    *,
    broker_url: str,
    db_name: str,
    esp_url: str,
    mail_settings: dict | None = None,
    esp_timeout: float | None = None,
) -> dict[str, str]:
    """The environment of a worker or beat subprocess running the test site.

    It uses this process's Celery queue, so that it only takes this test run's tasks.
    """
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        TM_TEST_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        TM_TEST_DB_NAME=db_name,
        TM_TEST_BROKER=broker_url,
        TM_ESP_URL=esp_url,
        TM_TEST_MAIL_SETTINGS=json.dumps(mail_settings or {}),
        PYTHONUNBUFFERED="1",
    )
    if esp_timeout is not None:
        env["TM_ESP_TIMEOUT"] = str(esp_timeout)
    return env


def start_worker(
    name: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    concurrency: int = 2,
    beat: bool = False,
) -> CeleryProcess:
    """Start ``celery -A tests.celery_app worker -P prefork`` and wait for "ready."."""
    # The node name is unique per test run: RabbitMQ allows one consumer per node's
    # remote-control queue, and another run may have a worker of the same name.
    node = f"{name}.{env['TM_TEST_QUEUE']}@%h"
    argv = [
        sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker",
        "-P", "prefork", "-c", str(concurrency), "--loglevel", "INFO",
        "-n", node, "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    if beat:
        argv += ["-B", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
    worker = CeleryProcess(name, argv, env, log_dir / f"{name}.log")
    return worker.start(ready_text="ready.")


def start_beat(name: str, env: dict[str, str], log_dir: Path) -> CeleryProcess:
    """Start ``celery beat`` with django-celery-beat's DatabaseScheduler."""
    argv = [
        sys.executable, "-m", "celery", "-A", "tests.celery_app", "beat",
        "--loglevel", "INFO",
        "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
        "--pidfile", "",
    ]  # fmt: skip
    beat = CeleryProcess(name, argv, env, log_dir / f"{name}.log")
    return beat.start(ready_text="beat: Starting...")


def log_dir() -> Path:
    """Where this test run's worker and beat logs go (kept after the run, for reading)."""
    from django.conf import settings

    path = REPO_ROOT / "build" / "celery-logs" / settings.CELERY_TASK_DEFAULT_QUEUE
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _mark_process_logs():
    _stopped.clear()
    for process in _running:
        process.mark()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for process in [*_running, *_stopped]:
            text = process.test_log[-20000:]
            report.sections.append((f"{process.name} log ({process.log_path})", text))
