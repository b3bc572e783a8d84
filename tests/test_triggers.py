"""Triggers: model events and signals queue emails through the outbox."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone

from tests.factories import make_template
from tests.testapp.mail import order_paid
from tests.testapp.models import Customer, Order
from transactional_mail import delivery
from transactional_mail.exceptions import ConfigurationError
from transactional_mail.models import Email, EmailStatus, Trigger
from transactional_mail.triggers.definitions import parse_trigger
from transactional_mail.triggers.dry_runs import dry_run
from transactional_mail.triggers.receivers import sync_trigger_rows

pytestmark = pytest.mark.django_db

BASE = {"model": "testapp.Order", "template": "order_confirmation", "to": "customer.email"}
ORDER_PAID = "tests.testapp.mail.order_paid"


@pytest.fixture
def use_triggers(settings):
    def use(**definitions):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "TRIGGERS": definitions}
    return use


@pytest.fixture
def customer():
    make_template()
    make_template("shipping_update", subject="Order {{ number }} shipped")
    return Customer.objects.create(name="Ann", email="ann@example.com", language="fr")


def new_order(customer, number="A-1", **fields) -> Order:
    fields.setdefault("total", Decimal("9.90"))
    return Order.objects.create(customer=customer, number=number, **fields)


def emails(**filters) -> list[Email]:
    return list(Email.objects.filter(**filters).order_by("pk"))


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


class TestConditionsAndRecipients:
    def test_when_callable(self, use_triggers, customer):
        use_triggers(paid={**BASE, "on": "created", "when": "tests.testapp.mail.is_paid"})
        new_order(customer, "A-1", status="created")
        new_order(customer, "A-2", status="paid")
        assert [e.source_object_id for e in emails()] == [
            str(Order.objects.get(number="A-2").pk)]

    def test_when_lookup_dict(self, use_triggers, customer):
        use_triggers(big={**BASE, "on": "created",
                          "when": {"total__gte": Decimal("100"), "customer__language": "fr",
                                   "status__in": ["paid", "created"]}})
        new_order(customer, "A-1", total=Decimal("50"))
        new_order(customer, "A-2", total=Decimal("150"))
        assert len(emails()) == 1

    def test_list_of_paths_and_callable_recipients_send_one_email_each(self, use_triggers,
                                                                       customer):
        use_triggers(a={**BASE, "on": "created", "to": ["customer.email"]},
                     b={**BASE, "on": "created", "to": "tests.testapp.mail.all_addresses"})
        new_order(customer)
        assert sorted(tuple(e.to) for e in emails()) == [
            ("ann@example.com",), ("ann@example.com",), ("sales@example.com",)]

    @pytest.mark.parametrize(("address", "problem"), [
        ("", "empty"), ("not-an-address", "not an email address"),
    ])
    def test_bad_recipient_is_logged_never_raised(self, use_triggers, customer, address,
                                                  problem):
        use_triggers(order_confirmation={**BASE, "on": "created"})
        customer.email = address
        customer.save()
        order = new_order(customer)  # the save succeeds
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert problem in email.last_error
        assert "customer.email" in email.last_error
        assert email.source_object_id == str(order.pk)

    def test_failing_context_callable_is_logged_never_raised(self, use_triggers, customer):
        use_triggers(order_confirmation={**BASE, "on": "created",
                                         "context": "tests.testapp.mail.explode"})
        new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert "RuntimeError: the context service is down" in email.last_error
        assert email.to == ["ann@example.com"]  # found when support searches the address

    def test_unknown_template_is_logged_never_raised(self, use_triggers, customer):
        use_triggers(oops={**BASE, "on": "created", "template": "no_such_template"})
        new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert "TemplateNotFound" in email.last_error

    def test_language_options_and_attachments(self, use_triggers, customer, esp):
        use_triggers(order_confirmation={
            **BASE, "on": "created", "language": "customer.language",
            "from_email": "Orders <orders@example.com>", "reply_to": "help@example.com",
            "category": "receipts", "tags": ["orders"],
            "attachments": "tests.testapp.mail.invoice",
        })
        new_order(customer)
        [email] = emails()
        assert email.language == "fr"
        assert email.from_email == "Orders <orders@example.com>"
        assert email.reply_to == ["help@example.com"]
        assert email.category == "receipts"
        assert email.tags == ["orders"]
        assert email.attachments[0]["filename"] == "invoice-A-1.pdf"
        assert delivery.deliver(email.pk).status == EmailStatus.SENT
        assert esp.requests[0].json["Attachments"][0]["Name"] == "invoice-A-1.pdf"

    def test_addresses_can_be_paths_callables_or_literals(self, use_triggers, customer):
        """A string with "@" is an address; any other string a path or dotted callable."""
        use_triggers(order_confirmation={
            **BASE, "on": "created", "to": ["customer.email", "Ops <ops@example.com>"],
            "from_email": "tests.testapp.mail.sender",
            "reply_to": ["customer.email", "help@example.com"],
        })
        new_order(customer)
        found = emails()
        assert [email.to for email in found] == [["ann@example.com"],
                                                 ["Ops <ops@example.com>"]]
        assert {email.from_email for email in found} == {"Ann at the shop <shop@example.com>"}
        assert all(email.reply_to == ["ann@example.com", "help@example.com"]
                   for email in found)

    def test_blank_reply_to_falls_back_and_a_bad_one_fails_the_event(self, use_triggers,
                                                                     customer):
        use_triggers(order_confirmation={**BASE, "on": "created", "reply_to": "customer.name"})
        customer.name = ""
        new_order(customer, "A-1")
        customer.name = "not an address"
        new_order(customer, "A-2")
        blank, bad = emails()
        assert (blank.status, blank.reply_to) == (EmailStatus.QUEUED, [])
        assert bad.status == EmailStatus.FAILED
        assert bad.last_error == (
            "Trigger 'order_confirmation' failed: TriggerError: reply_to 'not an address' is "
            "not an email address; check the trigger's 'reply_to' ('customer.name').")


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
        assert "'cancel_when' is true" in email.last_error
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


class TestOnce:
    def test_once_sends_one_email_per_object_and_recipient(self, use_triggers, customer):
        use_triggers(paid={**BASE, "on": "updated", "when": {"status": "paid"}, "once": True})
        order = new_order(customer)
        order.status = "paid"
        order.save()
        order.save()
        order.save()
        other = new_order(customer, "A-2", status="paid")
        other.save()
        assert len(emails(trigger_key="paid")) == 2
        assert emails()[0].idempotency_key == (
            f"trigger:paid:testapp.order:{order.pk}:ann@example.com")


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


class TestDryRun:
    def test_dry_run_says_what_would_fire_and_writes_nothing(self, use_triggers, customer):
        use_triggers(
            order_confirmation={**BASE, "on": "created",
                                "context": "tests.testapp.mail.order_context"},
            paid_only={**BASE, "on": "created", "when": "tests.testapp.mail.is_paid"},
            shipped={**BASE, "on": "changed", "field": "status", "to_value": "shipped"},
        )
        order = new_order(customer)
        Email.objects.all().delete()
        plans = {plan.trigger: plan for plan in dry_run(order, "created")}
        assert plans["order_confirmation"].fires
        assert plans["order_confirmation"].recipients == ["ann@example.com"]
        assert plans["order_confirmation"].context["number"] == "A-1"
        assert not plans["paid_only"].fires
        assert "'when'" in plans["paid_only"].reason
        assert "shipped" not in plans
        order.status = "shipped"
        [shipped] = dry_run(order, "changed", old_values={"status": "paid"})
        assert shipped.fires
        assert Email.objects.count() == 0

    def test_dry_run_command_reads_old_values_as_the_field_holds_them(self, use_triggers,
                                                                      customer, capsys):
        use_triggers(big={**BASE, "on": "changed", "field": "customer", "from_value": 999})
        order = new_order(customer)
        call_command("dry_run_triggers", "testapp.Order", str(order.pk), "--event", "changed",
                     "--old", "customer=999")
        assert "big: fires" in capsys.readouterr().out
        call_command("dry_run_triggers", "testapp.Order", str(order.pk), "--event", "changed")
        assert ("big: does not fire (the old value of 'customer' is not given: "
                "--old customer=VALUE)") in capsys.readouterr().out
        with pytest.raises(CommandError, match="has no field 'nope'"):
            call_command("dry_run_triggers", "testapp.Order", str(order.pk), "--old", "nope=1")

    def test_dry_run_command(self, use_triggers, customer, capsys):
        use_triggers(
            order_confirmation={**BASE, "on": "created", "reply_to": "help@example.com"},
            broken={**BASE, "on": "created", "context": "tests.testapp.mail.explode"},
        )
        order = new_order(customer)
        count = Email.objects.count()
        call_command("dry_run_triggers", "testapp.Order", str(order.pk))
        out = capsys.readouterr().out
        assert "order_confirmation: fires" in out
        assert "recipients: ann@example.com" in out
        assert "reply_to:   help@example.com" in out
        assert ("broken: does not fire (it fails, and would log a failed email: RuntimeError: "
                "the context service is down)") in out
        assert Email.objects.count() == count


class TestChecks:
    def run(self, settings, **definitions):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "TRIGGERS": definitions}
        from transactional_mail.checks import check_settings

        return [(m.id, m.msg, m.hint) for m in check_settings()]

    def test_valid_triggers_pass(self, settings):
        assert self.run(settings, ok={**BASE, "on": "created", "when": {"status": "paid"},
                                      "context": ["number", "customer.name"],
                                      "to": ["customer.email", "ops@example.com"],
                                      "from_email": "tests.testapp.mail.sender",
                                      "reply_to": "Help <help@example.com>"}) == []

    def test_every_mistake_is_reported_with_a_hint(self, settings):
        found = self.run(
            settings,
            a={**BASE, "model": "testapp.Ordr", "on": "created"},
            b={**BASE, "on": "changed", "field": "stauts"},
            c={**BASE, "on": "created", "when": "tests.testapp.mail.nope"},
            d={**BASE, "on": "created", "templat": "x"},
            e={**BASE, "on": "created", "template": "Order Confirmation"},
            f={**BASE, "on": "created", "to": "customer.emial"},
            g={**BASE, "on": "created", "context": "tests.testapp.mail.missing"},
            h={"signal": "django.contrib.auth.signals.nope", "template": "x", "to": "email"},
            i={**BASE, "on": "saved"},
            j={**BASE, "on": "created", "delay": "soon"},
            k={**BASE, "on": "created", "reply_to": ["help@example.com", "customer.mail"]},
            m={"model": "testapp.Order", "on": "created", "to": "customer.email"},
            n={**BASE, "on": "changed", "field": "status", "to_value": "shiped"},
            o={**BASE, "on": "created", "context": "tests.testapp.broken_mail.context"},
            p={**BASE, "on": "created", "reply_to": "help@example", "once": "yes"},
        )
        messages = {msg.split("]:")[0].split("[")[-1].strip("'"): (msg, hint)
                    for _, msg, hint in found}
        assert all(check_id == "transactional_mail.E009" for check_id, _, _ in found)
        assert messages["a"] == (
            "TRANSACTIONAL_MAIL['TRIGGERS']['a']: 'model' 'testapp.Ordr' is not an installed "
            "model.", "Did you mean 'testapp.Order'?")
        assert messages["b"][1] == "Did you mean 'status'?"
        assert "'when' 'tests.testapp.mail.nope' is neither" in messages["c"][0]
        assert messages["d"] == ("TRANSACTIONAL_MAIL['TRIGGERS']['d']: unknown key 'templat'.",
                                 "Did you mean 'template'?")
        assert "must be a template key (a slug)" in messages["e"][0]
        assert "'to' 'customer.emial'" in messages["f"][0]
        assert "does not import as a callable" in messages["g"][0]
        assert "does not import as a Django Signal" in messages["h"][0]
        assert "'on' is 'saved'" in messages["i"][0]
        assert "is not a delay" in messages["j"][0]
        assert "'reply_to' 'customer.mail' is neither" in messages["k"][0]
        assert messages["m"][0].endswith("'template' is missing.")
        assert messages["n"] == (
            "TRANSACTIONAL_MAIL['TRIGGERS']['n']: 'to_value' 'shiped' is not a choice of "
            "testapp.Order.status; the trigger would never fire.", "Did you mean 'shipped'?")
        assert messages["o"][0].endswith(
            "'context' 'tests.testapp.broken_mail.context' does not import as a callable "
            "(importing it raised ModuleNotFoundError: No module named 'weasyprint_missing').")
        p_messages = [msg for msg, _ in [(m, h) for _, m, h in found] if "['p']" in msg]
        assert [msg.split("]: ")[1] for msg in p_messages] == [
            "'reply_to' 'help@example' is not an email address.",
            "'once' is 'yes'; it must be True or False."]

    def test_checks_do_not_query_the_database(self, settings, django_assert_num_queries):
        with django_assert_num_queries(0):
            self.run(settings, a={**BASE, "on": "created"})

    def test_registered_with_manage_py_check(self, settings):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                       "TRIGGERS": {"a": {**BASE, "on": "nope"}}}
        assert "transactional_mail.E009" in [m.id for m in checks.run_checks()]


class TestReviewFixes:
    def test_no_post_delete_receiver_without_a_deleted_trigger(self, use_triggers, customer):
        """Any post_delete receiver disables Django's fast delete for that model."""
        from django.db.models.signals import post_delete

        use_triggers(order_confirmation={**BASE, "on": "created"})
        assert not post_delete.has_listeners(Order)
        use_triggers(gone={**BASE, "on": "deleted"})
        assert post_delete.has_listeners(Order)
        assert not post_delete.has_listeners(Customer)

    def test_changed_on_a_reverse_relation_is_refused(self, settings):
        found = TestChecks().run(settings, a={"model": "testapp.Customer", "on": "changed",
                                              "field": "orders", "template": "x",
                                              "to": "email"})
        assert "'field' 'orders' is not a field of testapp.Customer" in found[0][1]

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

    def test_signal_trigger_mistakes(self, settings):
        found = TestChecks().run(settings, a={
            "signal": "django.contrib.auth.signals.user_logged_in", "sender": "auth.Usr",
            "on": "created", "template": "x", "to": "email"})
        messages = " ".join(message for _, message, _ in found)
        assert "'on' only go with 'model'" in messages
        assert "'sender' 'auth.Usr' is neither an installed model" in messages

    def test_a_misspelt_callable_on_a_signal_trigger_is_reported(self, settings):
        """A signal's instance cannot be checked, but a path into an app's package can."""
        found = TestChecks().run(settings, a={
            "signal": "django.contrib.auth.signals.user_logged_in", "instance_arg": "user",
            "when": "tests.testapp.mail.is_new_devic", "template": "x", "to": "email"})
        assert [message.split("]: ")[1] for _, message, _ in found] == [
            "'when' 'tests.testapp.mail.is_new_devic' does not import as a callable."]

    def test_too_long_values_are_checked_and_never_abort_the_save(self, use_triggers, customer,
                                                                   settings):
        long_key = "k" * 101
        found = TestChecks().run(settings, **{long_key: {**BASE, "on": "created"}},
                                 b={**BASE, "on": "created", "category": "c" * 51})
        assert len(found) == 2
        # A value only known at the event: a language path that yields 20 characters.
        use_triggers(b={**BASE, "on": "created", "language": "customer.name"})
        customer.name = "x" * 20
        customer.save()
        with transaction.atomic():
            new_order(customer)  # the save goes through, on PostgreSQL too
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert "language is 20 characters long; at most 15 fit" in email.last_error

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


