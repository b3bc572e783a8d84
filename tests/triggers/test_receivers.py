"""Receivers: model events and signals fire triggers; old values; the admin's trigger rows."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.core.management import call_command
from django.db import transaction
from django.test import RequestFactory

from tests.factories import make_template
from tests.testapp.models import Customer, Order
from tests.triggers.helpers import BASE, emails, new_order
from transactional_mail.exceptions import ConfigurationError
from transactional_mail.models import Email, EmailStatus, Trigger
from transactional_mail.triggers.receivers import sync_trigger_rows

pytestmark = pytest.mark.django_db


class TestModelEvents:
    def test_created_queues_one_email_with_the_default_context(self, use_triggers, customer):
        use_triggers(order_confirmation={**BASE, "on": "created"})
        order = new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.QUEUED
        assert email.trigger_key == "order_confirmation"
        assert email.to == ["ann@example.com"]
        assert email.context == {"object": {"id": order.pk, "str": "Order A-1"}}
        assert email.source_object_id == str(order.pk)
        assert email.source_content_type.model_class() is Order
        order.total = Decimal("20")
        order.save()
        assert len(emails()) == 1  # "created" only

    def test_updated_fires_on_every_update_not_on_create(self, use_triggers, customer):
        use_triggers(update={**BASE, "on": "updated"})
        order = new_order(customer)
        assert emails() == []
        order.save()
        order.save()
        assert len(emails()) == 2

    def test_deleted_keeps_the_context_and_the_deleted_objects_id(self, use_triggers,
                                                                  customer):
        use_triggers(gone={**BASE, "on": "deleted", "context": ["number", "customer.name"]})
        order = new_order(customer)
        order_id = order.pk
        order.delete()
        [email] = emails()
        assert email.context == {"number": "A-1", "customer": {"name": "Ann"}}
        assert email.source_object_id == str(order_id)
        assert email.source_content_type.model_class() is Order

    def test_changed_fires_only_when_the_field_really_changed(self, use_triggers, customer,
                                                               django_assert_num_queries):
        use_triggers(shipped={**BASE, "template": "shipping_update", "on": "changed",
                              "field": "status", "to_value": "shipped",
                              "context": "tests.testapp.mail.order_context"})
        order = new_order(customer)
        order.status = "paid"
        order.save()
        assert emails() == []
        warm = new_order(customer, "W-1")  # fills the template, switch and content type caches
        warm.status = "shipped"
        warm.save()
        Email.objects.all().delete()
        order = Order.objects.select_related("customer").get(pk=order.pk)
        order.status = "shipped"
        with django_assert_num_queries(2):  # the UPDATE and the Email INSERT: no extra read
            order.save()
        [email] = emails()
        assert email.template_key == "shipping_update"
        assert email.context["status"] == "shipped"
        assert email.context["customer"] == {"name": "Ann"}
        order.save()  # saved again, unchanged
        order.status = "delivered"
        order.save()  # changed, but not to "shipped"
        assert len(emails()) == 1

    def test_changed_with_from_value(self, use_triggers, customer):
        use_triggers(refund={**BASE, "on": "changed", "field": "status",
                             "from_value": "paid", "to_value": "refunded"})
        order = new_order(customer, status="created")
        order.status = "refunded"
        order.save()
        assert emails() == []
        order.status = "paid"
        order.save()
        order.status = "refunded"
        order.save()
        assert len(emails()) == 1

    def test_changed_respects_update_fields(self, use_triggers, customer):
        use_triggers(shipped={**BASE, "on": "changed", "field": "status"})
        order = new_order(customer)
        order.status = "shipped"
        order.save(update_fields=["total"])  # status not written: no event
        assert emails() == []
        order.save(update_fields=["status"])
        assert len(emails()) == 1

    def test_changed_on_a_deferred_field_reads_the_old_value_once(self, use_triggers, customer):
        use_triggers(shipped={**BASE, "on": "changed", "field": "status"})
        order = new_order(customer)
        order = Order.objects.only("pk", "customer").get(pk=order.pk)
        order.status = "shipped"
        order.save()
        assert len(emails()) == 1

    def test_queryset_update_sends_no_signal_and_so_no_email(self, use_triggers, customer):
        """Documented: QuerySet.update() bypasses model signals."""
        use_triggers(shipped={**BASE, "on": "changed", "field": "status"})
        new_order(customer)
        Order.objects.update(status="shipped")
        assert emails() == []

    def test_loaddata_raw_saves_are_not_events(self, use_triggers, customer, tmp_path):
        use_triggers(order_confirmation={**BASE, "on": "created"})
        fixture = tmp_path / "orders.json"
        fixture.write_text(json.dumps([{"model": "testapp.order", "pk": 50, "fields": {
            "customer": customer.pk, "number": "F-1", "total": "1.00", "status": "paid",
            "created_at": "2026-01-01T00:00:00Z"}}]))
        call_command("loaddata", str(fixture), verbosity=0)
        assert emails() == []

    def test_rolled_back_save_queues_nothing(self, use_triggers, customer):
        use_triggers(order_confirmation={**BASE, "on": "created"})
        with pytest.raises(RuntimeError), transaction.atomic():
            new_order(customer)
            raise RuntimeError("payment failed")
        assert emails() == []


class TestSignals:
    def test_login_alert_from_a_custom_signal_with_request_arguments(self, use_triggers):
        make_template("login_alert", subject="New sign-in")
        use_triggers(login_alert={"signal": "django.contrib.auth.signals.user_logged_in",
                                  "instance_arg": "user", "template": "login_alert",
                                  "to": "email", "context": "tests.testapp.mail.login_context"})
        user = get_user_model().objects.create_user("ann", "ann@example.com", "pw")
        request = RequestFactory().get("/", HTTP_USER_AGENT="Firefox on Linux")
        user_logged_in.send(sender=type(user), request=request, user=user)
        [email] = emails()
        assert email.to == ["ann@example.com"]
        assert email.context == {"username": "ann", "device": "Firefox on Linux"}
        assert email.source_object_id == str(user.pk)


class TestSwitches:
    def test_migrate_creates_rows_and_a_disabled_trigger_writes_nothing(self, use_triggers,
                                                                        customer):
        use_triggers(order_confirmation={**BASE, "on": "created"})
        sync_trigger_rows()
        switch = Trigger.objects.get(key="order_confirmation")
        assert switch.enabled
        switch.enabled = False
        switch.save()
        new_order(customer)
        assert emails() == []
        switch.enabled = True
        switch.save()
        new_order(customer, "A-2")
        assert len(emails()) == 1

    def test_admin_lists_triggers_with_counts(self, use_triggers, customer, admin_client):
        use_triggers(order_confirmation={**BASE, "on": "created"})
        new_order(customer)
        response = admin_client.get("/admin/transactional_mail/trigger/")
        assert response.status_code == 200
        content = response.content.decode()
        assert "order_confirmation" in content
        assert "testapp.Order created" in content
        row = response.context["cl"].result_list[0]
        assert (row.sent_count, row.failed_count) == (0, 0)
        Email.objects.update(status=EmailStatus.SENT)
        row = admin_client.get("/admin/transactional_mail/trigger/").context["cl"].result_list[0]
        assert row.sent_count == 1
        change = admin_client.get(f"/admin/transactional_mail/trigger/{row.pk}/change/")
        assert "customer.email" in change.content.decode()

    def test_admin_list_tells_triggers_on_the_same_field_apart(self, use_triggers, customer,
                                                              admin_client):
        use_triggers(
            order_confirmation={**BASE, "on": "changed", "field": "status", "to_value": "paid"},
            shipping_update={**BASE, "on": "changed", "field": "status", "to_value": "shipped",
                             "template": "shipping_update"},
        )
        content = admin_client.get("/admin/transactional_mail/trigger/").content.decode()
        assert "testapp.Order status changed to &#x27;paid&#x27;" in content
        assert "testapp.Order status changed to &#x27;shipped&#x27;" in content


class TestReviewFixes:
    def test_no_post_delete_receiver_without_a_deleted_trigger(self, use_triggers, customer):
        """Any post_delete receiver disables Django's fast delete for that model."""
        from django.db.models.signals import post_delete

        use_triggers(order_confirmation={**BASE, "on": "created"})
        assert not post_delete.has_listeners(Order)
        use_triggers(gone={**BASE, "on": "deleted"})
        assert post_delete.has_listeners(Order)
        assert not post_delete.has_listeners(Customer)

    def test_broken_definitions_refuse_saves_before_writing(self, use_triggers, customer):
        """Until check's error is fixed, a save raises it before its INSERT: no row is
        committed without the email it should have queued."""
        use_triggers(bad={**BASE, "model": "testapp.Ordr", "on": "created"})
        with pytest.raises(ConfigurationError, match="'testapp.Ordr' is not an installed"):
            Customer.objects.create(name="Bo", email="bo@example.com")
        with pytest.raises(ConfigurationError), transaction.atomic():
            customer.delete()
        assert list(Customer.objects.values_list("name", flat=True)) == ["Ann"]
        use_triggers(order_confirmation={**BASE, "on": "created"})
        new_order(customer)
        assert len(emails()) == 1

    def test_trigger_rows_cannot_be_deleted_in_the_admin(self, use_triggers, admin_client):
        use_triggers(order_confirmation={**BASE, "on": "created"})
        sync_trigger_rows()
        row = Trigger.objects.get()
        response = admin_client.get(f"/admin/transactional_mail/trigger/{row.pk}/delete/")
        assert response.status_code == 403


