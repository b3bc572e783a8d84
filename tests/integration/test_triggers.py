"""Triggers against real services: racing transactions on PostgreSQL, delays with beat."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection, transaction
from django.test.utils import override_settings

from tests.integration.helpers import describe, settle, wait_for_status
from tests.testapp.mail import order_paid
from tests.testapp.models import Customer, Order
from tests.workers import start_worker
from transactional_mail.models import Email, EmailStatus, EmailTemplate

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BASE = {"model": "testapp.Order", "template": "order_paid", "to": "customer.email"}


@pytest.fixture
def order(services):
    EmailTemplate.objects.create(
        key="order_paid", subject="Paid {{ object.str }}", html="<p>Thanks</p>"
    ).publish()
    EmailTemplate.objects.create(
        key="review_request", subject="Review {{ object.str }}", html="<p>How was it?</p>"
    ).publish()
    customer = Customer.objects.create(name="Ann", email="ann@example.com")
    return Order.objects.create(customer=customer, number="A-1", total=Decimal("10"))


def test_once_holds_under_two_concurrent_transactions(order, broker_switch):
    """Two transactions firing the same once-only trigger at the same moment queue one
    email: both pass the look-up before either commits, and the unique key decides."""
    triggers = {
        "paid": {
            "signal": "tests.testapp.mail.order_paid",
            "instance_arg": "order",
            "template": "order_paid",
            "to": "customer.email",
            "once": True,
        }
    }
    both_inserted = threading.Barrier(2, timeout=10)
    errors = []

    def request(first: bool):
        try:
            with transaction.atomic():
                mine = Order.objects.select_related("customer").get(pk=order.pk)
                if first:
                    order_paid.send(sender=Order, order=mine)  # inserts, holds the key...
                    both_inserted.wait()
                    time.sleep(0.5)  # ...while the other insert blocks on it
                else:
                    both_inserted.wait()
                    order_paid.send(sender=Order, order=mine)  # blocks, then finds the row
        except Exception as err:  # a thread's assert would not fail the test: collect
            errors.append(err)
        finally:
            connection.close()

    mail = {"DEFAULT_FROM_EMAIL": "shop@example.com", "TRIGGERS": triggers}
    broker_switch.down()  # no task reaches a broker: only the unique key decides
    with override_settings(TRANSACTIONAL_MAIL=mail):
        threads = [threading.Thread(target=request, args=(first,)) for first in (True, False)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert errors == []
    emails = Email.objects.filter(trigger_key="paid")
    assert emails.count() == 1, [describe(e.pk) for e in emails]
    assert emails.get().idempotency_key == (
        f"trigger:paid:testapp.order:{order.pk}:ann@example.com"
    )
    assert emails.get().status == EmailStatus.QUEUED  # not a failed duplicate either


def test_delayed_email_is_sent_after_its_delay_and_cancelled_when_refunded(
    order, make_env, process_logs, scratch_broker, broker_switch, esp
):
    """A worker with beat sends the delayed email when due, not before, with the broker
    down at commit (no eta task at all), and cancels the one whose order was refunded."""
    triggers = {
        "review": {
            **BASE,
            "template": "review_request",
            "on": "changed",
            "field": "status",
            "to_value": "delivered",
            "delay": "4s",
            "cancel_when": {"status": "refunded"},
        }
    }
    mail = {"DEFAULT_FROM_EMAIL": "shop@example.com", "TRIGGERS": triggers}
    with override_settings(TRANSACTIONAL_MAIL={**mail, "SWEEP_INTERVAL": 1}):
        # The beat rows as `migrate` writes them on a site sweeping every second.
        emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    worker = start_worker(
        "trigger-beat", make_env("redis-scratch", TRIGGERS=triggers), process_logs, beat=True
    )
    try:
        refunded = Order.objects.create(customer=order.customer, number="A-2", total=Decimal("5"))
        broker_switch.down()  # no eta task at all: beat's sweep must send it when due
        with override_settings(TRANSACTIONAL_MAIL=mail):
            for each in (order, refunded):
                with transaction.atomic():
                    each.status = "delivered"
                    each.save()
        kept, cancelled = (Email.objects.get(source_object_id=str(o.pk)) for o in (order, refunded))
        assert kept.status == cancelled.status == EmailStatus.SCHEDULED, describe(kept.pk)
        Order.objects.filter(pk=refunded.pk).update(status="refunded")

        settle(2)  # half the delay: nothing may have gone out yet
        assert Email.objects.get(pk=kept.pk).status == EmailStatus.SCHEDULED
        assert esp.requests == []

        kept = wait_for_status(kept, EmailStatus.SENT, timeout=40)
        cancelled = wait_for_status(cancelled, EmailStatus.CANCELLED, timeout=40)
        assert (kept.sent_at - kept.created_at).total_seconds() >= 4
        assert "now meets the “cancel_when” condition of the trigger" in cancelled.last_error
        assert [r.email_ids for r in esp.requests] == [[str(kept.pk)]]
    finally:
        worker.stop()