class TestRecipientEdges:
    def test_lt_and_isnull_lookups(self, use_triggers, customer):
        """total__lt is strict; isnull False means "has a value"."""
        use_triggers(small={**BASE, "on": "created", "when": {"total__lt": Decimal("100")}},
                     known={**BASE, "on": "created", "when": {"status__isnull": False}})
        new_order(customer, "A-1", total=Decimal("100"))
        assert [e.trigger_key for e in emails()] == ["known"]

    def test_a_callable_with_kwargs_gets_every_signal_argument(self, use_triggers, customer):
        """A context(instance, **kwargs) sees all the signal's arguments."""
        def context(order, **kwargs):
            return {"arguments": sorted(kwargs)}

        use_triggers(paid={**BASE, "model": None, "signal": ORDER_PAID,
                           "instance_arg": "order", "context": context})
        order_paid.send(sender=Order, order=new_order(customer), note="x")
        [email] = emails()
        assert email.context == {"arguments": ["note"]}

    def test_a_callable_may_return_a_set_of_addresses(self, use_triggers, customer):
        use_triggers(order_confirmation={
            **BASE, "on": "created",
            "to": lambda order: {order.customer.email, "sales@example.com"}})
        new_order(customer)
        assert sorted(e.to[0] for e in emails()) == ["ann@example.com", "sales@example.com"]
        assert all(e.status == EmailStatus.QUEUED for e in emails())

    def test_signal_trigger_only_accepts_its_sender(self, use_triggers, customer):
        use_triggers(paid={**BASE, "model": None, "signal": ORDER_PAID,
                           "instance_arg": "order", "sender": "testapp.Order"})
        order = new_order(customer)
        order_paid.send(sender=Customer, order=order)
        assert emails() == []
        order_paid.send(sender=Order, order=order)
        assert len(emails()) == 1

    def test_the_same_recipient_twice_gets_one_email(self, use_triggers, customer):
        """One email per mailbox, however the address is spelt."""
        use_triggers(order_confirmation={
            **BASE, "on": "created",
            "to": ["customer.email", "ann@example.com", " Ann <ANN@Example.com>"]})
        new_order(customer)
        assert [e.to for e in emails()] == [["ann@example.com"]]

    def test_blank_from_email_falls_back_to_the_default(self, use_triggers, customer):
        use_triggers(order_confirmation={**BASE, "on": "created", "from_email": "customer.name"})
        customer.name = ""
        new_order(customer)
        [email] = emails()
        assert (email.status, email.from_email) == (EmailStatus.QUEUED, "Shop <shop@example.com>")

    def test_two_senders_fail_the_event(self, use_triggers, customer):
        use_triggers(order_confirmation={
            **BASE, "on": "created", "from_email": ["a@example.com", "b@example.com"]})
        new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert "from_email gave 2 addresses" in email.last_error

    def test_a_recipient_with_a_line_break_is_named_as_such(self, use_triggers, customer):
        use_triggers(order_confirmation={**BASE, "on": "created"})
        customer.email = "ann@example.com\nBcc: evil@example.com"
        customer.save()
        new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert email.last_error.startswith("Trigger 'order_confirmation': recipient ")
        assert email.last_error.endswith(
            "is not one line: it contains a line feed (LF); check its 'to' "
            "('customer.email').")

    def test_an_empty_recipient_is_logged_without_an_address(self, use_triggers, customer):
        """The log's "to" holds no "" (searching it by address must work)."""
        use_triggers(order_confirmation={**BASE, "on": "created"})
        customer.email = ""
        customer.save()
        new_order(customer)
        [email] = emails()
        assert (email.status, email.to) == (EmailStatus.FAILED, [])

    def test_no_recipient_at_all_is_logged(self, use_triggers, customer):
        use_triggers(order_confirmation={**BASE, "on": "created", "to": lambda order: []})
        new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert "no recipient" in email.last_error

    def test_failed_event_row_lists_only_valid_recipients(self, use_triggers, customer):
        use_triggers(order_confirmation={**BASE, "on": "created",
                                         "to": ["customer.email", "customer.name"],
                                         "context": "tests.testapp.mail.explode"})
        new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert email.to == ["ann@example.com"]

    def test_queue_failure_row_keeps_the_recipient_and_trigger(self, use_triggers, customer):
        """Support finds the failure by address and by trigger."""
        use_triggers(oops={**BASE, "on": "created", "template": "no_such_template"})
        new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert (email.to, email.trigger_key) == (["ann@example.com"], "oops")

    def test_no_language_means_the_default(self, use_triggers, customer):
        """A language callable giving None must not become the language "none"."""
        use_triggers(order_confirmation={**BASE, "on": "created",
                                         "language": lambda order: None})
        new_order(customer)
        [email] = emails()
        assert email.language == ""

    def test_signal_instance_without_a_pk_is_no_source(self, use_triggers, customer):
        """An unsaved instance: no source, and 'once' cannot key on it."""
        use_triggers(paid={**BASE, "model": None, "signal": ORDER_PAID,
                           "instance_arg": "order", "once": True})
        order_paid.send(sender=Order, order=Order(customer=customer, number="X-1"))
        [email] = emails()
        assert email.status == EmailStatus.QUEUED
        assert (email.source_content_type_id, email.source_object_id) == (None, "")
        assert email.idempotency_key is None


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


