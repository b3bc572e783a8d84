"""The shop's emails: what each template sees, and the callables the triggers name.

The shop sends the app's starter templates (``manage.py install_starter_templates``, run
by the demo's seed): each starter documents its context keys in
``transactional_mail/starters/<key>/starter.json`` (and ``docs/starter-templates.md``),
and the ``*_context`` functions here build exactly those keys from the shop's objects.
``tests/test_example_project.py`` renders each trigger's template with the context built
for a real order and fails on any variable the template uses that the context lacks.

Most of the shop's emails are triggers in ``TRANSACTIONAL_MAIL["TRIGGERS"]``
(``shop_site/settings.py``): the shop's code only changes its data, and a save that
matches a trigger queues the email. The functions here are what those triggers name by
dotted path:

- ``*_context(instance, ...)`` return plain data (strings, numbers, lists, dicts): that is
  all a template can reach, and it is stored on the Email row as the context snapshot;
- ``invoice_attachments(order)`` builds the invoice attached to the order confirmation;
- ``user_language(user)`` is the language of a login alert;
- ``support_desk(order)`` is where a customer's reply about an order goes: the desk that
  speaks their language.

The invoice that staff email again from the admin is not bound to an event: it calls
``transactional_mail.send()`` directly. ``send()`` only queues: it writes an Email row in
the caller's transaction and enqueues delivery when that transaction commits. The
password reset goes through the app's drop-in form (``send_password_reset``).
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

import transactional_mail
from transactional_mail.auth import PasswordResetForm
from transactional_mail.models.templates import language_fallbacks

from .catalog import money
from .devices import device_of, device_summary
from .models import Customer, Order

SITE_NAME = "Demo Shop"
SUPPORT = "Demo Shop support <support@example.com>"
#: The demo ships nothing, so every order "goes" to the shop's pickup point.
PICKUP_POINT = ["Demo Shop pickup point", "1 Example Street", "Springfield"]
CARRIER = "Demo Post"
#: How long the demo's bank takes to show a refund, in business days.
REFUND_DAYS = 5
#: Where a refund goes, in each language a refund template is written in (the starter's
#: ``refund.method`` is a phrase of the email's language); "" is the default template's.
REFUND_METHODS = {
    "": "the card you paid with",
    "fr": "votre carte de paiement",
    "de": "Ihre Zahlungskarte",
    "it": "carta di credito",  # "su carta di credito": the template writes "su"
    "ar": "بطاقتك",
}
#: How an order was paid, for the invoice's ``payment_method`` (a label in its table).
PAYMENT_METHODS = {"": "Card", "fr": "Carte bancaire", "de": "Karte", "it": "Carta",
                   "ar": "بطاقة"}


def absolute_url(path: str) -> str:
    return settings.SHOP_BASE_URL.rstrip("/") + path


def shop_url(suffix: str) -> str:
    """The absolute URL of the shop's page with ``suffix``: a section (``#help``), a query."""
    return absolute_url(reverse("shop:index") + suffix)


def order_url(order: Order) -> str:
    return shop_url(f"#order-{order.pk}")


def in_language(texts: dict[str, str], language: str) -> str:
    """The text of ``texts`` for ``language``, falling back as templates do (fr-ca, fr,
    then the default): the text then matches the template the email is rendered in."""
    return next(texts[code] for code in language_fallbacks(language) if code in texts)


# --- Contexts (named by the triggers) ------------------------------------------------------
# Each returns the keys its starter documents, and no others.


def site_context() -> dict:
    """The keys every starter uses: the site's name and home page."""
    return {"site_name": SITE_NAME, "site_url": absolute_url("/")}


def customer_context(customer: Customer) -> dict:
    """The base of the order emails: the site and the customer's name."""
    return {**site_context(), "customer": {"name": customer.name}}


def welcome_context(customer: Customer) -> dict:
    """The ``welcome`` starter's context: the new customer, and where to start."""
    return {
        **site_context(),
        "user": {"name": customer.name},
        "get_started_url": shop_url("#place-order"),
    }


def shipping_address(order: Order) -> list[str]:
    return [order.customer.name, *PICKUP_POINT]


def order_confirmation_context(order: Order) -> dict:
    """The ``order_confirmation`` starter's context: the order, its lines and totals."""
    lines = list(order.lines.all())
    total = money(order.total)
    return {
        **customer_context(order.customer),
        "order": {
            "number": order.number,
            "created_at": order.created_at.isoformat(),
            "items": [
                {"name": line.product, "quantity": line.quantity, "price": money(line.subtotal)}
                for line in lines
            ],
            "subtotal": total,
            "shipping": money(0),  # a pickup costs nothing (and "$0.00" needs no translation)
            "total": total,
            "url": order_url(order),
        },
        "shipping_address": shipping_address(order),
    }


def shipping_context(order: Order) -> dict:
    """The ``shipping_update`` starter's context: the whole order in one parcel."""
    tracking = order.tracking_number
    return {
        **customer_context(order.customer),
        "order": {"number": order.number, "url": order_url(order)},
        "shipment": {
            "carrier": CARRIER,
            "tracking_number": tracking,
            "tracking_url": (f"https://tracking.example.com/?n={quote(tracking)}"
                             if tracking else ""),
            "estimated_delivery": (timezone.localdate() + timedelta(days=3)).isoformat(),
            "partial": False,
            "items": [{"name": line.product, "quantity": line.quantity}
                      for line in order.lines.all()],
        },
        "shipping_address": shipping_address(order),
    }


def review_context(order: Order) -> dict:
    """The ``review_request`` starter's context: one review link per product."""
    return {
        **customer_context(order.customer),
        "order": {
            "number": order.number,
            "items": [
                {"name": line.product,
                 "review_url": shop_url(f"?review={quote(line.product)}#order-{order.pk}")}
                for line in order.lines.all()
            ],
        },
        "preferences_url": shop_url("#account"),
    }


