"""Settings of the demo shop.

Embedded defaults, so ``python example_project/manage.py demo`` runs on a fresh machine:
SQLite and Kombu's filesystem broker under ``example_project/.data/``, and Anymail's
Postmark backend pointed at the local fake ESP (``example_project/fake_esp.py``).
The environment variables read below switch each part to a real service.
"""

from __future__ import annotations

import os
from pathlib import Path

import django
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("SHOP_DATA_DIR", BASE_DIR / ".data")).resolve()


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Demo values: set DJANGO_SECRET_KEY and DJANGO_DEBUG=0 anywhere else.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-secret-key-change-me")
DEBUG = env_flag("DJANGO_DEBUG", True)
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"] + [
    host for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host
]

#: Where the demo's services listen; the demo command and the fake ESP read these too.
SHOP_HOST = os.environ.get("SHOP_HOST", "127.0.0.1")
SHOP_PORT = int(os.environ.get("SHOP_PORT", "8000"))
FAKE_ESP_PORT = int(os.environ.get("FAKE_ESP_PORT", "8025"))
SHOP_BASE_URL = os.environ.get("SHOP_BASE_URL", f"http://{SHOP_HOST}:{SHOP_PORT}")
#: How long after delivery the review request goes out: "7d" in a shop; the demo
#: command sets "30s" (its --review-delay option) so that a visitor sees it arrive.
SHOP_REVIEW_DELAY = os.environ.get("SHOP_REVIEW_DELAY", "7d")
#: How long the comment digest gathers comments after the first (which goes out at once):
#: "1h" in a shop; the demo command sets "2m" (its --digest-window option).
SHOP_DIGEST_WINDOW = os.environ.get("SHOP_DIGEST_WINDOW", "1h")
#: The shop's time zone: the weekly report's Monday 08:00, and the customers' quiet hours.
SHOP_TIME_ZONE = os.environ.get("SHOP_TIME_ZONE", "America/Chicago")
#: When comment notifications wait for morning, in the shop's zone ("" for never).
SHOP_QUIET_HOURS = os.environ.get("SHOP_QUIET_HOURS", "21:00-08:00")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "anymail",
    "django_celery_beat",
    "transactional_mail",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shop_site.urls"
WSGI_APPLICATION = "shop_site.wsgi.application"

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

# --- Database -----------------------------------------------------------------------------
# SQLite for the demo. The web server, the worker and beat write to it concurrently:
# IMMEDIATE transactions, a busy timeout and WAL avoid "database is locked" (Django >= 5.1
# supports these OPTIONS; 4.2 gets the timeout only). Use PostgreSQL in production.
DATA_DIR.mkdir(parents=True, exist_ok=True)
if django.VERSION >= (5, 1):
    SQLITE_OPTIONS = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL;",
    }
else:  # pragma: no cover - Django 4.2
    SQLITE_OPTIONS = {"timeout": 20}