class TestModelEventEdges:
    def test_changed_does_not_fire_when_the_object_is_created(self, use_triggers, customer):
        """A "changed" trigger is about an existing row, never an INSERT."""
        use_triggers(shipped={**BASE, "on": "changed", "field": "status"})
        order = Order(customer=customer, number="A-1", total=Decimal("1"))
        order.status = "shipped"
        order.save()
        assert emails() == []

    def test_changed_on_an_instance_built_by_hand_compares_with_the_row(self, use_triggers,
                                                                       customer):
        """Order(pk=...) holds what the caller set, not what the row holds."""
        use_triggers(shipped={**BASE, "on": "changed", "field": "status",
                              "to_value": "shipped"})
        order = new_order(customer)  # status "created" in the row
        Order(pk=order.pk, customer=customer, number="A-1", total=order.total,
              created_at=order.created_at, status="shipped").save()
        assert len(emails()) == 1

    def test_update_fields_by_attname_remembers_the_saved_value(self, use_triggers, customer):
        """save(update_fields=["customer_id"]) wrote the value: a later unchanged
        save is no change."""
        use_triggers(moved={**BASE, "on": "changed", "field": "customer"})
        other = Customer.objects.create(name="Bo", email="bo@example.com")
        order = new_order(customer)
        order.customer = other
        order.save(update_fields=["customer_id"])
        Email.objects.all().delete()
        order.save()
        assert emails() == []

    def test_update_fields_by_attname_fires_changed(self, use_triggers, customer):
        """update_fields may name the column (customer_id): the field was written."""
        use_triggers(moved={**BASE, "on": "changed", "field": "customer"})
        other = Customer.objects.create(name="Bo", email="bo@example.com")
        order = new_order(customer)
        order.customer = other
        order.save(update_fields=["customer_id"])
        assert len(emails()) == 1

    def test_loaddata_works_while_triggers_are_broken(self, use_triggers, customer, tmp_path):
        """Fixtures are not events: a broken trigger must not block loaddata."""
        use_triggers(bad={**BASE, "model": "testapp.Ordr", "on": "created"})
        fixture = tmp_path / "customers.json"
        fixture.write_text(json.dumps([{"model": "testapp.customer", "pk": 50, "fields": {
            "name": "Fix", "email": "fix@example.com", "language": ""}}]))
        call_command("loaddata", str(fixture), verbosity=0)
        assert Customer.objects.filter(pk=50).exists()


class TestAdminColumns:
    def event(self, key):
        sync_trigger_rows()
        row, _ = Trigger.objects.get_or_create(key=key)
        return admin.site._registry[Trigger].event(row)

    def test_event_column(self, use_triggers):
        """from_value is shown, a signal by its name, a key gone from settings as such."""
        use_triggers(refund={**BASE, "on": "changed", "field": "status",
                             "from_value": "paid", "to_value": "refunded"},
                     login={"signal": "django.contrib.auth.signals.user_logged_in",
                            "instance_arg": "user", "template": "x", "to": "email"})
        assert self.event("refund") == "testapp.Order status changed from 'paid' to 'refunded'"
        assert self.event("login") == "user_logged_in"
        assert str(self.event("removed")) == "not in settings any more"

    def test_delivered_emails_count_as_sent(self, use_triggers, customer, admin_client):
        use_triggers(order_confirmation={**BASE, "on": "created"})
        new_order(customer)
        Email.objects.update(status=EmailStatus.DELIVERED)
        row = admin_client.get("/admin/transactional_mail/trigger/").context["cl"].result_list[0]
        assert (row.sent_count, row.failed_count) == (1, 0)
