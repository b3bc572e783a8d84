"""Drive the example shop through its own views, then report its send log as JSON.

Run by ``tests/test_example_project.py`` in subprocesses, with the example's settings
(``example_project/`` on the path, ``SHOP_DATA_DIR`` pointing at a scratch folder), in two
steps around a real ``celery worker`` of the shop:

- ``python example_walkthrough.py walk``: the demo's setup, then the way a visitor uses
  the demo (sign-up, an order, ship, deliver, refund, a login from a new device, the
  password reset box), and staff emailing the invoice again; the triggers queue their
  emails, and the commits hand them to the broker;
- (the test runs the worker until it has sent them;)
- ``python example_walkthrough.py log``: the send log as the worker left it, and, for
  each trigger (and the invoice staff email again), the variables its template uses, in
  every language, that the context the shop builds for a real object of the walk lacks.
"""

from __future__ import annotations

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_site.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test import Client  # noqa: E402
from shop import mail  # noqa: E402
from shop.models import Comment, Customer, Order  # noqa: E402

from transactional_mail.models import Email, EmailTemplate  # noqa: E402
from transactional_mail.rendering.preview import missing_variables  # noqa: E402
from transactional_mail.starters import load_starters  # noqa: E402
from transactional_mail.triggers.definitions import all_triggers  # noqa: E402

PASSWORD = "correct horse"


def walk() -> None:
    call_command("demo", "--setup-only", verbosity=0)
    browser = Client(HTTP_HOST="localhost", HTTP_USER_AGENT="Firefox on a laptop")
    browser.post("/signup/", {"signup-name": "Zoé", "signup-email": "zoe@example.com",
                              "signup-password": PASSWORD, "signup-language": "fr"})
    browser.post("/order/", {"name": "Zoé", "email": "zoe@example.com", "language": "fr",
                             "product": "mug", "quantity": 2})
    order = Order.objects.get(customer__email="zoe@example.com")
    for action in ("ship", "deliver", "refund"):
        browser.post(f"/orders/{order.pk}/{action}/")
    browser.post("/logout/")
    phone = Client(HTTP_HOST="localhost", HTTP_USER_AGENT="Safari on a phone")
    phone.post("/login/", {"login-email": "zoe@example.com", "login-password": PASSWORD})
    # The reset box queues a task whatever the address: the worker sends the email.
    Client(HTTP_HOST="localhost").post("/password-reset/", {"reset-email": "zoe@example.com"})
    # Staff email the invoice again (the admin action's call).
    with transaction.atomic():
        mail.send_invoice(order)


def missing(template_key: str, context: dict) -> dict[str, list[str]]:
    """``{language: [message, ...]}``: what each language's published ``template_key``
    uses that ``context`` does not have (every part: subject, preheader, HTML, text)."""
    found = {}
    for template in EmailTemplate.objects.filter(key=template_key).select_related(
            "published_revision"):
        revision = template.published_revision
        messages = [
            f"{message.part}: {message.message}"
            for part in ("subject", "preheader", "html", "text")
            for message in missing_variables(getattr(revision, part), context, part=part,
                                             context_name=f"the {template_key} context")
        ]
        found[template.language or "default"] = messages
    return found


def log() -> None:
    zoe = Customer.objects.get(email="zoe@example.com")
    order = zoe.orders.get()
    # The walk posts no comment (tests/example_scheduled.py does): a seeded one.
    sources = {"shop.Customer": zoe, "shop.Order": order, "shop.Comment": Comment.objects.first()}
    contexts = {
        key: (trigger.template, trigger.context(sources.get(trigger.definition.get("model"),
                                                             zoe.user)))
        for key, trigger in all_triggers().items()
    }
    for key, trigger in all_triggers().items():
        if trigger.digest is not None:  # its template sees the window's events
            template, context = contexts[key]
            contexts[key] = (template, {"items": [context], "count": 1})
    contexts["invoice (admin action)"] = ("invoice", mail.invoice_context(order))
    starters = load_starters()
    emails = Email.objects.exclude(idempotency_key__startswith="demo:").order_by("pk")
    print(json.dumps({
        "emails": [
            {"trigger": email.trigger_key or email.template_key, "template": email.template_key,
             "status": email.status, "to": email.to, "secret_keys": email.secret_keys,
             "reply_to": email.reply_to, "language": email.language,
             "rendered_in": (email.template_revision.language or "default"
                             if email.template_revision else None),
             "category": email.category, "subject": email.subject, "context": email.context,
             "attachments": [item["filename"] for item in email.attachments],
             # The layout's French footer (Layout.translations), shown in French emails.
             "french_footer": "Vous recevez cet e-mail" in (email.html_body or ""),
             "error": email.last_error}
            # The demo's seeded history (idempotency keys "demo:...") is not the visitor's.
            for email in emails.select_related("template_revision")
        ],
        "missing": {key: missing(template, context)
                    for key, (template, context) in contexts.items()},
        "templates": {key: EmailTemplate.objects.filter(key=template).count()
                      for key, (template, _context) in contexts.items()},
        # The starter's secret keys (a link that signs in...) a trigger does not mark.
        "unmarked_secrets": {
            key: sorted(set(starters[trigger.template].secret)
                        - set(trigger.definition.get("secret_keys", [])))
            for key, trigger in all_triggers().items()
            if trigger.template in starters  # comment_digest is the shop's own
        },
    }))


if __name__ == "__main__":
    {"walk": walk, "log": log}[sys.argv[1]]()
