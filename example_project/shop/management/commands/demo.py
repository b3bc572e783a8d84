"""``manage.py demo``: set up the demo shop and run everything it needs.

Migrates, creates the admin user (admin / admin), installs the app's starter templates
(``install_starter_templates``' installer, every language), brands their layout and seeds
the customers, then runs as child processes: the fake ESP, a Celery worker with beat inside
it (-B, DatabaseScheduler) and the development server. Ctrl-C stops them all.

The children get ``SHOP_REVIEW_DELAY`` (``--review-delay``, 30s by default) so that the
review request, a trigger delayed by 7 days in a real shop, arrives while you watch; and
``SHOP_DIGEST_WINDOW`` (``--digest-window``, 2m by default) so that a comment digest, an
hour's window in a real shop, closes while you watch too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from shop.demo_data import seed

PROJECT_DIR = Path(__file__).resolve().parents[3]  # example_project/
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"  # demo only: say so wherever it is printed
#: The review request's delay in the demo (the settings' default, for a real shop, is 7d).
DEMO_REVIEW_DELAY = "30s"
#: The comment digest's window in the demo (the settings' default is 1h).
DEMO_DIGEST_WINDOW = "2m"


class Command(BaseCommand):
    help = (
        "Migrate, create the admin user (admin / admin), seed demo data, then run the web "
        "server, the fake ESP and a Celery worker with beat until Ctrl-C."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--setup-only",
            action="store_true",
            help="Migrate and seed, then exit without starting any process.",
        )
        parser.add_argument(
            "--review-delay",
            default=os.environ.get("SHOP_REVIEW_DELAY", DEMO_REVIEW_DELAY),
            help="How long after delivery the review request goes out, e.g. 30s, 2m, 7d "
            f"(default: $SHOP_REVIEW_DELAY, else {DEMO_REVIEW_DELAY}: short, so that you "
            "see it arrive; a real shop waits 7d).",
        )
        parser.add_argument(
            "--digest-window",
            default=os.environ.get("SHOP_DIGEST_WINDOW", DEMO_DIGEST_WINDOW),
            help="How long the comment digest gathers comments after the first, e.g. 2m, "
            f"1h (default: $SHOP_DIGEST_WINDOW, else {DEMO_DIGEST_WINDOW}; a shop would "
            "use 1h).",
        )

    def handle(self, *args, **options):
        from transactional_mail.api import parse_delay
        from transactional_mail.exceptions import InvalidEmailOption

        for option in ("review_delay", "digest_window"):
            try:
                parse_delay(options[option])
            except InvalidEmailOption as err:
                raise CommandError(f"--{option.replace('_', '-')}: {err}") from err
        self.review_delay = options["review_delay"]
        self.digest_window = options["digest_window"]
        self.setup()
        if options["setup_only"]:
            return
        self.run_processes()

    # -- setup ----------------------------------------------------------------------------
    def setup(self) -> None:
        self.stdout.write("Migrating the database...")
        call_command("migrate", interactive=False, verbosity=0)
        User = get_user_model()
        if not User.objects.filter(username=ADMIN_USERNAME).exists():
            User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", ADMIN_PASSWORD)
            self.stdout.write(f"Created the superuser {ADMIN_USERNAME} / {ADMIN_PASSWORD}.")
        created = seed()
        if created:
            self.stdout.write("Seeded: " + ", ".join(created) + ".")

    # -- processes ------------------------------------------------------------------------
    def run_processes(self) -> None:
        host, port, esp_port = settings.SHOP_HOST, settings.SHOP_PORT, settings.FAKE_ESP_PORT
        wanted = [(host, port, "SHOP_PORT")]
        if settings.FAKE_ESP:
            wanted.append(("127.0.0.1", esp_port, "FAKE_ESP_PORT"))
        for bind_host, bind_port, variable in wanted:
            if port_in_use(bind_host, bind_port):
                raise CommandError(
                    f"{bind_host}:{bind_port} is already in use. Stop what listens there, "
                    f"or choose another port with the {variable} environment variable."
                )

        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            # Read by the settings of the web server (which queues the review request)
            # and of the worker (which re-checks the trigger when it is due).
            "SHOP_REVIEW_DELAY": self.review_delay,
            "SHOP_DIGEST_WINDOW": self.digest_window,
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "DJANGO_SETTINGS_MODULE", "shop_site.settings"
            ),
            # The children import shop_site (cwd) and transactional_mail (installed, or the
            # checkout next to example_project/).
            "PYTHONPATH": os.pathsep.join(
                [str(PROJECT_DIR), str(PROJECT_DIR.parent)]
                + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            ),
        }
        python = sys.executable
        commands = []
        if settings.FAKE_ESP:
            secret = settings.ANYMAIL.get("WEBHOOK_SECRET") or ""
            commands.append(
                (
                    "esp",
                    [
                        python,
                        str(PROJECT_DIR / "fake_esp.py"),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(esp_port),
                        "--store",
                        str(settings.DATA_DIR / "fake_esp.json"),
                        "--token",
                        settings.ANYMAIL["POSTMARK_SERVER_TOKEN"],
                        "--webhook-url",
                        f"{settings.SHOP_BASE_URL}/anymail/postmark/tracking/",
                        "--webhook-secret",
                        secret if isinstance(secret, str) else secret[0],
                        "--site-url",
                        f"{settings.SHOP_BASE_URL}/",
                    ],
                )
            )
        commands.append(
            (
                "worker",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "shop_site",
                    "worker",
                    "-B",
                    "--scheduler",
                    "django_celery_beat.schedulers:DatabaseScheduler",
                    "-P",
                    "prefork",
                    "-c",
                    "2",
                    "-l",
                    "info",
                ],
            )
        )
        commands.append(
            (
                "web",
                [
                    python,
                    str(PROJECT_DIR / "manage.py"),
                    "runserver",
                    f"{host}:{port}",
                    "--noreload",
                ],
            )
        )

        supervisor = Supervisor(self.stdout)
        stop = threading.Event()

        def request_stop(signum, frame):
            stop.set()

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for name, command in commands:
                supervisor.start(name, command, env=env, cwd=PROJECT_DIR)
            if settings.FAKE_ESP:
                wait_for_http(f"http://127.0.0.1:{esp_port}/", stop, supervisor)
            wait_for_http(f"{settings.SHOP_BASE_URL}/", stop, supervisor)
            if not stop.is_set() and supervisor.all_running():
                self.banner()
            while not stop.is_set():
                dead = supervisor.first_exited()
                if dead:
                    self.stderr.write(f"The {dead} process stopped; stopping the others.")
                    break
                stop.wait(0.5)
        finally:
            self.stdout.write("Stopping...")
            supervisor.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stdout.write("Stopped.")

    def banner(self) -> None:
        base = settings.SHOP_BASE_URL
        lines = [
            "",
            "The demo shop is running:",
            f"  Shop:        {base}/",
            f"  Admin:       {base}/admin/   login: {ADMIN_USERNAME} / {ADMIN_PASSWORD} "
            "(demo only)",
        ]
        if settings.FAKE_ESP:
            lines.append(
                f"  ESP inbox:   http://127.0.0.1:{settings.FAKE_ESP_PORT}/   "
                "(the fake ESP that receives every email)"
            )
        else:
            lines.append(f"  Email:       {settings.EMAIL_BACKEND} (a real ESP)")
        lines += [
            f"  Triggers:    {len(settings.TRANSACTIONAL_MAIL.get('TRIGGERS', {}))} in "
            "TRANSACTIONAL_MAIL['TRIGGERS']; switch them off in the admin (Triggers)",
            f"  Reviews:     the review request goes out {self.review_delay} after an order "
            "is marked delivered (--review-delay / SHOP_REVIEW_DELAY; a shop would use 7d)",
            f"  Comments:    a comment's first email goes out at once, the next ones in one "
            f"digest after {self.digest_window} (--digest-window; a shop would use 1h)",
            f"  Report:      staff get the weekly order report Mondays 08:00 "
            f"{settings.SHOP_TIME_ZONE}; now: python example_project/manage.py run_schedule "
            "weekly_order_report (or Admin > Periodic tasks > Run selected tasks)",
            f"  Broker:      {settings.CELERY_BROKER_URL.split('@')[-1]}",
            f"  Data:        {settings.DATA_DIR}",
            "Press Ctrl-C to stop everything.",
            "",
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))


class Supervisor:
    """Child processes, each in its own session, with their output prefixed by name."""

    def __init__(self, stdout):
        self.stdout = stdout
        self.processes: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()

    def start(self, name: str, command: list[str], **kwargs) -> None:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own session: Ctrl-C reaches only this command, which stops the children in
            # order (the worker gets a warm shutdown and finishes its current task).
            start_new_session=True,
            **kwargs,
        )
        self.processes[name] = process
        threading.Thread(target=self._copy_output, args=(name, process), daemon=True).start()

    def _copy_output(self, name: str, process: subprocess.Popen) -> None:
        prefix = f"[{name:>6}] "
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.lock:
                sys.stdout.write(prefix + line + "\n")
                sys.stdout.flush()

    def all_running(self) -> bool:
        return all(process.poll() is None for process in self.processes.values())

    def first_exited(self) -> str | None:
        return next((n for n, p in self.processes.items() if p.poll() is not None), None)

    def stop_all(self, timeout: float = 15) -> None:
        # The web server first (no new emails), then the worker, then the ESP.
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                # The main process only: a Celery worker then stops its pool itself,
                # after the tasks in progress finish (warm shutdown).
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            # Whatever is left, including the worker's pool processes.
            signal_group(process, signal.SIGKILL)
            process.wait()


def signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # the child leads its own process group


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for_http(url: str, stop: threading.Event, supervisor: Supervisor, timeout=60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if supervisor.first_exited():
            return
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            stop.wait(0.2)
    if not stop.is_set():
        raise CommandError(f"{url} did not answer within {timeout} s.")
