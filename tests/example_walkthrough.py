"""Drive the example shop through its own views and print the send log as JSON.

Run by ``tests/test_example_project.py`` in a subprocess, with the example's settings
(``example_project/`` on the path, ``SHOP_DATA_DIR`` pointing at a scratch folder): the
way a visitor uses the demo, without its worker, so the rows stay as the triggers wrote
them.
"""

from __future__ import annotations

import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_site.settings")
django.setup()

from celery.signals import before_task_publish  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from shop.models import Order  # noqa: E402

from transactional_mail.auth import send_password_reset  # noqa: E402
from transactional_mail.models import Email  # noqa: E402

call_command("demo", "--setup-only", verbosity=0)
browser = Client(HTTP_HOST="localhost", HTTP_USER_AGENT="Firefox on a laptop")
password = "correct horse"
browser.post("/signup/", {"signup-name": "Zoé", "signup-email": "zoe@example.com",
                          "signup-password": password, "signup-language": "fr"})
browser.post("/order/", {"name": "Zoé", "email": "zoe@example.com", "language": "fr",
                         "product": "mug", "quantity": 2})
order = Order.objects.get(customer__email="zoe@example.com")
for action in ("ship", "deliver", "refund"):
    browser.post(f"/orders/{order.pk}/{action}/")
browser.post("/logout/")
phone = Client(HTTP_HOST="localhost", HTTP_USER_AGENT="Safari on a phone")
phone.post("/login/", {"login-email": "zoe@example.com", "login-password": password})

# The shop's reset box queues a task; run it here as the worker would.
reset_tasks = []
before_task_publish.connect(
    lambda sender=None, body=None, **kwargs: reset_tasks.append(body[0])
    if sender == send_password_reset.name else None, weak=False)
Client(HTTP_HOST="localhost").post("/password-reset/", {"reset-email": "zoe@example.com"})
for args in reset_tasks:
    send_password_reset(*args)

print(json.dumps([
    {"trigger": email.trigger_key or email.template_key, "status": email.status,
     "to": email.to, "secret_keys": email.secret_keys,
     "reply_to": email.reply_to, "language": email.language, "error": email.last_error}
    # The demo's seeded history (idempotency keys "demo:...") is not the visitor's doing.
    for email in Email.objects.exclude(idempotency_key__startswith="demo:").order_by("pk")
]))