class TestCheckEdges:
    def test_a_100_character_key_is_valid(self, settings):
        """The Email.trigger_key column holds 100."""
        assert TestChecks().run(settings, **{"k" * 100: {**BASE, "on": "created"}}) == []

    def test_property_paths_are_valid(self, settings):
        """A property (not a field) is checked when it runs."""
        assert TestChecks().run(settings, a={**BASE, "on": "created",
                                             "context": ["pk", "number"]}) == []

    @pytest.mark.parametrize(("extra", "message"), [
        ({"on": "created", "signal": "django.contrib.auth.signals.user_logged_in"},
         "give either 'model' (with 'on') or 'signal'."),
        ({"on": "changed", "field": "status", "from_value": "piad"},
         "'from_value' 'piad' is not a choice of testapp.Order.status"),
        ({"on": "updated", "to_value": "paid"},
         "'field', 'from_value' and 'to_value' only go with 'on': 'changed'."),
        ({"on": "created", "sender": "testapp.Order"},
         "'sender' and 'instance_arg' only go with 'signal'."),
        ({"on": "created", "to": "ann@example.com\nBcc: x@example.com"},
         "is not one line: it contains a line feed (LF)."),
    ])
    def test_misplaced_keys_are_reported(self, settings, extra, message):
        found = TestChecks().run(settings, a={**BASE, **extra})
        assert any(message in msg for _, msg, _ in found), found


