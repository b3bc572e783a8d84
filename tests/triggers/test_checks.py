"""Checks of trigger definitions: every mistake reported with a hint."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import checks
from django.db import transaction

from tests.factories import make_template
from tests.triggers.helpers import BASE, emails, new_order
from transactional_mail.exceptions import ConfigurationError
from transactional_mail.models import Email, EmailStatus
from transactional_mail.triggers.definitions import parse_trigger

pytestmark = pytest.mark.django_db


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


class TestReviewFixes:
    def test_changed_on_a_reverse_relation_is_refused(self, settings):
        found = TestChecks().run(settings, a={"model": "testapp.Customer", "on": "changed",
                                              "field": "orders", "template": "x",
                                              "to": "email"})
        assert "'field' 'orders' is not a field of testapp.Customer" in found[0][1]

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