if os.environ.get("POSTGRES_DB"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["POSTGRES_DB"],
            "USER": os.environ.get("POSTGRES_USER", ""),
            "PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
            "HOST": os.environ.get("POSTGRES_HOST", "127.0.0.1"),
            "PORT": os.environ.get("POSTGRES_PORT", "5432"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            "OPTIONS": SQLITE_OPTIONS,
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = []  # the demo's admin password is "admin"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# --- Celery (the site's app is shop_site/celery.py) ---------------------------------------
# Default: Kombu's filesystem transport, which needs no server. Set CELERY_BROKER_URL to
# redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672// for a real broker.
# "localhost" means nothing to this transport; naming it silences a Kombu warning.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    BROKER_DIR = DATA_DIR / "broker"
    _broker_folders = {
        "data_folder_in": BROKER_DIR / "queue",
        "data_folder_out": BROKER_DIR / "queue",  # in == out: one shared mailbox folder
        "control_folder": BROKER_DIR / "control",
        "processed_folder": BROKER_DIR / "processed",
    }
    for _folder in _broker_folders.values():
        _folder.mkdir(parents=True, exist_ok=True)
    # Kombu's transport, but a message is written in full before a worker can see it
    # (shop_site/broker.py: without it, a worker could read a half-written message).
    CELERY_BROKER_TRANSPORT = "shop_site.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **{name: str(folder) for name, folder in _broker_folders.items()},
        "store_processed": False,
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # Longer than any countdown the app hands the broker (TRANSACTIONAL_MAIL MAX_COUNTDOWN).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_IGNORE_RESULT = True
# Reuse the worker's database connection across tasks (see docs/deployment.md).
CELERY_DB_REUSE_MAX = 1000
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Email --------------------------------------------------------------------------------
# Any Anymail backend (or any Django email backend) works: set EMAIL_BACKEND, and pass ESP
# settings as ANYMAIL_<NAME> environment variables, which land in ANYMAIL["<NAME>"]
# (e.g. ANYMAIL_MAILGUN_API_KEY -> ANYMAIL["MAILGUN_API_KEY"]). Without either, the demo
# sends through Anymail's real Postmark backend to the local fake ESP.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "anymail.backends.postmark.EmailBackend")
ANYMAIL = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_") and value
}
if os.environ.get("POSTMARK_SERVER_TOKEN"):
    # A real Postmark server: nothing else to set.
    ANYMAIL.setdefault("POSTMARK_SERVER_TOKEN", os.environ["POSTMARK_SERVER_TOKEN"])
    FAKE_ESP = False
else:
    FAKE_ESP = EMAIL_BACKEND == "anymail.backends.postmark.EmailBackend"
if FAKE_ESP:
    ANYMAIL.setdefault("POSTMARK_SERVER_TOKEN", "fake-esp-token")
    ANYMAIL.setdefault("POSTMARK_API_URL", f"http://127.0.0.1:{FAKE_ESP_PORT}/")
# Basic-auth credentials ESPs must send to /anymail/<esp>/tracking/ (demo value).
ANYMAIL.setdefault("WEBHOOK_SECRET", "demo:demo-webhook-secret")

DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Demo Shop <shop@example.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

TRANSACTIONAL_MAIL = {
    "DEFAULT_FROM_EMAIL": os.environ.get(
        "TRANSACTIONAL_MAIL_FROM", "Demo Shop <orders@example.com>"
    ),
    # The default, spelled out: after a commit, a thread of the web process publishes the
    # delivery tasks (emails of requests close together share one), so the request does
    # not wait for the broker (docs/statuses-and-outbox.md#publishing-in-the-background).
    "PUBLISH_IN_BACKGROUND": True,
    # Django's PasswordResetView (/accounts/password_reset/) sends its email through the
    # outbox with transactional_mail.auth.PasswordResetForm; the shop's own form uses it too.
    "USE_PASSWORD_RESET_FORM": True,
    # ... in the language of the customer the account belongs to.
    "PASSWORD_RESET_LANGUAGE": "customer.language",
    # The kinds of mail and how each is sent (docs/deliverability.md): review requests
    # may be refused, so they carry an unsubscribe link to /mail/unsubscribe/<token>/.
    "BASE_URL": SHOP_BASE_URL,
    "CATEGORIES": {
        "account": {"essential": True, "description": "Your account: sign-up, password."},
        "orders": {"essential": True, "description": "Receipts and shipping updates."},
        "security": {"essential": True, "description": "Sign-ins from new devices."},
        "reviews": {"essential": False,
                    "description": "Requests to review what you bought."},
        # Non-essential: a staff member may stop their copy (the unsubscribe link) without
        # missing anything they need to act on; the admin has every number any day.
        "reports": {"essential": False, "description": "The weekly order report (staff)."},
        "activity": {"essential": False,
                     "description": "New comments on products you commented on."},
    },
    # Comment notifications are pacing-bound: at most 3 a day per customer (one more is
    # folded into the next digest), and none at night in the shop's time zone.
    "FREQUENCY_CAPS": {"activity": {"count": 3, "period": "1d"}},
    "QUIET_HOURS": {
        "start": SHOP_QUIET_HOURS.partition("-")[0],
        "end": SHOP_QUIET_HOURS.partition("-")[2],
        "categories": ["activity"],
    } if SHOP_QUIET_HOURS else None,
    "RECIPIENT_TIMEZONE": "shop.mail.shop_timezone",
    # Mail on a calendar (docs/scheduling.md): celery beat runs it from its
    # django-celery-beat row, which migrate (and beat's start) keeps in step with this.
    "SCHEDULES": {
        "weekly_order_report": {
            "description": "Monday 08:00: last week's orders, revenue and refunds, to staff.",
            "schedule": crontab(hour=8, minute=0, day_of_week="mon"),
            "timezone": SHOP_TIME_ZONE,
            "recipients": "shop.mail.weekly_report_recipients",  # active staff, by pk
            "template": "weekly_report",
            "category": "reports",
        },
    },
    # Short waits so that a visitor sees retries happen during the demo.
    "RETRY_BACKOFF": 5,
    "RETRY_BACKOFF_MAX": 300,
    "SWEEP_INTERVAL": 30,
    # The shop's emails, bound to its events. The shop's code only changes its data; each
    # matching save (or login) queues one Email row per recipient in the same transaction.
    # Strings name callables in shop/mail.py and shop/devices.py, or attribute paths.
    # Each sends one of the app's starter templates (installed by the demo's seed), with
    # the context keys that starter documents.
    "TRIGGERS": {
        "welcome": {
            "description": "A new customer: sign-up, or a first order as a guest.",
            "model": "shop.Customer",
            "on": "created",
            "template": "welcome",
            "to": "mailbox",
            "context": "shop.mail.welcome_context",
            "language": "language",
            "category": "account",
            "once": True,
        },
        "order_confirmation": {
            # Not "created": an order is inserted before its lines, and paid after them.
            "description": "The order is paid: confirmation with the invoice attached.",
            "model": "shop.Order",
            "on": "changed",
            "field": "status",
            "to_value": "paid",
            "template": "order_confirmation",
            "to": "customer.mailbox",
            "context": "shop.mail.order_confirmation_context",
            "language": "customer.language",
            "reply_to": "shop.mail.support_desk",  # the desk speaking their language
            "category": "orders",
            "tags": ["orders"],
            "attachments": "shop.mail.invoice_attachments",
            "once": True,  # one per order and address, even if it is paid twice
        },
        "shipping_update": {
            "description": "The order has shipped, with its tracking number.",
            "model": "shop.Order",
            "on": "changed",
            "field": "status",
            "to_value": "shipped",
            "template": "shipping_update",
            "to": "customer.mailbox",
            "context": "shop.mail.shipping_context",
            "language": "customer.language",
            "category": "orders",
            "tags": ["orders"],
        },
        "review_request": {
            "description": "Some time after delivery, unless the order was refunded.",
            "model": "shop.Order",
            "on": "changed",
            "field": "status",
            "to_value": "delivered",
            "delay": SHOP_REVIEW_DELAY,
            "cancel_when": {"status": "refunded"},
            "template": "review_request",
            "to": "customer.mailbox",
            "context": "shop.mail.review_context",
            "language": "customer.language",
            "category": "reviews",
            "tags": ["reviews"],
            "once": True,
        },
        "order_refunded": {
            "description": "The order was refunded.",
            "model": "shop.Order",
            "on": "changed",
            "field": "status",
            "to_value": "refunded",
            "template": "refund",
            "to": "customer.mailbox",
            "context": "shop.mail.refund_context",
            "language": "customer.language",
            "reply_to": "shop.mail.support_desk",  # the desk speaking their language
            "category": "orders",
            "tags": ["orders"],
        },
        "login_alert": {
            "description": "A login from a device the user has not used before.",
            "signal": "django.contrib.auth.signals.user_logged_in",
            "instance_arg": "user",
            "when": "shop.devices.is_new_device",  # (user, request) -> bool
            "template": "new_sign_in",
            "to": "email",
            "context": "shop.mail.new_sign_in_context",  # (user, request) -> dict
            "language": "shop.mail.user_language",
            "category": "security",
        },
        "comment_digest": {
            # The first comment after a quiet spell goes out at once; the next ones in
            # the window wait and go together, one email per recipient.
            "description": "New comments on a product the customer commented on.",
            "model": "shop.Comment",
            "on": "created",
            "when": "shop.mail.has_followers",  # nobody else on that product: no email
            "template": "comment_digest",  # the shop's own (shop/digest_template.py)
            "to": "shop.mail.comment_followers",
            "context": "shop.mail.comment_context",
            "category": "activity",
            "tags": ["comments"],
            "digest": {"window": SHOP_DIGEST_WINDOW, "key": "recipient",
                       "first_at_once": True},
        },
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "transactional_mail": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "shop": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
