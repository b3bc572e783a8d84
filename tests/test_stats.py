"""Daily statistics: counted as emails are sent and events arrive, and rebuilt the same."""

from __future__ import annotations

import datetime
import io
import os
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.utils import timezone

import transactional_mail
from tests.esp_server import (
    INVALID_TO,
    bounce_event,
    click_event,
    delivery_event,
    open_event,
    post_webhook,
    refused,
    spam_complaint_event,
)
from tests.factories import ORDER_CONTEXT, make_template
from transactional_mail import delivery, stats
from transactional_mail.models import Email, MailStatDay, StatFlag, Suppression

pytestmark = pytest.mark.django_db


def send(to="ann@example.com", **options) -> Email:
    email = transactional_mail.send("order_confirmation", to, ORDER_CONTEXT,
                                    category="orders", **options)
    delivery.deliver(email.pk)
    email.refresh_from_db()
    return email


def rows() -> list[dict]:
    """Every daily row, without its id and shard, in a stable order."""
    return [
        {name: value for name, value in row.items() if name not in ("id", "shard")}
        for row in MailStatDay.objects.order_by(
            "day", "template_key", "trigger_key", "category", "subject_variant").values()
    ]


def total(counter: str) -> int:
    return sum(row[counter] for row in rows())


@pytest.fixture
def seeded_log(client, esp):
    """Five sent emails and their events, through the real send and webhook paths:
    delivered x4 (one twice, one opened twice and clicked), one hard bounce, one spam
    complaint, one unsubscribe; plus a staff test send, delivered."""
    make_template()
    emails = [send(f"user{n}@example.com") for n in range(5)]
    at = (emails[0].created_at + datetime.timedelta(seconds=3)).isoformat()
    for email in emails[:4]:
        assert post_webhook(client, delivery_event(email, at=at)).status_code == 200
    post_webhook(client, delivery_event(emails[0], at=at))  # another delivery notice
    post_webhook(client, open_event(emails[0]))
    post_webhook(client, open_event(emails[0], first_open=False))
    post_webhook(client, click_event(emails[0]))
    post_webhook(client, bounce_event(emails[4]))
    post_webhook(client, spam_complaint_event(emails[1]))
    post_webhook(client, bounce_event(emails[2], type="Unsubscribe"))
    test_send = send("staff@example.com", is_test=True)
    post_webhook(client, delivery_event(test_send))
    return emails


def test_counters_count_each_email_once_per_event_kind(seeded_log):
    [row] = rows()
    assert row["template_key"] == "order_confirmation"
    assert row["category"] == "orders"
    assert row["day"] == timezone.localdate(seeded_log[0].created_at)
    assert {name: row[name] for name in
            ("sent", "delivered", "bounced", "complained", "opened", "clicked",
             "unsubscribed")} == {
        "sent": 5, "delivered": 4, "bounced": 1, "complained": 1, "opened": 1, "clicked": 1,
        "unsubscribed": 1}
    # The staff test send counted nowhere; each delivery took at most 5 s (3 s after
    # the first email was queued).
    assert sum(row[field] for field in ("ttd_1s", "ttd_2s", "ttd_5s")) == 4
    assert Email.objects.get(pk=seeded_log[0].pk).stat_flags == (
        StatFlag.SENT | StatFlag.DELIVERED | StatFlag.OPENED | StatFlag.CLICKED)


def test_the_rebuild_matches_the_live_counters(seeded_log):
    live = rows()
    flags = dict(Email.objects.values_list("pk", "stat_flags"))
    MailStatDay.objects.all().delete()
    Email.objects.update(stat_flags=0)
    call_command("rebuild_mail_stats", stdout=io.StringIO())
    assert rows() == live
    assert dict(Email.objects.values_list("pk", "stat_flags")) == flags


def test_counting_goes_on_after_a_rebuild_without_counting_twice(client, seeded_log):
    call_command("rebuild_mail_stats", stdout=io.StringIO())
    post_webhook(client, open_event(seeded_log[0]))  # already counted as opened
    post_webhook(client, open_event(seeded_log[1]))  # opened for the first time
    assert total("opened") == 2


def test_rebuild_since_a_day_keeps_the_days_before(seeded_log):
    old_day = timezone.localdate() - datetime.timedelta(days=10)
    MailStatDay.objects.create(day=old_day, template_key="old", sent=7)
    call_command("rebuild_mail_stats", "--since", timezone.localdate().isoformat(),
                 stdout=io.StringIO())
    assert MailStatDay.objects.get(day=old_day).sent == 7
    assert total("sent") == 12
    call_command("rebuild_mail_stats", stdout=io.StringIO())
    assert not MailStatDay.objects.filter(day=old_day).exists()  # no email behind it