class TestDryRunEdges:
    def test_updated_event_includes_changed_triggers(self, use_triggers, customer):
        use_triggers(shipped={**BASE, "on": "changed", "field": "status"})
        order = new_order(customer)
        order.status = "shipped"
        [plan] = dry_run(order, "updated", old_values={"status": "paid"})
        assert plan.fires

    def test_changed_respects_from_value(self, use_triggers, customer):
        use_triggers(refund={**BASE, "on": "changed", "field": "status",
                             "from_value": "paid", "to_value": "refunded"})
        order = new_order(customer, status="refunded")
        [plan] = dry_run(order, "changed", old_values={"status": "created"})
        assert not plan.fires
        assert "did not change as required" in plan.reason

    def test_signal_event_only_runs_that_signals_triggers(self, use_triggers, customer):
        use_triggers(paid={**BASE, "model": None, "signal": ORDER_PAID, "instance_arg": "order"},
                     login={"signal": "django.contrib.auth.signals.user_logged_in",
                            "instance_arg": "user", "template": "order_confirmation",
                            "to": "email"})
        plans = dry_run(new_order(customer), "signal", signal=ORDER_PAID)
        assert [plan.trigger for plan in plans] == ["paid"]

    def test_command_output_details(self, use_triggers, customer, capsys):
        """The output says when nothing listens, names refused recipients, shows the
        delay; --event signal needs --signal."""
        order = new_order(customer)
        use_triggers(later={**BASE, "on": "created", "delay": "2h",
                            "to": ["customer.email", "customer.name"]})
        call_command("dry_run_triggers", "testapp.Order", str(order.pk), "--event", "deleted")
        assert "No trigger listens to deleted on testapp.Order." in capsys.readouterr().out
        call_command("dry_run_triggers", "testapp.Order", str(order.pk))
        out = capsys.readouterr().out
        assert "not sent to 'Ann': not an email address" in out
        assert "delay:      2:00:00" in out
        with pytest.raises(CommandError, match="needs --signal"):
            call_command("dry_run_triggers", "testapp.Order", str(order.pk),
                         "--event", "signal")


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


