"""Soft bounces suppress an address only after SOFT_BOUNCE_LIMIT in a row; a delivery resets."""

from __future__ import annotations

import pytest

import transactional_mail
from tests.esp_server import bounce_event, delivery_event, post_webhook
from tests.factories import ORDER_CONTEXT, make_template
from transactional_mail import delivery
from transactional_mail.models import EmailStatus, SoftBounceStreak, Suppression

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(esp, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SOFT_BOUNCE_LIMIT": 3}
    make_template()

    def send(to="Ann <Ann@example.com>"):
        email = transactional_mail.send("order_confirmation", to, ORDER_CONTEXT)
        assert delivery.deliver(email.pk).status == EmailStatus.SENT
        email.refresh_from_db()
        return email
    return send


def soft_bounce(client, email, **kwargs):
    assert post_webhook(client, bounce_event(email, type="SoftBounce", **kwargs)
                        ).status_code == 200


def test_the_limit_in_a_row_suppresses_the_address_for_everything(client, sent):
    emails = [sent() for _ in range(3)]
    soft_bounce(client, emails[0])
    soft_bounce(client, emails[1])
    assert Suppression.objects.count() == 0
    soft_bounce(client, emails[2])
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.category, suppression.reason,
            suppression.email_id) == ("ann@example.com", "", "soft_bounces", emails[2].pk)
    assert "3 soft bounces in a row" in suppression.source
    assert not SoftBounceStreak.objects.exists()  # lifted by staff, it starts afresh
    assert delivery.deliver(transactional_mail.send(
        "order_confirmation", "ann@example.com", ORDER_CONTEXT).pk
    ).status == EmailStatus.SUPPRESSED


def test_a_delivery_resets_the_streak(client, sent):
    emails = [sent() for _ in range(5)]
    soft_bounce(client, emails[0])
    soft_bounce(client, emails[1])
    post_webhook(client, delivery_event(emails[2]))
    assert not SoftBounceStreak.objects.exists()
    soft_bounce(client, emails[3])
    soft_bounce(client, emails[4])
    assert Suppression.objects.count() == 0
    assert SoftBounceStreak.objects.get().count == 2


def test_a_retried_webhook_counts_once(client, sent):
    email = sent()
    payload = bounce_event(email, type="SoftBounce")
    for _ in range(5):
        post_webhook(client, payload)
    assert SoftBounceStreak.objects.get().count == 1
    assert Suppression.objects.count() == 0


def test_a_delay_is_not_a_bounce(client, sent):
    """Postmark's Transient (Anymail's "deferred"): the ESP is still trying."""
    emails = [sent() for _ in range(4)]
    for email in emails:
        post_webhook(client, bounce_event(email, type="Transient"))
    assert not SoftBounceStreak.objects.exists()
    assert Suppression.objects.count() == 0


def test_streaks_are_per_address(client, sent):
    ann, bob = sent(), sent("bob@example.com")
    for _ in range(2):
        soft_bounce(client, ann)
        soft_bounce(client, bob)
    assert dict(SoftBounceStreak.objects.values_list("address", "count")) == {
        "ann@example.com": 2, "bob@example.com": 2}
    assert Suppression.objects.count() == 0


def test_a_hostile_recipient_is_never_counted(client, sent):
    email = sent()
    soft_bounce(client, email, recipient="not an address " + "x" * 400)
    assert not SoftBounceStreak.objects.exists()
