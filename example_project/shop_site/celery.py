"""The site's Celery app: ``celery -A shop_site worker -B``.

transactional_mail defines its tasks with ``@shared_task``; they run on this app, read its
broker settings (the ``CELERY_*`` Django settings) and are found by autodiscovery.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_site.settings")

app = Celery("shop_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
