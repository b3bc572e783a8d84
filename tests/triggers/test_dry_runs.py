"""Dry runs and the dry_run_triggers command: what would fire, writing nothing."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from tests.triggers.helpers import BASE, ORDER_PAID, new_order
from transactional_mail.models import Email
from transactional_mail.triggers.dry_runs import dry_run

pytestmark = pytest.mark.django_db


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
