"""Firing: conditions, recipients, options and once; failures become failed rows, never raise."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.testapp.mail import order_paid
from tests.testapp.models import Customer, Order
from tests.triggers.helpers import BASE, ORDER_PAID, emails, new_order
from transactional_mail import delivery
from transactional_mail.models import Email, EmailStatus

pytestmark = pytest.mark.django_db


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
