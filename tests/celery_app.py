"""The test site's Celery app: what a Django project's ``proj/celery.py`` holds.

The package itself only uses ``@shared_task``; importing this module (tests/conftest.py
does) makes this app the current one, so the tasks bind to it in the test process, and
``celery -A tests.celery_app worker`` runs it in the worker subprocesses.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
