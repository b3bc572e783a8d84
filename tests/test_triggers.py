"""Triggers: model events and signals queue emails through the outbox."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in
from django.core import checks
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import RequestFactory
from django.utils import timezone

from tests.factories import make_template
from tests.testapp.models import Customer, Order
from transactional_mail import delivery, triggers
from transactional_mail.exceptions import ConfigurationError
from transactional_mail.models import Email, EmailStatus, Trigger

pytestmark = pytest.mark.django_db

BASE = {"model": "testapp.Order", "template": "order_confirmation", "to": "customer.email"}


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
        triggers.sync_trigger_rows()
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
        plans = {plan.trigger: plan for plan in triggers.dry_run(order, "created")}
        assert plans["order_confirmation"].fires
        assert plans["order_confirmation"].recipients == ["ann@example.com"]
        assert plans["order_confirmation"].context["number"] == "A-1"
        assert not plans["paid_only"].fires
        assert "'when'" in plans["paid_only"].reason
        assert "shipped" not in plans
        order.status = "shipped"
        [shipped] = triggers.dry_run(order, "changed", old_values={"status": "paid"})
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
        triggers.sync_trigger_rows()
        row = Trigger.objects.get()
        response = admin_client.get(f"/admin/transactional_mail/trigger/{row.pk}/delete/")
        assert response.status_code == 403
