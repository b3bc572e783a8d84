"""Unsubscribes and soft bounce streaks under concurrent requests, on PostgreSQL.

A mail client's one-click POST, a link scanner and the person can hit the same link at
once; an ESP can deliver several soft bounces of one address at once. Each race is
decided by the database (a unique constraint, a row lock), never lost or doubled.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

import transactional_mail
from tests.esp_server import bounce_event, post_webhook
from tests.factories import ORDER_CONTEXT, make_layout, make_template
from tests.test_streams import CATEGORIES
from transactional_mail import delivery
from transactional_mail.models import SoftBounceStreak, Suppression, SuppressionHistory
from transactional_mail.subscriptions import make_token

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def at_once(count: int, action) -> list:
    """Run ``action`` in ``count`` threads released together; return their results."""
    start = threading.Barrier(count)
    results = []

    def run():
        try:
            start.wait()
            results.append(action())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


@pytest.fixture
def review(services, settings, enqueued):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "CATEGORIES": CATEGORIES,
                                   "BASE_URL": "https://shop.example.com",
                                   "SOFT_BOUNCE_LIMIT": 6}
    make_template("review_request", layout=make_layout(), category="reviews")
    return transactional_mail.send("review_request", "ann@example.com", ORDER_CONTEXT)


def test_concurrent_one_click_posts_unsubscribe_once(review):
    url = reverse("transactional_mail:unsubscribe", args=[make_token(review.pk)])
    codes = at_once(6, lambda: Client().post(url).status_code)
    assert codes == [200] * 6
    assert Suppression.objects.count() == 1
    assert SuppressionHistory.objects.count() == 1


def test_concurrent_soft_bounces_all_count(review, esp):
    delivery.deliver(review.pk)
    review.refresh_from_db()
    payloads = iter([bounce_event(review, type="SoftBounce") for _ in range(6)])
    lock = threading.Lock()

    def bounce():
        with lock:
            payload = next(payloads)
        return post_webhook(Client(), payload).status_code

    assert at_once(6, bounce) == [200] * 6
    # Only the sixth reached the limit: one suppression, and the streak became it.
    suppression = Suppression.objects.get()
    assert suppression.reason == "soft_bounces"
    assert "6 soft bounces in a row" in suppression.source
    assert not SoftBounceStreak.objects.exists()
