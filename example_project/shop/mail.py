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
  speaks their language;
- ``has_followers``, ``comment_followers`` and ``comment_context`` feed the
  ``comment_digest`` trigger (a digest: one email per recipient and window);
- ``weekly_report_recipients(period)`` is the ``weekly_order_report`` schedule's list of
  readers (``TRANSACTIONAL_MAIL["SCHEDULES"]``): staff, with the week's numbers;
- ``shop_timezone(address)`` is the recipients' time zone for the quiet hours.

The invoice that staff email again from the admin is not bound to an event: it calls
``transactional_mail.send()`` directly. ``send()`` only queues: it writes an Email row in
the caller's transaction and enqueues delivery when that transaction commits. The
password reset goes through the app's drop-in form (``send_password_reset``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import DecimalField, F, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator

import transactional_mail
from transactional_mail.auth import PasswordResetForm
from transactional_mail.models.templates import language_fallbacks

from .catalog import money
from .devices import device_of, device_summary
from .models import Comment, Customer, Order, OrderLine

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


# --- Comments: the comment_digest trigger ----------------------------------------------------


def has_followers(comment: Comment) -> bool:
    """Whether anyone else commented on the product (the trigger's ``when``): a trigger
    whose ``to`` gives nobody logs a failed email, which a first comment is not."""
    return (Comment.objects.filter(product=comment.product)
            .exclude(customer_id=comment.customer_id).exists())


def comment_followers(comment: Comment) -> list[str]:
    """Who hears of a new comment: the other customers who commented on that product
    (the author is not told of their own comment), in a stable order."""
    followers = (Customer.objects.filter(comments__product=comment.product)
                 .exclude(pk=comment.customer_id).distinct().order_by("pk"))
    return [customer.mailbox for customer in followers]


def comment_context(comment: Comment) -> dict:
    """One comment, as an item of the ``comment_digest`` email (its ``items`` list).

    The same for every recipient: a digest trigger computes one context per event.
    """
    return {
        "title": f"{comment.customer.name} commented on {comment.product_name}",
        "summary": Truncator(comment.text).chars(200),
        "product": comment.product_name,
        "url": shop_url(f"?product={quote(comment.product)}#comments"),
        "at": comment.created_at.isoformat(),
    }


def shop_timezone(address: str) -> str:
    """The time zone of a recipient (``RECIPIENT_TIMEZONE``): the shop's customers live
    near the shop, so its own zone, where the quiet hours are counted."""
    return settings.SHOP_TIME_ZONE


# --- The weekly order report: the weekly_order_report schedule ------------------------------

#: Orders that count as sales: paid, whatever happened to them since (a refund included:
#: refunds are reported on their own line).
SOLD = [Order.Status.PAID, Order.Status.SHIPPED, Order.Status.DELIVERED, Order.Status.REFUNDED]


def weekly_report_recipients(period: datetime) -> Iterator[tuple[str, dict]]:
    """The weekly report's readers: active staff with an address, by primary key (a run
    that stopped resumes after the last one done), each with the same numbers.

    ``period`` is the schedule's due time (Monday 08:00 in the shop's zone); the report
    covers the seven days before that Monday. The numbers are computed once per run, not
    per reader.
    """
    report = weekly_report(period)
    staff = (get_user_model().objects.filter(is_staff=True, is_active=True)
             .exclude(email="").order_by("pk"))
    for user in staff.iterator():
        yield user.email, {**report, "user": {"name": user.get_full_name() or user.username}}


def weekly_report(period: datetime) -> dict:
    """The ``weekly_report`` starter's context, but ``user``: the week before ``period``'s
    day, in ``period``'s time zone, against the week before it."""
    last_day = period.date() - timedelta(days=1)
    first_day = last_day - timedelta(days=6)
    week = week_numbers(first_day, period.tzinfo)
    before = week_numbers(first_day - timedelta(days=7), period.tzinfo)
    average = week["revenue"] / week["orders"] if week["orders"] else Decimal("0")
    average_before = before["revenue"] / before["orders"] if before["orders"] else Decimal("0")
    metrics = [
        ("Orders", f"{week['orders']:,}", change(week["orders"], before["orders"])),
        ("Revenue", money(week["revenue"]), change(week["revenue"], before["revenue"])),
        ("Average order value", money(average), change(average, average_before)),
        ("New customers", f"{week['customers']:,}",
         change(week["customers"], before["customers"])),
        ("Refunds", f"{week['refunds']:,}", change(week["refunds"], before["refunds"])),
    ]
    return {
        **site_context(),
        "period": {"start": first_day.isoformat(), "end": last_day.isoformat()},
        "metrics": [{"label": label, "value": value, "change": delta}
                    for label, value, delta in metrics],
        "highlights": highlights(week),
        "report_url": absolute_url(reverse("admin:shop_order_changelist")) + "?" + urlencode(
            {"created_at__gte": first_day.isoformat(),
             "created_at__lt": (last_day + timedelta(days=1)).isoformat()}),
        # Staff pause or reschedule the report on its beat row.
        "preferences_url": absolute_url(
            reverse("admin:django_celery_beat_periodictask_changelist")) + "?"
            + urlencode({"q": "weekly_order_report"}),
    }


def week_numbers(first_day: date, zone) -> dict:
    """Orders, revenue, new customers, refunds and products sold in the seven days from
    ``first_day`` (midnight to midnight in ``zone``)."""
    start = datetime.combine(first_day, time.min, tzinfo=zone)
    end = datetime.combine(first_day + timedelta(days=7), time.min, tzinfo=zone)
    sold = Order.objects.filter(created_at__gte=start, created_at__lt=end, status__in=SOLD)
    lines = OrderLine.objects.filter(order__in=sold)
    amount = Sum(F("quantity") * F("unit_price"), output_field=DecimalField())
    refunded = Order.objects.filter(status=Order.Status.REFUNDED, updated_at__gte=start,
                                    updated_at__lt=end)
    return {
        "orders": sold.count(),
        "revenue": lines.aggregate(total=amount)["total"] or Decimal("0"),
        "customers": Customer.objects.filter(created_at__gte=start, created_at__lt=end).count(),
        "refunds": refunded.count(),
        "refunded": (OrderLine.objects.filter(order__in=refunded).aggregate(total=amount)
                     ["total"] or Decimal("0")),
        "products": list(lines.values("product").annotate(sold=Sum("quantity"))
                         .order_by("-sold", "product")[:3]),
    }


def change(now, before) -> str:
    """The change from ``before`` to ``now`` as a signed percentage; "" when there is
    nothing to compare with (the template shows a dash)."""
    if not before:
        return ""
    return f"{(Decimal(now) - Decimal(before)) * 100 / Decimal(before):+.0f}%"


def highlights(week: dict) -> list[str]:
    """The sentences under the numbers: the best sellers and the refunds."""
    if not week["orders"] and not week["refunds"]:
        return ["No orders this week."]
    found = []
    if week["products"]:
        found.append("Top products: " + ", ".join(
            f"{row['product']} ({row['sold']} sold)" for row in week["products"]) + ".")
    if week["refunds"]:
        found.append(f"{week['refunds']} order{'s' if week['refunds'] != 1 else ''} "
                     f"refunded ({money(week['refunded'])}).")
    return found