def test_rebuild_refuses_a_since_that_is_not_a_date():
    with pytest.raises(CommandError, match="is not a date: give it as YYYY-MM-DD"):
        call_command("rebuild_mail_stats", "--since", "last week")


def test_a_soft_bounce_is_not_a_bounce_live_or_rebuilt(client, esp):
    make_template()
    email = send()
    post_webhook(client, bounce_event(email, type="SoftBounce"))
    assert total("bounced") == 0
    call_command("rebuild_mail_stats", stdout=io.StringIO())
    assert total("bounced") == 0 and total("sent") == 1


def test_an_unsubscribe_hook_counts_once_per_email(esp):
    make_template()
    email = send()
    Suppression.objects.create(address=email.to[0], category="orders",
                               reason="unsubscribe", email=email)
    stats.record_unsubscribe(email)
    stats.record_unsubscribe(email)
    assert total("unsubscribed") == 1


@pytest.mark.parametrize(("seconds", "field"), [
    (0, "ttd_1s"), (1, "ttd_1s"), (1.5, "ttd_2s"), (59, "ttd_60s"), (3600, "ttd_3600s"),
    (86400, "ttd_86400s"), (86401, "ttd_more"),
])
def test_delivery_times_fall_in_their_bucket(seconds, field):
    assert stats.delivery_bucket(seconds) == field


def test_time_to_delivery_counts_from_when_a_scheduled_email_was_due():
    created = timezone.now()
    email = Email(created_at=created, next_attempt_at=created + datetime.timedelta(days=7),
                  attempts=1)
    assert stats.queued_at(email) == created + datetime.timedelta(days=7)
    email.attempts = 3  # retried: its first due time is gone, creation is what is known
    assert stats.queued_at(email) == created


@pytest.mark.skipif("TM_TEST_POSTGRES" not in os.environ,
                    reason="concurrent writers need PostgreSQL (TM_TEST_POSTGRES)")
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_count_exactly(esp):
    """Many threads, each its own connection, count 40 emails (each twice, as a webhook
    retry racing its first delivery would) into one new daily row: every email counts
    once, no increment is lost, no insert fails."""
    assert connection.vendor == "postgresql"
    make_template()
    emails = [transactional_mail.send("order_confirmation", f"u{n}@example.com",
                                      ORDER_CONTEXT) for n in range(40)]
    start = threading.Barrier(8)
    errors = []

    def work(part):
        try:
            start.wait()
            for email in part:
                with transaction.atomic():
                    stats.record_sent(email)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(emails[n % 4::4],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert total("sent") == 40
    assert MailStatDay.objects.count() == 1


def test_each_worker_process_adds_to_its_own_row_and_readers_sum_them(esp, monkeypatch):
    """Two processes never wait on one row's lock; the dashboard and a rebuild count the
    same emails."""
    from transactional_mail.admin.dashboard_queries import Period, totals

    make_template()
    for pid in (4242, 4243, 4243):
        monkeypatch.setattr(os, "getpid", lambda pid=pid: pid)
        send(f"user{pid}@example.com")
    assert sorted(MailStatDay.objects.values_list("shard", "sent")) == [
        (4242 % stats.SHARDS, 1), (4243 % stats.SHARDS, 2)]
    today = timezone.localdate()
    assert totals(Period(today, today))["sent"] == 3
    call_command("rebuild_mail_stats", stdout=io.StringIO())
    assert list(MailStatDay.objects.values_list("shard", "sent")) == [(0, 3)]


def test_an_esp_outage_counts_nothing_until_the_email_is_sent(esp, settings):
    """A 500 (retried) and a refused email (failed for good) count nowhere; the retry
    that gets through counts the email once."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "RETRY_BACKOFF": 1}
    make_template()
    esp.add_response(500)
    email = send()
    assert email.status == "queued" and rows() == []
    Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
    delivery.deliver(email.pk)
    esp.add_response(422, refused(INVALID_TO, "bad@example.com"))
    failed = send("bad@example.com")
    assert failed.status == "failed"
    assert total("sent") == 1


def test_a_forged_or_unauthenticated_webhook_counts_nothing(client, esp):
    make_template()
    email = send()
    assert post_webhook(client, delivery_event(email), secret="wrong").status_code in (400, 403)
    assert post_webhook(client, delivery_event(email), secret=None).status_code in (400, 403)
    assert total("delivered") == 0