def refund_context(order: Order) -> dict:
    """The ``refund`` starter's context: the demo refunds whole orders to the card."""
    return {
        **customer_context(order.customer),
        "order": {"number": order.number, "url": order_url(order)},
        "refund": {
            "amount": money(order.total),
            "method": in_language(REFUND_METHODS, order.customer.language),
            "reason": "",  # optional: the demo's refunds have none to give
            "expected_days": REFUND_DAYS,
        },
        "support_url": shop_url("#help"),
    }


def new_sign_in_context(user, request=None) -> dict:
    """The ``new_sign_in`` starter's context: who, from which device, when.

    The trigger is a ``user_logged_in`` signal trigger, so this gets the signal's
    ``request`` argument too (by its parameter name). ``request`` is None in a dry run.
    """
    customer = getattr(user, "customer", None)
    user_agent, ip_address = device_of(request) if request is not None else ("", "")
    return {
        **site_context(),
        "user": {"name": customer.name if customer else user.get_username()},
        "signed_in_at": timezone.now().isoformat(),
        "ip_address": ip_address,
        "location": "",  # optional: the demo has no IP geolocation
        "device": device_summary(user_agent),
        "security_url": shop_url("#password-reset"),
    }


def invoice_context(order: Order) -> dict:
    """The ``invoice`` starter's context: the paid receipt of an order, PDF attached."""
    total = money(order.total)
    return {
        **customer_context(order.customer),
        "invoice": {
            "number": invoice_number(order),
            "issued_at": order.created_at.date().isoformat(),
            "due_at": "",  # paid at checkout: nothing is due
            "paid": True,
            "paid_at": order.created_at.isoformat(),
            "payment_method": in_language(PAYMENT_METHODS, order.customer.language),
            "items": [
                {"description": line.product, "quantity": line.quantity,
                 "amount": money(line.subtotal)}
                for line in order.lines.all()
            ],
            "subtotal": total,
            "tax": "",  # optional: the demo's prices include no tax line
            "tax_label": "",
            "total": total,
            "url": order_url(order),
            "pdf_attached": True,
        },
    }


def user_language(user) -> str:
    """The language of a user's emails: their customer's, or the default for staff."""
    customer = getattr(user, "customer", None)  # None for a user without a customer
    return customer.language if customer else ""


# --- The invoice -------------------------------------------------------------------------


#: Support desks by language: a reply to an order email reaches someone who speaks it.
SUPPORT_DESKS = {"fr": "Service client Demo Shop <sav@example.com>"}


def support_desk(order: Order) -> str:
    """The reply-to of the shop's order emails (a trigger's ``reply_to`` callable)."""
    language = (order.customer.language or "").split("-")[0]
    return SUPPORT_DESKS.get(language, SUPPORT)


def invoice_number(order: Order) -> str:
    return f"INV-{order.number}"


def invoice_lines(order: Order) -> list[str]:
    rows = [
        "Demo Shop - 1 Example Street - Springfield",
        "",
        f"Invoice {invoice_number(order)} for order {order.number}",
        f"Date: {order.created_at:%d %B %Y}",
        f"Customer: {order.customer.name} <{order.customer.email}>",
        "",
    ]
    rows += [
        f"{line.quantity:>3} x {line.product:<24} {money(line.subtotal):>12}"
        for line in order.lines.all()
    ]
    rows += ["", f"{'Total':<30} {money(order.total):>12}", "", "Paid in full. Thank you!"]
    return rows


def invoice_text(order: Order) -> str:
    return "\n".join(invoice_lines(order)) + "\n"


def invoice_pdf(order: Order) -> bytes:
    """The invoice as a one-page PDF (standard library only: a demo, not a PDF library)."""
    return simple_pdf(invoice_lines(order))


def invoice_attachments(order: Order) -> list[tuple[str, bytes, str]]:
    """The order confirmation's ``attachments`` callable: the invoice, as a PDF."""
    return [(f"invoice-{order.number}.pdf", invoice_pdf(order), "application/pdf")]


def simple_pdf(lines: list[str]) -> bytes:
    """A valid single-page A4 PDF showing ``lines`` in Courier."""

    def pdf_string(text: str) -> bytes:
        raw = text.encode("cp1252", "replace")
        return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"

    stream = b"BT /F1 11 Tf 14 TL 56 780 Td " + b" ".join(
        pdf_string(line) + b" Tj T*" for line in lines
    ) + b" ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


# --- Direct sends ---------------------------------------------------------------------------


def send_password_reset(address: str, request) -> bool:
    """Queue the password reset of the account of ``address``, if it has one, with the
    drop-in ``transactional_mail.auth.PasswordResetForm``: the request queues one task
    whatever the address, the worker finds the account and sends the ``password_reset``
    email, its link marked secret. False when the address is not valid."""
    form = PasswordResetForm({"email": address})
    if not form.is_valid():
        return False
    form.save(request=request, use_https=request.is_secure())
    return True


def send_invoice(order: Order):
    """Email the invoice again (an admin action): the ``invoice`` starter as a paid
    receipt, with the PDF attached.

    No idempotency key, unlike the triggers' ``once``: staff asked for another copy.
    """
    return transactional_mail.send(
        "invoice",
        order.customer.mailbox,
        invoice_context(order),
        language=order.customer.language,
        reply_to=[support_desk(order)],
        attachments=invoice_attachments(order),
        tags=["orders"],  # one tag: Postmark refuses more (AnymailUnsupportedFeature)
        metadata={"order": order.number, "copy": True},
        category="orders",
        source=order,
    )
