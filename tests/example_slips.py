"""What the example shop tells a visitor, in the cases where it used to say too much.

Run by ``tests/test_example_project.py`` in a subprocess with the example's settings, on a
scratch ``SHOP_DATA_DIR``: each case uses the shop's own views, and the script prints, as
JSON, the flash messages each request left and the send log's labels on the shop's page.
"""

from __future__ import annotations

import html
import json
import os
import re

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_site.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from shop.models import Order  # noqa: E402

from transactional_mail.models import Email, EmailTemplate, Trigger  # noqa: E402
from transactional_mail.models.log import EmailStatus  # noqa: E402


def flash(response) -> list[str]:
    """The flash messages on the page a redirected post lands on."""
    listed = re.search(r'<ul class="messages">(.*?)</ul>', response.content.decode(), re.S)
    return [html.unescape(item) for item in re.findall(r"<li[^>]*>(.*?)</li>",
                                                       listed.group(1) if listed else "")]


def switch(trigger_key: str, enabled: bool) -> None:
    Trigger.objects.update_or_create(key=trigger_key, defaults={"enabled": enabled})


def order_for(browser: Client, email: str) -> tuple[Order, list[str]]:
    response = browser.post("/order/", {"name": "Guest", "email": email, "language": "",
                                        "product": "mug", "quantity": 1}, follow=True)
    return Order.objects.filter(customer__email=email).latest("pk"), flash(response)


def main() -> dict:
    call_command("demo", "--setup-only", verbosity=0)
    browser = Client(HTTP_HOST="localhost")
    said = {}

    switch("welcome", False)
    said["signup, welcome off"] = flash(browser.post("/signup/", {
        "signup-name": "Lin", "signup-email": "lin@example.com", "signup-password": "pw1",
        "signup-language": ""}, follow=True))
    switch("welcome", True)
    browser.post("/logout/", follow=True)  # reads its "Logged out."

    said["signup"] = flash(browser.post("/signup/", {
        "signup-name": "Max", "signup-email": "max@example.com", "signup-password": "pw1",
        "signup-language": "fr"}, follow=True))
    browser.post("/logout/", follow=True)  # reads its "Logged out."

    switch("order_confirmation", False)
    _order, said["order, confirmation off"] = order_for(browser, "off@example.com")
    switch("order_confirmation", True)

    order, said["order"] = order_for(browser, "guest@example.com")
    switch("shipping_update", False)
    said["ship, shipping update off"] = flash(browser.post(f"/orders/{order.pk}/ship/",
                                                           follow=True))
    switch("review_request", False)
    said["deliver, review request off"] = flash(browser.post(f"/orders/{order.pk}/deliver/",
                                                             follow=True))
    said["refund, no review request pending"] = flash(
        browser.post(f"/orders/{order.pk}/refund/", follow=True))

    switch("shipping_update", True)
    switch("review_request", True)
    order, _said = order_for(browser, "second@example.com")
    said["ship"] = flash(browser.post(f"/orders/{order.pk}/ship/", follow=True))
    said["deliver"] = flash(browser.post(f"/orders/{order.pk}/deliver/", follow=True))
    said["refund, review request pending"] = flash(
        browser.post(f"/orders/{order.pk}/refund/", follow=True))

    # A French customer's shipping update rendered in the default template (the French
    # one is gone): the row's language is the one asked for, not the one rendered.
    EmailTemplate.objects.filter(key="shipping_update", language="fr").delete()
    default = EmailTemplate.objects.get(key="shipping_update", language="")
    asked_fr = Email.objects.filter(trigger_key="shipping_update").latest("pk")
    Email.objects.filter(pk=asked_fr.pk).update(
        language="fr", template_revision=default.published_revision, status=EmailStatus.SENT)
    # ... and one rendered in the French template it asked for.
    french = Email.objects.filter(trigger_key="order_confirmation").latest("pk")
    Email.objects.filter(pk=french.pk).update(
        language="fr", status=EmailStatus.SENT, template_revision=EmailTemplate.objects.get(
            key="order_confirmation", language="fr").published_revision)
    page = browser.get("/").content.decode()
    rows = re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td>", page)
    labels = {int(pk): html.unescape(label) for pk, label in rows}
    said["labels"] = {"asked fr, rendered default": labels[asked_fr.pk],
                      "asked fr, rendered fr": labels[french.pk],
                      "not rendered yet": labels[Email.objects.filter(
                          template_revision__isnull=True).latest("pk").pk]}
    return said


if __name__ == "__main__":
    print(json.dumps(main()))
