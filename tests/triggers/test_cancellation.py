"""The send-time re-check: delays, when and cancel_when when the email is due."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from tests.factories import make_template
from tests.testapp.mail import order_paid
from tests.testapp.models import Order
from tests.triggers.helpers import BASE, ORDER_PAID, emails, new_order
from transactional_mail import delivery
from transactional_mail.models import Email, EmailStatus

pytestmark = pytest.mark.django_db


class TestDelaysAndCancellation:
    def test_delay_schedules_and_cancel_when_cancels_at_send_time(self, use_triggers, customer,
                                                                  esp):
        make_template("review_request")
        use_triggers(review={**BASE, "template": "review_request", "on": "changed",
                             "field": "status", "to_value": "delivered", "delay": "7d",
                             "cancel_when": "tests.testapp.mail.is_refunded"})
        order = new_order(customer)
        order.status = "delivered"
        order.save()
        [email] = emails()
        assert email.status == EmailStatus.SCHEDULED
        week = timezone.now() + datetime.timedelta(days=7)
        assert abs((email.next_attempt_at - week).total_seconds()) < 5
        assert delivery.deliver(email.pk).status is None  # not due yet

        order.status = "refunded"
        order.save()
        Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
        assert delivery.deliver(email.pk).status == EmailStatus.CANCELLED
        email.refresh_from_db()
        assert "now meets the “cancel_when” condition of the trigger" in email.last_error
        assert esp.requests == []

    def test_delayed_email_rechecks_when(self, use_triggers, customer, esp):
        use_triggers(paid={**BASE, "on": "updated", "when": {"status": "paid"},
                           "delay": "1h"})
        order = new_order(customer)
        order.status = "paid"
        order.save()
        order.status = "created"
        order.save()
        [email] = emails()
        Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
        assert delivery.deliver(email.pk).status == EmailStatus.CANCELLED
        email.refresh_from_db()
        assert email.last_error == (f"Cancelled: the order {order} no longer meets the "
                                    "“when” condition of the trigger “paid”.")

    def test_a_delayed_signal_trigger_does_not_recheck_when(self, use_triggers, customer, esp):
        """Its 'when' needed the signal's arguments, gone by send time: not re-asked."""
        def paid_by_card(order, method=None) -> bool:
            return method == "card"

        use_triggers(paid={**BASE, "model": None, "signal": ORDER_PAID, "instance_arg": "order",
                           "when": paid_by_card, "delay": "1h"})
        order = new_order(customer)
        order_paid.send(sender=Order, order=order, method="card")
        [email] = emails()
        Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
        assert delivery.deliver(email.pk).status == EmailStatus.SENT

    def test_delayed_email_for_a_deleted_object_is_cancelled(self, use_triggers, customer, esp):
        use_triggers(later={**BASE, "on": "created", "delay": "2h"})
        order = new_order(customer)
        [email] = emails()
        order.delete()
        Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
        assert delivery.deliver(email.pk).status == EmailStatus.CANCELLED

    def test_undelayed_email_without_cancel_when_is_sent(self, use_triggers, customer, esp):
        use_triggers(order_confirmation={**BASE, "on": "created"})
        new_order(customer)
        [email] = emails()
        assert delivery.deliver(email.pk).status == EmailStatus.SENT


class TestOnceAndCancellationEdges:
    def test_once_key_ignores_the_addresses_spelling(self, use_triggers, customer):
        """"Ann <ANN@example.com>" is the same recipient as ann@example.com."""
        use_triggers(paid={**BASE, "on": "updated", "once": True})
        order = new_order(customer)
        order.save()
        customer.email = "Ann <ANN@Example.com>"
        customer.save()
        order.save()
        assert len(emails()) == 1

    def test_undelayed_email_does_not_recheck_when(self, use_triggers, customer, esp):
        """Only delayed emails re-check 'when'; cancel_when alone is checked here."""
        use_triggers(paid={**BASE, "on": "created", "when": {"status": "paid"},
                           "cancel_when": "tests.testapp.mail.is_refunded"})
        order = new_order(customer, status="paid")
        Order.objects.filter(pk=order.pk).update(status="created")
        [email] = emails()
        assert delivery.deliver(email.pk).status == EmailStatus.SENT

    def test_delayed_email_about_a_deleted_object_is_sent(self, use_triggers, customer, esp):
        """A "deleted" trigger's object is gone by design: not a reason to cancel."""
        use_triggers(gone={**BASE, "on": "deleted", "delay": "1h",
                           "context": ["number"]})
        new_order(customer).delete()
        [email] = emails()
        Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
        assert delivery.deliver(email.pk).status == EmailStatus.SENT
