"""The shop's emails: what each template sees, and the calls that queue them.

The ``*_context`` functions return plain data (strings, numbers, lists, dicts): that is
all a template can reach, and it is stored on the Email row as the context snapshot.
They take the model instance, so the model-event triggers of TRANSACTIONAL_MAIL can name
them later, e.g. ``"context": "shop.mail.order_context"``.

Every ``send_*`` function only queues: ``transactional_mail.send()`` writes an Email row in
the caller's transaction and enqueues delivery when it commits.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.urls import reverse

import transactional_mail

from .catalog import money
from .models import Customer, Order

SHOP = {"name": "Demo Shop", "support_email": "support@example.com"}
SUPPORT = "Demo Shop support <support@example.com>"


def absolute_url(path: str) -> str:
    return settings.SHOP_BASE_URL.rstrip("/") + path


def customer_context(customer: Customer) -> dict:
    return {
        "customer": {
            "name": customer.name,
            "first_name": customer.name.split()[0] if customer.name.strip() else "",
            "email": customer.email,
        },
        "shop": {**SHOP, "url": absolute_url("/")},
    }


def order_context(order: Order) -> dict:
    lines = list(order.lines.all())
    context = customer_context(order.customer)
    context["order"] = {
        "id": order.pk,
        "number": order.number,
        "status": order.status,
        "date": order.created_at.strftime("%d %B %Y"),
        "total": money(order.total),
        "url": absolute_url(reverse("shop:index") + f"#order-{order.pk}"),
        "tracking_number": order.tracking_number,
        "tracking_url": (
            f"https://tracking.example.com/?n={quote(order.tracking_number)}"
            if order.tracking_number
            else ""
        ),
    }
    context["items"] = [
        {
            "product": line.product,
            "quantity": line.quantity,
            "unit_price": money(line.unit_price),
            "subtotal": money(line.subtotal),
        }
        for line in lines
    ]
    return context


def invoice_text(order: Order) -> str:
    rows = [f"Invoice for order {order.number}", ""]
    rows += [
        f"{line.quantity} x {line.product:<20} {money(line.subtotal):>10}"
        for line in order.lines.all()
    ]
    rows += ["", f"{'Total':<24} {money(order.total):>10}", ""]
    return "\n".join(rows)


def send_welcome(customer: Customer):
    return transactional_mail.send(
        "welcome",
        customer.mailbox,
        customer_context(customer),
        language=customer.language,
        category="account",
        source=customer,
        idempotency_key=f"welcome-{customer.pk}",
    )


def send_order_confirmation(order: Order):
    return transactional_mail.send(
        "order_confirmation",
        order.customer.mailbox,
        order_context(order),
        language=order.customer.language,
        reply_to=[SUPPORT],
        attachments=[(f"invoice-{order.number}.txt", invoice_text(order), "text/plain")],
        tags=["orders"],
        metadata={"order": order.number},
        category="orders",
        source=order,
        # A retried request (double click, proxy retry) queues the confirmation once.
        idempotency_key=f"order-confirmation-{order.pk}",
    )


def send_shipping_update(order: Order, *, delay: timedelta | None = None):
    return transactional_mail.send(
        "shipping_update",
        order.customer.mailbox,
        order_context(order),
        language=order.customer.language,
        tags=["orders"],
        metadata={"order": order.number},
        category="orders",
        source=order,
        delay=delay,
        idempotency_key=f"shipping-update-{order.pk}-{order.tracking_number}",
    )


def password_reset_token(customer: Customer) -> str:
    return signing.TimestampSigner(salt="shop.password-reset").sign(str(customer.pk))


def send_password_reset(customer: Customer):
    token = password_reset_token(customer)
    return transactional_mail.send(
        "password_reset",
        customer.mailbox,
        {
            **customer_context(customer),
            "reset_url": absolute_url(reverse("shop:reset", args=[token])),
            "valid_hours": 24,
        },
        language=customer.language,
        category="account",
        headers={"X-Demo-Flow": "password-reset"},
        source=customer,
    )
