"""The shop's pages. Each action changes the shop's data and queues its email in the
same transaction: if the transaction rolls back, no email is sent."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.core import signing
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from transactional_mail.models import Email

from . import mail
from .catalog import PRODUCTS
from .forms import OrderForm, PasswordResetForm
from .models import Customer, Order, OrderLine

logger = logging.getLogger(__name__)


def emails_for(obj) -> list[Email]:
    """The emails whose source is ``obj``, oldest first."""
    return list(
        Email.objects.filter(
            source_content_type=ContentType.objects.get_for_model(obj),
            source_object_id=str(obj.pk),
        ).order_by("created_at")
    )


def index(request, order_form=None, reset_form=None, status=200):
    orders = Order.objects.select_related("customer").prefetch_related("lines")[:10]
    return render(
        request,
        "shop/index.html",
        {
            "order_form": order_form or OrderForm(),
            "reset_form": reset_form or PasswordResetForm(),
            "orders": [(order, emails_for(order)) for order in orders],
            "recent_emails": Email.objects.all()[:10],
            "fake_esp_url": (
                f"http://127.0.0.1:{settings.FAKE_ESP_PORT}/" if settings.FAKE_ESP else ""
            ),
        },
        status=status,
    )


@require_POST
def place_order(request):
    form = OrderForm(request.POST)
    if not form.is_valid():
        return index(request, order_form=form, status=400)
    data = form.cleaned_data
    product, unit_price = PRODUCTS[data["product"]]
    with transaction.atomic():
        customer, created = Customer.objects.get_or_create(
            email=data["email"].lower(),
            defaults={"name": data["name"], "language": data["language"]},
        )
        if not created and customer.language != data["language"]:
            customer.language = data["language"]
            customer.save(update_fields=["language"])
        order = Order.objects.create(customer=customer)
        OrderLine.objects.create(
            order=order, product=product, quantity=data["quantity"], unit_price=unit_price
        )
        if created:
            mail.send_welcome(customer)
        email = mail.send_order_confirmation(order)
    logger.info("Order %s placed; email %s queued", order.number, email.pk)
    messages.success(request, f"Order {order.number} placed: its confirmation email is queued.")
    return redirect(reverse("shop:index") + f"#order-{order.pk}")


@require_POST
def ship_order(request, pk):
    with transaction.atomic():
        order = get_object_or_404(Order.objects.select_for_update(), pk=pk)
        if order.status != Order.Status.PAID:
            messages.error(request, f"Order {order.number} is {order.status}.")
            return redirect(reverse("shop:index") + f"#order-{order.pk}")
        order.status = Order.Status.SHIPPED
        order.tracking_number = uuid.uuid4().hex[:12].upper()
        order.save()
        email = mail.send_shipping_update(order, delay=settings.SHOP_SHIPPING_EMAIL_DELAY)
    messages.success(
        request,
        f"Order {order.number} shipped: its shipping update is {email.status} "
        f"(due {email.next_attempt_at:%H:%M:%S} UTC).",
    )
    return redirect(reverse("shop:index") + f"#order-{order.pk}")


def order_emails(request, pk):
    """The order's emails as JSON, for scripts: ``curl .../orders/1/emails.json``."""
    order = get_object_or_404(Order, pk=pk)
    return JsonResponse(
        {
            "order": order.number,
            "emails": [
                {
                    "id": email.pk,
                    "template_key": email.template_key,
                    "to": email.to,
                    "status": email.status,
                    "attempts": email.attempts,
                    "esp_name": email.esp_name,
                    "esp_message_id": email.esp_message_id,
                    "last_error": email.last_error,
                    "sent_at": email.sent_at,
                }
                for email in emails_for(order)
            ],
        }
    )


@require_POST
def password_reset(request):
    form = PasswordResetForm(request.POST)
    if not form.is_valid():
        return index(request, reset_form=form, status=400)
    customer = Customer.objects.filter(email=form.cleaned_data["email"].lower()).first()
    if customer is not None:
        with transaction.atomic():
            mail.send_password_reset(customer)
    # The same answer either way: the page must not tell who is a customer.
    messages.success(request, "If that address belongs to a customer, a reset link is on its way.")
    return redirect("shop:index")


def reset(request, token):
    try:
        pk = signing.TimestampSigner(salt="shop.password-reset").unsign(token, max_age=86400)
    except signing.BadSignature:
        return HttpResponse("This reset link is invalid or has expired.", status=400)
    customer = get_object_or_404(Customer, pk=pk)
    return HttpResponse(
        f"The demo stops here: this is where {customer.name} would choose a new password."
    )
