"""django-post_office, the peer in bench_delivery.py: its Django settings, Celery app, producer.

Runs only in bench/.venv-peer, which bench_delivery.py creates (the project's virtualenv
does not have post_office). bench_delivery.py runs it, with bench/ on ``PYTHONPATH``, as

- ``python peer_post_office.py setup``: migrate, store the email template;
- ``python peer_post_office.py queue N``: the producer, N ``mail.send()`` calls, each in its
  own transaction; prints its timings as JSON;
- ``celery -A peer_post_office worker``: post_office's own Celery delivery. With
  ``CELERY_ENABLED``, each queued email's commit publishes ``send_queued_mail``, which
  sends every queued email in batches (under a file lock, so one task at a time does).

The environment names the services: ``TM_TEST_POSTGRES`` (the server), ``BENCH_PEER_DB``
(the database), ``TM_TEST_BROKER``, ``BENCH_QUEUE`` and ``TM_ESP_URL`` (the fake Postmark).
The Celery settings are the test site's (tests/settings.py), so both workers run alike.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from urllib.parse import unquote, urlsplit

from bench_delivery import (
    FROM_EMAIL,
    SUBJECT,
    TEXT,
    branded_layout,
    order_context,
    plain_document,
    recipient,
)
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_post_office")

_server = urlsplit(os.environ["TM_TEST_POSTGRES"])

SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = ["post_office"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["BENCH_PEER_DB"],
        "USER": unquote(_server.username or "postgres"),
        "PASSWORD": unquote(_server.password or ""),
        "HOST": _server.hostname or "127.0.0.1",
        "PORT": str(_server.port or 5432),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates"}]
DEFAULT_FROM_EMAIL = FROM_EMAIL
ANYMAIL = {"POSTMARK_SERVER_TOKEN": "test-token", "POSTMARK_API_URL": os.environ["TM_ESP_URL"]}
POST_OFFICE = {
    "BACKENDS": {"default": "anymail.backends.postmark.EmailBackend"},
    "CELERY_ENABLED": True,
}

# The test site's Celery settings (prefetch, acks, CELERY_DB_REUSE_MAX...), whatever they
# are today, so that both workers run alike; then this peer's broker and queue.
_site = importlib.import_module("tests.settings")  # bench_delivery put the checkout on the path
globals().update({name: getattr(_site, name) for name in dir(_site) if name.startswith("CELERY_")})
CELERY_BROKER_URL = os.environ["TM_TEST_BROKER"]
CELERY_TASK_DEFAULT_QUEUE = os.environ["BENCH_QUEUE"]

app = Celery("peer_post_office")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def setup() -> None:
    from django.core.management import call_command
    from post_office.models import EmailTemplate

    call_command("migrate", verbosity=0, interactive=False)
    EmailTemplate.objects.create(name="order_confirmation", subject=SUBJECT, content=TEXT,
                                 html_content=plain_document(branded_layout()))


def queue(n: int) -> None:
    from django.db import transaction
    from post_office import mail

    contexts = [order_context(i) for i in range(n)]
    started, cpu = time.monotonic(), time.process_time()
    for i, context in enumerate(contexts):
        with transaction.atomic():
            # Rendered by the worker at delivery, as this app does (post_office's default
            # renders here, in the request).
            mail.send(recipient(i), FROM_EMAIL, template="order_confirmation",
                      context=context, render_on_delivery=True)
    print(json.dumps({"start": started, "end": time.monotonic(),
                      "cpu": time.process_time() - cpu}))


if __name__ == "__main__":
    import django

    django.setup()
    if sys.argv[1] == "setup":
        setup()
    else:
        queue(int(sys.argv[2]))
