"""Batches: one delivery task claims several due emails and pays once for what they share.

Every guarantee of a single delivery holds per email (see test_delivery.py and
test_claims.py); these tests pin down what a batch shares and what it keeps apart.
"""

from __future__ import annotations

from unittest import mock

import pytest
from django.core import mail as django_mail
from django.db import connection

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_layout, make_template
from transactional_mail import delivery, tasks
from transactional_mail.models import Email, EmailStatus, Suppression, SuppressionReason

pytestmark = pytest.mark.django_db

#: PostgreSQL adds the claim's advisory lock and unlock to each batch.
LOCK_QUERIES = 2 if connection.vendor == "postgresql" else 0


def test_a_task_whose_email_was_taken_costs_one_statement(template, esp,
                                                          django_assert_num_queries):
    email = queue()
    delivery.deliver(email.pk)
    # PostgreSQL: the claim statement; elsewhere: the candidates' SELECT and the UPDATE,
    # in a transaction (here a savepoint pair).
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 4):
        assert delivery.deliver_batch(email.pk, 50) == {}


@pytest.fixture
def template():
    return make_template(layout=make_layout())


def queue(to="ann@example.com", **options) -> Email:
    return transactional_mail.send("order_confirmation", to, ORDER_CONTEXT, **options)


@pytest.fixture
def connections_opened():
    """Count the email backend connections the worker creates."""
    real = django_mail.get_connection
    made = []

    def counting(*args, **kwargs):
        connection = real(*args, **kwargs)
        made.append(connection)
        return connection

    with mock.patch.object(delivery, "get_connection", counting):
        yield made


def test_a_batch_sends_every_claimed_email_over_one_connection(template, esp,
                                                                connections_opened):
    emails = [queue(f"user{i}@example.com") for i in range(6)]
    outcomes = delivery.deliver_batch(emails[2].pk, 10)
    assert list(outcomes)[0] == emails[2].pk  # the task's own email first
    assert {pk: outcome.status for pk, outcome in outcomes.items()} == {
        email.pk: EmailStatus.SENT for email in emails
    }
    assert len(connections_opened) == 1
    assert sorted(int(request.email_ids[0]) for request in esp.requests) == sorted(
        email.pk for email in emails
    )


def test_a_batch_stops_at_its_limit(template, esp):
    emails = [queue(f"user{i}@example.com") for i in range(5)]
    assert len(delivery.deliver_batch(emails[0].pk, 3)) == 3
    assert Email.objects.filter(status=EmailStatus.QUEUED).count() == 2
    assert len(esp.requests) == 3


def test_queries_are_per_batch_not_per_email(template, esp, django_assert_max_num_queries):
    """Claim, rows, suppressions and revisions once; per email a fence check, the result,
    its attempt row, and its statistics (the email's "counted as sent" bit, its day's
    counter)."""
    for i in range(20):
        queue(f"user{i}@example.com")
    delivery.deliver_batch(None, 20)  # the first batch also looks up the revisions
    for i in range(20):
        queue(f"again{i}@example.com")
    with django_assert_max_num_queries(5 * 20 + 8 + LOCK_QUERIES):
        outcomes = delivery.deliver_batch(None, 20)
    assert len(outcomes) == 20


def test_each_email_gets_its_own_suppressions(template, esp, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "CATEGORIES": {"news": {"essential": False}, "orders": {}}}
    Suppression.objects.create(address="ann@example.com", category="news",
                               reason=SuppressionReason.UNSUBSCRIBE)
    Suppression.objects.create(address="bob@example.com", category="",
                               reason=SuppressionReason.HARD_BOUNCE)
    order = queue("Ann <ANN@example.com>", category="orders")
    news = queue("ann@example.com", category="news")
    bounced = queue("bob@example.com", category="orders")
    with_cc = queue("cid@example.com", cc=["bob@example.com"], category="orders")
    outcomes = delivery.deliver_batch(order.pk, 10)
    assert {pk: outcome.status for pk, outcome in outcomes.items()} == {
        order.pk: EmailStatus.SENT,
        news.pk: EmailStatus.SUPPRESSED,
        bounced.pk: EmailStatus.SUPPRESSED,
        with_cc.pk: EmailStatus.SENT,
    }
    [cc_request] = esp.requests_for(with_cc.pk)
    assert "Cc" not in cc_request.json  # the hard-bounced cc was dropped


def test_one_failure_does_not_stop_the_batch(template, esp, settings):
    """A 500 for one email: it alone is retried; the connection is renewed for the rest."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "BATCH_SIZE": 10,
                                   "RETRY_BACKOFF": 1}
    emails = [queue(f"user{i}@example.com") for i in range(3)]
    esp.add_response(200)
    esp.add_response(500)
    with mock.patch.object(tasks, "enqueue_delivery") as enqueue:
        assert tasks.deliver(emails[0].pk) == EmailStatus.SENT
    statuses = dict(Email.objects.filter(pk__in=[e.pk for e in emails])
                    .values_list("pk", "status"))
    assert statuses == {emails[0].pk: EmailStatus.SENT, emails[1].pk: EmailStatus.QUEUED,
                        emails[2].pk: EmailStatus.SENT}
    [call] = enqueue.call_args_list
    assert call.args[0] == emails[1].pk  # the retry of the failed email, and only that


def test_revisions_are_read_once_per_process(template, esp, django_assert_num_queries):
    first = queue()
    delivery.deliver(first.pk)
    second = queue("bob@example.com")
    # The claim (on PostgreSQL one statement, then its advisory lock and unlock; elsewhere
    # an UPDATE in a transaction, here a savepoint pair), the row, the suppressions, the
    # current revisions of the key, the fence check (none on PostgreSQL, whose lock keeps
    # a first attempt's claim), the result and its attempt row, the statistics (the email's
    # "counted as sent" bit, its day's counter; on PostgreSQL these four are one
    # statement): no query for the template or layout revision.
    with django_assert_num_queries(7 if connection.vendor == "postgresql" else 11):
        assert delivery.deliver(second.pk).status == EmailStatus.SENT


def test_a_task_claims_all_of_its_own_emails_first(template, esp, settings):
    """A transaction's task names all its emails: they are claimed before any other due
    email, even beyond BATCH_SIZE."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "BATCH_SIZE": 2}
    older = queue("older@example.com")
    own = [queue(f"own{i}@example.com") for i in range(3)]
    assert tasks.deliver(*(email.pk for email in own)) == EmailStatus.SENT
    statuses = dict(Email.objects.values_list("pk", "status"))
    assert [statuses[email.pk] for email in own] == [EmailStatus.SENT] * 3
    assert statuses[older.pk] == EmailStatus.QUEUED
