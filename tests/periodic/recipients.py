"""Recipient sources the schedule tests name in settings (dotted paths)."""

from __future__ import annotations

import os
import time

from tests.testapp.models import Customer

#: Recipients ``failing_after`` yields before it raises (the tests set it).
FAIL_AFTER = {"count": None}


def three(period):
    """Three customers of a report, with the period in their context."""
    for name in ("ann", "bob", "cat"):
        yield f"{name}@example.com", {"name": name.title(), "period": period.isoformat()}


def numbered(period):
    """``SCHEDULE_TEST_COUNT`` recipients (default 25), in a stable order."""
    for number in range(int(os.environ.get("SCHEDULE_TEST_COUNT", 25))):
        yield f"user{number}@example.com", {"name": f"User {number}"}


def failing_after(period):
    """``numbered``, raising after ``FAIL_AFTER["count"]`` recipients: a crash mid-run."""
    for index, item in enumerate(numbered(period)):
        if FAIL_AFTER["count"] is not None and index == FAIL_AFTER["count"]:
            raise RuntimeError("the worker died")
        yield item


def slow(period):
    """``numbered``, a tenth of a second per recipient: a run long enough to kill."""
    for item in numbered(period):
        time.sleep(0.1)
        yield item


def with_a_bad_address(period):
    yield "ann@example.com", {"name": "Ann"}
    yield "a@example.com, b@example.com", {"name": "Two"}
    yield "cat@example.com", {"name": "Cat"}


def not_pairs(period):
    yield "ann@example.com"


def customer_context(customer, period):
    return {"name": customer.name, "period": period.isoformat()}


def customers_with_an_email(period):
    return Customer.objects.exclude(email="")
