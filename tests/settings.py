"""Settings of the test site: the pytest process and the worker subprocesses it starts.

Everything that differs between the two comes from the environment:

``TM_TEST_POSTGRES``        ``postgres://user@host:port/db`` selects PostgreSQL (else SQLite).
``TM_TEST_DB_NAME``         connect straight to this database (the test database that
                            pytest-django created): set for worker subprocesses.
``TM_TEST_BROKER``          Celery broker URL (default ``memory://``).
``TM_TEST_QUEUE``           Celery's default queue: the pytest process's, for its workers.
``TM_ESP_URL``              where Anymail's Postmark backend posts (the fake ESP).
``TM_ESP_TIMEOUT``          Anymail's ``REQUESTS_TIMEOUT`` in seconds.
``TM_TEST_MAIL_SETTINGS``   JSON merged into ``TRANSACTIONAL_MAIL`` (small retry and sweep
                            delays for the integration workers).
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import django

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",  # live_server serves the admin's and the editor's files
    "anymail",
    "django_celery_beat",
    "transactional_mail",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

# django-allauth (the test extra installs it) for transactional_mail.allauth's tests:
# its apps and middleware, with its default adapter; the tests switch ACCOUNT_ADAPTER.
HAS_ALLAUTH = importlib.util.find_spec("allauth") is not None
if HAS_ALLAUTH:
    INSTALLED_APPS += ["allauth", "allauth.account"]
    MIDDLEWARE += ["allauth.account.middleware.AccountMiddleware"]
    AUTHENTICATION_BACKENDS = [
        "django.contrib.auth.backends.ModelBackend",
        "allauth.account.auth_backends.AuthenticationBackend",
    ]
    # Read when allauth's URLs load (once per process): its login-by-code view exists.
    ACCOUNT_LOGIN_BY_CODE_ENABLED = True

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Fast hashing: the admin tests create users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- Database -------------------------------------------------------------------------

_run_id = os.environ.get("TM_TEST_RUN_ID") or str(os.getpid())
_db_name_override = os.environ.get("TM_TEST_DB_NAME")
_postgres_url = os.environ.get("TM_TEST_POSTGRES")

if _postgres_url:
    _url = urlsplit(_postgres_url)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            # pytest-django creates TEST.NAME; a suffix per run lets runs (and engineers)
            # share one server without dropping each other's database.
            "NAME": _db_name_override or "tm",
            "USER": unquote(_url.username or "postgres"),
            "PASSWORD": unquote(_url.password or ""),
            "HOST": _url.hostname or "127.0.0.1",
            "PORT": str(_url.port or 5432),
            "TEST": {"NAME": f"test_tm_{_run_id}"},
        }
    }
else:
    _sqlite_options = {"timeout": 20}
    if django.VERSION >= (5, 1):
        # Without these, a task and a test that both write get "database is locked".
        _sqlite_options.update(
            transaction_mode="IMMEDIATE", init_command="PRAGMA journal_mode=WAL;"
        )
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _db_name_override or os.path.join(tempfile.gettempdir(), "tm-tests.sqlite3"),
            "OPTIONS": _sqlite_options,
            # A file (not :memory:) so a subprocess can open the same test database.
            "TEST": {"NAME": os.path.join(tempfile.gettempdir(), f"tm-test-{_run_id}.sqlite3")},
        }
    }


# --- Email: Anymail's real Postmark backend, pointed at the fake ESP ------------------

EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
DEFAULT_FROM_EMAIL = "Shop <shop@example.com>"
ANYMAIL = {
    "POSTMARK_SERVER_TOKEN": "test-token",
    "POSTMARK_API_URL": os.environ.get("TM_ESP_URL") or "http://127.0.0.1:9/",
    "WEBHOOK_SECRET": "hook:secret",
    "REQUESTS_TIMEOUT": float(os.environ.get("TM_ESP_TIMEOUT") or 30),
}


# --- Celery: always on, never eager ----------------------------------------------------

CELERY_BROKER_URL = os.environ.get("TM_TEST_BROKER") or "memory://"
# A queue per test run: test sessions running at once on one Redis or RabbitMQ (two
# engineers, two Django versions) never take each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("TM_TEST_QUEUE") or f"tm-tests-{_run_id}"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Reuse the worker's database connection across tasks (Celery closes it around every task
# otherwise): what docs/deployment.md recommends.
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


# --- The app under test ------------------------------------------------------------------

TRANSACTIONAL_MAIL = {
    "DEFAULT_FROM_EMAIL": "Shop <shop@example.com>",
    # Tests read what was published right after the commit; tests/test_background_publish.py
    # and the integration tests that need it turn the thread on.
    "PUBLISH_IN_BACKGROUND": False,
    **json.loads(os.environ.get("TM_TEST_MAIL_SETTINGS") or "{}"),
}