class TestPrivatePaths:
    """A path never reads an attribute starting with "_" (issue 11, section 5)."""

    def test_dunder_dict_never_puts_the_password_hash_in_a_snapshot(self, use_triggers):
        """On the code before the fix, this wrote a queued row whose context held
        ``__dict__``, the password hash included, and ``check`` said nothing."""
        make_template("welcome")
        use_triggers(welcome={"model": "auth.User", "on": "created", "template": "welcome",
                              "to": "email", "context": ["username", "__dict__"]})
        with pytest.raises(ConfigurationError, match="'__dict__', an attribute starting"):
            get_user_model().objects.create_user("ann", "ann@example.com", "s3cret-pass")
        assert not Email.objects.exists()
        assert not get_user_model().objects.exists()  # refused before anything is written

    @pytest.mark.parametrize(("option", "segment"), [
        ({"to": "customer._password"}, "_password"),
        ({"to": ["customer.email", "_state.db"]}, "_state"),
        ({"from_email": "customer.__dict__"}, "__dict__"),
        ({"reply_to": ["help@example.com", "customer._meta.db_table"]}, "_meta"),
        ({"language": "customer._state.db"}, "_state"),
        ({"when": "_state.adding"}, "_state"),
        ({"when": {"customer___password__isnull": False}}, "_password"),
        ({"cancel_when": "__class__.__name__"}, "__class__"),
        ({"attachments": "customer.__dict__"}, "__dict__"),
        ({"context": ["number", "customer.__dict__"]}, "__dict__"),
    ])
    def test_every_option_that_takes_a_path_refuses_a_private_segment(self, option, segment):
        definition = {**BASE, "on": "created", **option}
        with pytest.raises(ConfigurationError, match=f"reaches '{segment}'"):
            parse_trigger("t", definition)

    def test_a_signal_triggers_paths_are_checked_without_a_model(self):
        with pytest.raises(ConfigurationError, match="reaches '_password'"):
            parse_trigger("t", {"signal": "django.contrib.auth.signals.user_logged_in",
                                         "template": "x", "to": "email",
                                         "context": ["_password"]})

    def test_a_dotted_callable_is_not_a_path(self):
        """Only strings read as attribute paths are checked; a callable is code."""
        trigger = parse_trigger("t", {**BASE, "on": "created",
                                               "when": "operator.__not__"})
        assert trigger.when(None) is True

    def test_the_resolver_refuses_whatever_checks_ran(self, customer):
        """A Trigger built by hand, or fields() in a context callable, cannot leak either."""
        from transactional_mail.snapshots import fields, resolve_path

        with pytest.raises(ConfigurationError, match="reaches '__dict__'"):
            resolve_path(customer, "__dict__")
        with pytest.raises(ConfigurationError, match="reaches '_state'"):
            fields(customer, "name", "_state.db")
        assert resolve_path(customer, "name") == "Ann"

    def test_a_context_callable_reaching_a_private_attribute_fails_the_event(self, use_triggers,
                                                                             customer):
        """The save goes through; the failed row says why, and holds no snapshot."""
        from transactional_mail.snapshots import fields

        use_triggers(order_confirmation={
            **BASE, "on": "created",
            "context": lambda order: fields(order, "number", "customer.__dict__")})
        new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert email.context == {}
        assert email.last_error.startswith(
            "Trigger 'order_confirmation' failed: ConfigurationError: The attribute path "
            "'customer.__dict__' reaches '__dict__'")


