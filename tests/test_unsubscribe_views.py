"""The unsubscribe (RFC 8058) and preferences pages: what changes, and what never does.

Attacks kept as tests: tampered, foreign and replayed tokens, link scanners' GETs,
cross-site POSTs without a CSRF token (a mail client's one-click POST has none).
"""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_layout, make_template
from tests.test_streams import CATEGORIES
from transactional_mail import delivery
from transactional_mail.models import (
    Email,
    EmailStatus,
    Suppression,
    SuppressionHistory,
    SuppressionReason,
)
from transactional_mail.subscriptions import TOKEN_SALT, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def streams(settings):
    settings.TRANSACTIONAL_MAIL = {
        **settings.TRANSACTIONAL_MAIL,
        "CATEGORIES": {**CATEGORIES, "tips": {"essential": False, "description": "Tips."}},
        "BASE_URL": "https://shop.example.com",
    }
    layout = make_layout()
    make_template("order_confirmation", layout=layout, category="orders")
    make_template("review_request", layout=layout, category="reviews")
    make_template("tip", layout=layout, category="tips")


@pytest.fixture
def client():
    """A client that enforces CSRF, as a browser on another site would meet it."""
    return Client(enforce_csrf_checks=True)


def queue(key: str = "review_request", to: str = "Ann <Ann@Example.com>", **options) -> Email:
    return transactional_mail.send(key, to, ORDER_CONTEXT, **options)


def unsubscribe_url(email: Email | int) -> str:
    return reverse("transactional_mail:unsubscribe", args=[make_token(getattr(email, "pk", email))])


def preferences_url(email: Email) -> str:
    return reverse("transactional_mail:preferences", args=[make_token(email.pk)])


def test_get_shows_a_confirmation_and_changes_nothing(client):
    email = queue()
    response = client.get(unsubscribe_url(email))
    assert response.status_code == 200
    body = response.content.decode()
    assert '<form method="post"' in body
    assert "a***@example.com" in body  # the address, masked
    assert "Ann@Example.com" not in body
    assert Suppression.objects.count() == 0
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"


def test_one_click_post_unsubscribes_from_that_category_only(client):
    email = queue()
    response = client.post(unsubscribe_url(email), data="List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.category, suppression.reason,
            suppression.email_id) == ("ann@example.com", "reviews",
                                      SuppressionReason.UNSUBSCRIBE, email.pk)
    [entry] = SuppressionHistory.objects.all()
    assert entry.category == "reviews" and entry.user is None
    assert f"email {email.pk}" in entry.note

    # The next review request is suppressed; tips and essential mail still go out.
    later = [queue(), queue("tip"), queue("order_confirmation")]
    statuses = [delivery.deliver(row.pk).status for row in later]
    assert statuses == [EmailStatus.SUPPRESSED, EmailStatus.SENT, EmailStatus.SENT]


def test_a_replayed_post_changes_nothing_more(client):
    email = queue()
    for _ in range(3):
        assert client.post(unsubscribe_url(email)).status_code == 200
    assert Suppression.objects.count() == 1
    assert SuppressionHistory.objects.count() == 1
    # The statistics count the unsubscribe once, on the email's daily row.
    from transactional_mail.models import MailStatDay

    [row] = MailStatDay.objects.filter(template_key=email.template_key)
    assert row.unsubscribed == 1


def tampered(token: str) -> list[str]:
    email_id, _, signature = token.partition(":")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    return [
        f"{email_id}:{flipped}",                   # signature changed
        f"{int(email_id) + 1}:{signature}",        # another email, same signature
        email_id,                                  # no signature
        f"{email_id}:",                            # empty signature
        "x" * 5000,                                # huge
        "../../admin",                             # not a token at all
    ]


@pytest.mark.parametrize("method", ["get", "post"])
def test_tampered_tokens_are_refused_and_change_nothing(client, method):
    email = queue()
    other = queue(to="bob@example.com")
    for token in tampered(make_token(email.pk)):
        url = reverse("transactional_mail:unsubscribe", args=[token.replace("/", "-")])
        response = getattr(client, method)(url)
        assert response.status_code == 400, token
        response = getattr(client, method)(
            reverse("transactional_mail:preferences", args=[token.replace("/", "-")]),
            {"subscribed": []})
        assert response.status_code == 400, token
    assert Suppression.objects.count() == 0
    assert other.pk  # the neighbouring email's id was guessed, to no effect


