"""Callables that the test triggers point at by dotted path."""

from __future__ import annotations

from django.dispatch import Signal

from transactional_mail.snapshots import fields


def order_context(order) -> dict:
    return {
        **fields(order, "number", "total", "status", "customer.name"),
        "url": f"https://shop.example.com/orders/{order.number}",
    }


def is_paid(order) -> bool:
    return order.status in ("paid", "shipped", "delivered")


def is_refunded(order) -> bool:
    return order.status == "refunded"


def all_addresses(order) -> list[str]:
    return [order.customer.email, "sales@example.com"]


def sender(order) -> str:
    return f"{order.customer.name} at the shop <shop@example.com>"


def login_context(user, request=None) -> dict:
    agent = request.META.get("HTTP_USER_AGENT", "") if request is not None else ""
    return {"username": user.get_username(), "device": agent}


def invoice(order) -> list:
    return [(f"invoice-{order.number}.pdf", b"%PDF-1.4 invoice", "application/pdf")]


def nul_context(order) -> dict:
    """A value from outside the database (a request header, an API) may hold a NUL."""
    return {"number": order.number, "note": "gift\x00wrap"}


def explode(order):
    raise RuntimeError("the context service is down")


#: A custom signal for trigger tests: sent with ``order=...``.
order_paid = Signal()
