"""Hostile digest ``context`` callables on the path that runs inside the save: a window's
first event sent at once. Like any failing trigger, the save goes on and a failed row
says why; replacing the items or the count is not possible."""

from __future__ import annotations

import pytest
from django.db import transaction

from tests.testapp.models import Order
from tests.triggers.conftest import customer  # noqa: F401
from tests.triggers.helpers import emails, new_order
from tests.triggers.test_digests import DIGEST, digest_template  # noqa: F401
from transactional_mail.models import DigestWindow, EmailStatus

pytestmark = pytest.mark.django_db


def raising(recipient, items, count):
    raise RuntimeError("the reader's profile is gone")


def not_a_dict(recipient, items, count):
    return [("reader", recipient)]


def not_json(recipient, items, count):
    return {"reader": object()}


def replacing(recipient, items, count):
    items[0]["number"] = "edited"  # in place: the email's items must not be these
    items.clear()
    return {"items": "nothing", "count": 10 ** 9, 1: "one"}


def first_at_once(use_triggers, context):
    use_triggers(digest={**DIGEST, "digest": {
        "window": "1h", "first_at_once": True,
        "context": f"tests.attacks.test_digest_context_attacks.{context}"}})


@pytest.mark.parametrize("context, reason", [
    ("raising", "the reader's profile is gone"),
    ("not_a_dict", "the digest context callable returned list; it must return a dict."),
    ("not_json", "reader"),
])
def test_a_failing_context_in_the_save_leaves_the_save_and_a_failed_row(
        use_triggers, customer, digest_template, context, reason):  # noqa: F811
    first_at_once(use_triggers, context)
    with transaction.atomic():
        order = new_order(customer, "A-1")
    assert Order.objects.filter(pk=order.pk).exists()
    [email] = emails()
    assert email.status == EmailStatus.FAILED
    assert reason in email.last_error
    assert email.to == ["ann@example.com"]
    # Like any trigger failure in a save: the event is this row, no window opened.
    assert not DigestWindow.objects.exists()


def test_a_context_cannot_replace_the_items_nor_the_count(
        use_triggers, customer, digest_template):  # noqa: F811
    first_at_once(use_triggers, "replacing")
    new_order(customer, "A-1")
    [email] = emails()
    assert email.status == EmailStatus.QUEUED
    assert email.context["count"] == 1
    assert email.context["1"] == "one"
    assert [item["number"] for item in email.context["items"]] == ["A-1"]
