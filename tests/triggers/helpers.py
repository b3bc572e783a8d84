"""What the trigger tests share: a base definition, and orders and emails to look at."""

from __future__ import annotations

from decimal import Decimal

from tests.testapp.models import Order
from transactional_mail.models import Email

BASE = {"model": "testapp.Order", "template": "order_confirmation", "to": "customer.email"}
ORDER_PAID = "tests.testapp.mail.order_paid"


def new_order(customer, number="A-1", **fields) -> Order:
    fields.setdefault("total", Decimal("9.90"))
    return Order.objects.create(customer=customer, number=number, **fields)


def emails(**filters) -> list[Email]:
    return list(Email.objects.filter(**filters).order_by("pk"))
