"""The shop's emails: what each template sees, and the callables the triggers name.

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

from urllib.parse import quote

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

import transactional_mail
from transactional_mail.auth import PasswordResetForm

from .catalog import money
from .devices import device_of, device_summary
from .models import Customer, Order

SHOP = {"name": "Demo Shop", "support_email": "support@example.com"}
SUPPORT = "Demo Shop support <support@example.com>"


def absolute_url(path: str) -> str:
    return settings.SHOP_BASE_URL.rstrip("/") + path


# --- Contexts (named by the triggers) ------------------------------------------------------


def customer_context(customer: Customer) -> dict:
    """The welcome email's context, and the base of the others."""
    return {
        "customer": {
            "name": customer.name,
            "first_name": customer.name.split()[0] if customer.name.strip() else "",
            "email": customer.email,
        },
        "shop": {**SHOP, "url": absolute_url("/")},
    }


def order_context(order: Order) -> dict:
    """The context of every order email: the order, its lines and its customer."""
    lines = list(order.lines.all())
    context = customer_context(order.customer)
    context["order"] = {
        "id": order.pk,
        "number": order.number,
        "status": order.status,
        "status_display": order.get_status_display(),
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


def review_context(order: Order) -> dict:
    """The review request's context: the order, and one review link per product."""
    context = order_context(order)
    for item in context["items"]:
        item["review_url"] = absolute_url(
            reverse("shop:index") + f"?review={quote(item['product'])}#order-{order.pk}"
        )
    return context


def login_context(user, request=None) -> dict:
    """The login alert's context: who, from which device, when.

    The trigger is a ``user_logged_in`` signal trigger, so this gets the signal's
    ``request`` argument too (by its parameter name). ``request`` is None in a dry run.
    """
    customer = getattr(user, "customer", None)
    user_agent, ip_address = device_of(request) if request is not None else ("", "")
    return {
        "user": {
            "name": customer.name if customer else user.get_username(),
            "first_name": (customer.name.split() or [""])[0] if customer else "",
            "email": user.email,
        },
        "device": {
            "summary": device_summary(user_agent),
            "user_agent": user_agent,
            "ip_address": ip_address,
        },
        # An ISO date-time in the snapshot; the template formats it with as_datetime|date.
        "login_time": timezone.now(),
        "shop": {**SHOP, "url": absolute_url("/")},
        "reset_url": absolute_url(reverse("shop:index") + "#password-reset"),
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


def invoice_lines(order: Order) -> list[str]:
    rows = [
        "Demo Shop - 1 Example Street - Springfield",
        "",
        f"Invoice for order {order.number}",
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
    """Email the invoice again (an admin action): the order confirmation, sent on demand.

    No idempotency key, unlike the trigger's ``once``: staff asked for another copy.
    """
    return transactional_mail.send(
        "order_confirmation",
        order.customer.mailbox,
        order_context(order),
        language=order.customer.language,
        reply_to=[SUPPORT],
        attachments=invoice_attachments(order),
        tags=["orders"],  # one tag: Postmark refuses more (AnymailUnsupportedFeature)
        metadata={"order": order.number, "copy": True},
        category="orders",
        source=order,
    )