def test_foreign_tokens_are_refused(client, settings):
    """A value the site signs for something else, or a token signed with another key."""
    email = queue()
    foreign = [
        signing.Signer(salt="django.contrib.sessions").sign(str(email.pk)),
        signing.Signer().sign(str(email.pk)),
        signing.dumps(email.pk, salt=TOKEN_SALT),
        signing.Signer(key="another-site", salt=TOKEN_SALT).sign(str(email.pk)),
    ]
    for token in foreign:
        assert client.post(reverse("transactional_mail:unsubscribe", args=[token])
                           ).status_code == 400, token
    assert Suppression.objects.count() == 0


def test_a_token_for_an_email_that_is_gone_or_erased_is_refused(client):
    assert client.post(unsubscribe_url(999_999)).status_code == 400
    email = queue()
    Email.objects.filter(pk=email.pk).update(to=[])  # an erased row keeps no address
    assert client.post(unsubscribe_url(email)).status_code == 400
    assert Suppression.objects.count() == 0


def test_essential_mail_cannot_be_unsubscribed_from(client):
    email = queue("order_confirmation")
    response = client.post(unsubscribe_url(email))
    assert response.status_code == 200
    assert "cannot be unsubscribed" in response.content.decode()
    assert Suppression.objects.count() == 0


def test_preferences_unsubscribe_and_resubscribe_per_category(client):
    email = queue()
    response = client.get(preferences_url(email))
    body = response.content.decode()
    assert 'value="reviews" checked' in body and 'value="tips" checked' in body
    assert 'value="orders"' not in body  # essential: not a choice
    assert Suppression.objects.count() == 0  # a GET changes nothing

    client.post(preferences_url(email), {"subscribed": ["tips"]})
    assert set(Suppression.objects.values_list("category", "reason")) == {
        ("reviews", SuppressionReason.UNSUBSCRIBE)}
    body = client.get(preferences_url(email)).content.decode()
    assert 'value="reviews">' in body and 'value="tips" checked' in body

    response = client.post(preferences_url(email), {"subscribed": ["reviews", "tips"]})
    assert "Your choices are saved." in response.content.decode()
    assert Suppression.objects.count() == 0
    assert list(SuppressionHistory.objects.order_by("id").values_list("category", "change")) == [
        ("reviews", "added"), ("reviews", "removed")]


def test_resubscribing_never_lifts_a_bounce_or_complaint(client):
    email = queue()
    Suppression.objects.create(address="ann@example.com", category="",
                               reason=SuppressionReason.HARD_BOUNCE)
    response = client.post(preferences_url(email), {"subscribed": ["reviews", "tips"]})
    assert "cannot send any email" in response.content.decode()
    assert Suppression.objects.get().reason == SuppressionReason.HARD_BOUNCE


def test_an_esp_unsubscribe_from_everything_is_split_per_category(client):
    """An ESP's unsubscribe (category "") can be undone for one category only."""
    email = queue()
    Suppression.objects.create(address="ann@example.com", category="",
                               reason=SuppressionReason.UNSUBSCRIBE)
    body = client.get(preferences_url(email)).content.decode()
    assert 'value="reviews">' in body and 'value="tips">' in body  # both unticked
    client.post(preferences_url(email), {"subscribed": ["tips"]})
    assert set(Suppression.objects.values_list("category", flat=True)) == {"reviews"}


def test_pages_speak_the_emails_language(client):
    email = queue(language="fr")
    body = client.get(unsubscribe_url(email)).content.decode()
    assert '<html lang="fr"' in body
    assert "Se désabonner" in body


def test_other_methods_are_not_allowed(client):
    email = queue()
    assert client.put(unsubscribe_url(email)).status_code == 405
    assert client.delete(preferences_url(email)).status_code == 405
    assert Suppression.objects.count() == 0
