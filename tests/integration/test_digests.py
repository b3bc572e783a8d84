"""Digests against real services: a window closed by a real worker, and one that survives
its worker and beat being restarted mid-window."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.management.sql import emit_post_migrate_signal
from django.db import transaction

from tests.integration.conftest import purge
from tests.integration.helpers import settle
from tests.testapp.models import Customer, Order
from tests.workers import wait_for
from transactional_mail.models import DigestItem, DigestWindow, Email, EmailTemplate

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def customer(services):
    EmailTemplate.objects.create(
        key="order_digest", subject="{{ count }} new orders",
        html="{% for item in items %}<p>Order {{ item.number }}</p>{% endfor %}",
    ).publish()
    return Customer.objects.create(name="Ann", email="ann@example.com")


def digest_trigger(window: str) -> dict:
    return {"model": "testapp.Order", "on": "created", "template": "order_digest",
            "to": "customer.email", "context": ["number"], "digest": {"window": window}}


def order_events(customer, *numbers: str) -> None:
    for number in numbers:
        with transaction.atomic():  # one request each
            Order.objects.create(customer=customer, number=number, total=Decimal("1"))


def wait_for_digest(timeout: float = 45) -> Email:
    def sent():
        return Email.objects.filter(template_key="order_digest", status="sent").first()

    return wait_for(sent, timeout, message=lambda: (
        f"a sent digest; emails: {list(Email.objects.values_list('pk', 'status'))}, "
        f"windows: {list(DigestWindow.objects.values_list('pk', 'closes_at', 'closed_at'))}"))


def test_a_window_closes_into_one_email_through_a_real_worker(redis_worker, esp, customer,
                                                              use_triggers):
    """The task published when the window opens closes it on time; one email goes out."""
    use_triggers(digest=digest_trigger("3s"))
    order_events(customer, "A-1", "A-2", "A-3")
    assert not Email.objects.exists()  # nothing before the window closes

    email = wait_for_digest()
    settle()
    [request] = esp.requests_for(email.pk)
    assert request.json["Subject"] == "3 new orders"
    for number in ("A-1", "A-2", "A-3"):
        assert f"Order {number}" in request.json["HtmlBody"]
    assert Email.objects.count() == 1
    assert DigestWindow.objects.get().email_id == email.pk


def test_a_window_survives_its_worker_and_beat_restarting(scratch_broker, services,
                                                          spawn_worker, spawn_beat, esp,
                                                          customer, use_triggers, settings):
    """Worker killed mid-window, its closing task lost with it, beat started afterwards:
    the beat sweep closes the window from the rows, with every event in it."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SWEEP_INTERVAL": 1}
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    doomed = spawn_worker("redis-scratch", name="doomed")
    use_triggers(digest=digest_trigger("4s"))
    order_events(customer, "A-1", "A-2")
    settle(1)  # the worker has taken the window's closing task (an ETA task, held in memory)
    doomed.kill()
    purge(services["redis-scratch"])  # and nothing of it is left in the queue
    order_events(customer, "A-3")  # an event while no worker runs
    assert not Email.objects.exists()

    spawn_worker("redis-scratch", name="restarted")
    spawn_beat("redis-scratch")
    email = wait_for_digest(timeout=60)
    settle()
    assert [item["number"] for item in email.context["items"]] == ["A-1", "A-2", "A-3"]
    assert Email.objects.filter(template_key="order_digest").count() == 1
    assert len(esp.requests_for(email.pk)) == 1
    assert set(DigestItem.objects.values_list("email", flat=True)) == {email.pk}


def test_two_transactions_opening_the_same_window_share_it(customer, use_triggers,
                                                           broker_switch):
    """Two requests whose first events race to open a recipient's window: the second's
    INSERT waits for the first's commit, fails on the unique constraint, and joins."""
    import threading
    import time

    from django.db import connection

    use_triggers(digest=digest_trigger("1h"))
    broker_switch.down()  # no worker: only the rows matter
    both_started = threading.Barrier(2, timeout=10)
    errors = []

    def request(number: str, first: bool):
        try:
            with transaction.atomic():
                if not first:
                    both_started.wait()
                Order.objects.create(customer=customer, number=number, total=Decimal("1"))
                if first:
                    both_started.wait()
                    time.sleep(0.5)  # holds the new window uncommitted while the other tries
        except Exception as err:  # collected: a thread's failure would not fail the test
            errors.append(err)
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(number, number == "A-1"))
               for number in ("A-1", "A-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    window = DigestWindow.objects.get()
    assert sorted(item["number"] for item in window.items.values_list("context", flat=True)) \
        == ["A-1", "A-2"]