class TestTriggerLimits:
    """Trigger emails go through send()'s checks; a refusal is a failed row, not an error
    in the save (issue 11, section 5)."""

    def test_attachments_over_the_limit_fail_the_event_with_the_reason(self, use_triggers,
                                                                       customer, settings):
        use_triggers(order_confirmation={**BASE, "on": "created",
                                         "attachments": "tests.testapp.mail.invoice"})
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "MAX_ATTACHMENTS_SIZE": 10}
        order = new_order(customer)
        assert Order.objects.filter(pk=order.pk).exists()
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert email.to == ["ann@example.com"]
        assert email.last_error.startswith(
            "Trigger 'order_confirmation' could not queue: InvalidEmailOption: The attachments "
            "total 16 bytes with 'invoice-A-1.pdf'; at most 10 are allowed "
            "(TRANSACTIONAL_MAIL['MAX_ATTACHMENTS_SIZE']).")

    @pytest.mark.parametrize(("separator", "name"), [
        ("\u2028", "a line separator (U+2028)"), ("\x85", "a next-line character (NEL, U+0085)"),
        ("\x0b", "a vertical tab (VT, U+000B)"), ("\x00", "a NUL character (U+0000)"),
    ])
    def test_a_display_name_with_a_line_separator_fails_that_recipient(
            self, use_triggers, customer, separator, name):
        """Customer-entered names reach the To header: each separator is refused by name,
        and the failed row stores the address made one line (PostgreSQL refuses NUL)."""
        use_triggers(order_confirmation={
            **BASE, "on": "created",
            "to": lambda order: f"Ann{separator}Bcc: evil@example.com <{order.customer.email}>"})
        new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert email.last_error.startswith("Trigger 'order_confirmation': recipient 'Ann")
        assert f"is not one line: it contains {name}; check its 'to'" in email.last_error
        assert email.to == ["Ann Bcc: evil@example.com <ann@example.com>"]

    def test_a_display_name_that_smuggles_a_second_mailbox_fails(self, use_triggers, customer):
        """Unquoted, "Ann Bcc: evil@example.com <ann@...>" is two recipients to Anymail."""
        customer.name = "Ann Bcc: evil@example.com"
        customer.save()
        use_triggers(order_confirmation={
            **BASE, "on": "created",
            "to": lambda order: f"{order.customer.name} <{order.customer.email}>"})
        new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert "is 2 addresses in one string" in email.last_error
        assert not Email.objects.filter(status=EmailStatus.QUEUED).exists()

    def test_a_from_email_over_320_characters_fails_the_event(self, use_triggers, customer):
        use_triggers(order_confirmation={**BASE, "on": "created",
                                         "from_email": lambda order: "a" * 320 + "@example.com"})
        new_order(customer)
        [email] = emails()
        assert email.status == EmailStatus.FAILED
        assert "is 332 characters long; an address has at most 320" in email.last_error


def test_a_nul_in_the_snapshot_fails_the_event_not_the_save(use_triggers, customer):
    """The context holds a NUL: the order is saved, its email is a failed row (on
    PostgreSQL the INSERT of the snapshot would otherwise fail the save)."""
    use_triggers(order_confirmation={
        **BASE, "on": "created", "context": "tests.testapp.mail.nul_context"})
    order = new_order(customer)
    assert Order.objects.filter(pk=order.pk).exists()
    [email] = emails()
    assert email.status == EmailStatus.FAILED
    assert "context['note'] contains a NUL character" in email.last_error
