"""Categories as sending streams, checked on the message as the ESP receives it.

Every test sends over real HTTP to the fake Postmark API (tests/esp_server.py): the
sender, reply-to, MessageStream (the category's esp_extra), tags, metadata and the
List-Unsubscribe / List-Help headers of each category's mail.
"""

from __future__ import annotations

import re

import pytest
from django.core import mail

import transactional_mail
from tests.factories import LAYOUT_HTML, ORDER_CONTEXT, make_layout, make_template
from transactional_mail import delivery
from transactional_mail.categories import Category, declared_categories, get_category
from transactional_mail.models import EmailStatus, Suppression, SuppressionReason
from transactional_mail.subscriptions import make_token, read_token

pytestmark = pytest.mark.django_db

#: The default test layout with the footer line the default layout has for
#: non-essential mail.
LINKED_LAYOUT_HTML = LAYOUT_HTML.replace(
    "</td></tr>",
    '{% if unsubscribe_url %}<p class="unsubscribe"><a href="{{ unsubscribe_url }}">'
    'Unsubscribe</a> | <a href="{{ preferences_url }}">Preferences</a></p>{% endif %}'
    "</td></tr>",
)

CATEGORIES = {
    "orders": {"essential": True, "from_email": "Shop <orders@mail.example.com>",
               "reply_to": ["help@example.com"], "esp_extra": {"MessageStream": "outbound"}},
    "reviews": {"essential": False, "from_email": "Shop <hello@news.example.com>",
                "esp_extra": {"MessageStream": "broadcast"},
                "description": "Requests to review what you bought."},
}


@pytest.fixture
def streams(settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "CATEGORIES": CATEGORIES,
                                   "BASE_URL": "https://shop.example.com"}
    layout = make_layout(html=LINKED_LAYOUT_HTML)
    make_template("order_confirmation", layout=layout, category="orders")
    make_template("review_request", layout=layout, category="reviews",
                  subject="How was order {{ order.number }}?")
    return settings


def send(key: str, to: str = "ann@example.com", **options):
    email = transactional_mail.send(key, to, ORDER_CONTEXT, **options)
    outcome = delivery.deliver(email.pk)
    email.refresh_from_db()
    return email, outcome


def headers(message: dict) -> dict[str, str]:
    return {header["Name"]: header["Value"] for header in message.get("Headers", [])}


def test_non_essential_mail_carries_one_click_unsubscribe(streams, esp):
    email, _ = send("review_request", trigger_key="review_after_delivery")
    [request] = esp.requests
    message = request.json
    token = make_token(email.pk)
    url = f"https://shop.example.com/mail/unsubscribe/{token}/"
    assert headers(message)["List-Unsubscribe"] == f"<{url}>"
    assert headers(message)["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["From"] == "Shop <hello@news.example.com>"
    assert message["MessageStream"] == "broadcast"
    assert message["Tag"] == "reviews"
    assert message["Metadata"] == {
        "transactional_mail_id": str(email.pk), "tm_template": "review_request",
        "tm_trigger": "review_after_delivery", "tm_category": "reviews",
    }
    # The layout's footer line, with this email's own links, in both parts.
    preferences = f"https://shop.example.com/mail/preferences/{token}/"
    assert f'<a href="{url}">Unsubscribe</a>' in message["HtmlBody"]
    assert f'<a href="{preferences}">Preferences</a>' in message["HtmlBody"]
    assert url in message["TextBody"]
    assert email.from_email == "Shop <hello@news.example.com>"  # the log says who sent it


def test_essential_mail_has_no_unsubscribe_and_its_own_stream(streams, esp):
    email, _ = send("order_confirmation")
    [request] = esp.requests
    message = request.json
    assert "List-Unsubscribe" not in headers(message)
    assert "List-Unsubscribe-Post" not in headers(message)
    assert "List-Help" not in headers(message)
    assert message["From"] == "Shop <orders@mail.example.com>"
    assert message["ReplyTo"] == "help@example.com"
    assert message["MessageStream"] == "outbound"
    assert message["Metadata"]["tm_category"] == "orders"
    assert "tm_trigger" not in message["Metadata"]  # blank values are left out
    # The footer line is inside {% if unsubscribe_url %}: gone, with no empty link.
    assert "unsubscribe" not in message["HtmlBody"].lower()
    assert "/mail/" not in message["TextBody"]


def test_list_help_on_every_email_and_the_mailto_unsubscribe(streams, esp):
    streams.TRANSACTIONAL_MAIL = {**streams.TRANSACTIONAL_MAIL,
                                  "LIST_HELP": "mailto:help@example.com",
                                  "UNSUBSCRIBE_MAILTO": "unsubscribe@example.com"}
    essential, _ = send("order_confirmation")
    review, _ = send("review_request")
    first, second = (headers(request.json) for request in esp.requests)
    assert first["List-Help"] == "<mailto:help@example.com>"
    assert second["List-Help"] == "<mailto:help@example.com>"
    token = make_token(review.pk).replace(":", "%3A")
    assert second["List-Unsubscribe"] == (
        f"<https://shop.example.com/mail/unsubscribe/{make_token(review.pk)}/>, "
        f"<mailto:unsubscribe@example.com?subject=unsubscribe%20{token}>"
    )


def test_without_https_there_is_no_one_click_post(streams, esp):
    streams.TRANSACTIONAL_MAIL = {**streams.TRANSACTIONAL_MAIL,
                                  "BASE_URL": "http://localhost:8000/"}
    send("review_request")
    [request] = esp.requests
    assert headers(request.json)["List-Unsubscribe"].startswith(
        "<http://localhost:8000/mail/unsubscribe/")
    assert "List-Unsubscribe-Post" not in headers(request.json)


def test_without_base_url_non_essential_mail_has_no_links(streams, esp):
    streams.TRANSACTIONAL_MAIL = {**streams.TRANSACTIONAL_MAIL, "BASE_URL": ""}
    send("review_request")
    [request] = esp.requests
    assert "List-Unsubscribe" not in headers(request.json)
    assert "unsubscribe" not in request.json["HtmlBody"].lower()


def test_the_callers_sender_and_reply_to_win_over_the_categorys(streams, esp):
    email, _ = send("review_request", from_email="Ann's Shop <ann@shop.example.com>",
                    reply_to=["ann@shop.example.com"])
    [request] = esp.requests
    assert request.json["From"] == "Ann's Shop <ann@shop.example.com>"
    assert request.json["ReplyTo"] == "ann@shop.example.com"
    assert request.json["MessageStream"] == "broadcast"  # the stream stays the category's


def test_each_email_gets_its_own_links_from_one_layout_render(streams, esp):
    """Layouts render once per revision: the links are put in per email."""
    first, _ = send("review_request", to="ann@example.com")
    second, _ = send("review_request", to="bob@example.com")
    essential, _ = send("order_confirmation", to="cid@example.com")
    bodies = [request.json["HtmlBody"] for request in esp.requests]
    assert make_token(first.pk) in bodies[0] and make_token(second.pk) not in bodies[0]
    assert make_token(second.pk) in bodies[1] and make_token(first.pk) not in bodies[1]
    assert "tm-unsubscribe-url" not in "".join(bodies)
    assert "mail/unsubscribe" not in bodies[2]


def test_an_undeclared_category_is_essential_as_before(esp, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "BASE_URL": "https://shop.example.com"}
    make_template(layout=make_layout(html=LINKED_LAYOUT_HTML), category="marketing")
    send("order_confirmation")
    [request] = esp.requests
    assert "List-Unsubscribe" not in headers(request.json)
    assert "MessageStream" not in request.json
    assert request.json["From"] == "Shop <shop@example.com>"
    assert get_category("marketing") == Category(key="marketing")


def test_a_categorys_connection_sends_through_its_own_backend(streams, esp):
    streams.TRANSACTIONAL_MAIL = {**streams.TRANSACTIONAL_MAIL, "CATEGORIES": {
        **CATEGORIES,
        "reviews": {**CATEGORIES["reviews"],
                    "connection": {"backend": "django.core.mail.backends.locmem.EmailBackend"}},
    }}
    mail.outbox = []
    review, outcome = send("review_request")
    essential, _ = send("order_confirmation")
    assert outcome.status == EmailStatus.SENT
    [sent] = mail.outbox
    assert sent.to == ["ann@example.com"]
    assert sent.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert esp.requests_for(essential.pk) and not esp.requests_for(review.pk)


def test_a_categorys_connection_options_reach_the_backend(streams, esp):
    """A dict of options (here Anymail's server token) opens a connection with them."""
    streams.TRANSACTIONAL_MAIL = {**streams.TRANSACTIONAL_MAIL, "CATEGORIES": {
        **CATEGORIES, "reviews": {**CATEGORIES["reviews"],
                                  "connection": {"server_token": "broadcast-token"}}}}
    send("review_request")
    send("order_confirmation")
    tokens = [request.headers.get("X-Postmark-Server-Token") for request in esp.requests]
    assert tokens == ["broadcast-token", "test-token"]


def test_an_unsubscribe_never_blocks_essential_mail(streams, esp):
    Suppression.objects.create(address="ann@example.com", category="",
                               reason=SuppressionReason.UNSUBSCRIBE)
    _, review = send("review_request")
    _, order = send("order_confirmation")
    assert review.status == EmailStatus.SUPPRESSED
    assert order.status == EmailStatus.SENT


def test_an_unsubscribe_from_one_category_leaves_the_others(streams, esp, settings):
    streams.TRANSACTIONAL_MAIL["CATEGORIES"] = {
        **CATEGORIES, "tips": {"essential": False}}
    make_template("tip", layout=make_layout(name="Plain"), category="tips")
    Suppression.objects.create(address="ann@example.com", category="reviews",
                               reason=SuppressionReason.UNSUBSCRIBE)
    assert send("review_request")[1].status == EmailStatus.SUPPRESSED
    assert send("tip")[1].status == EmailStatus.SENT


@pytest.mark.parametrize("reason", [SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT,
                                    SuppressionReason.SOFT_BOUNCES, SuppressionReason.MANUAL])
def test_bounces_complaints_and_staff_block_everything(streams, esp, reason):
    Suppression.objects.create(address="ann@example.com", category="", reason=reason)
    assert send("review_request")[1].status == EmailStatus.SUPPRESSED
    assert send("order_confirmation")[1].status == EmailStatus.SUPPRESSED
    assert esp.requests == []


def test_declared_categories_skip_malformed_ones(settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "CATEGORIES": {
        "reviews": {"essential": False, "reply_to": "help@example.com"},
        "broken": {"essential": "no"},
    }}
    assert declared_categories() == {"reviews": Category(
        key="reviews", essential=False, reply_to=("help@example.com",))}
    assert get_category("broken").essential is True
    assert get_category("").essential is True


def test_tokens_verify_only_their_own_email():
    token = make_token(42)
    assert read_token(token) == 42
    assert read_token(token.replace("42:", "43:")) is None
    assert read_token(token[:-1] + ("a" if token[-1] != "a" else "b")) is None
    assert read_token("42") is None
    assert read_token("x" * 1000) is None
    assert re.fullmatch(r"[0-9]+:[-\w]+", token)


def test_the_default_layout_links_non_essential_mail_only(streams, esp):
    from transactional_mail.default_layout import NAME
    from transactional_mail.models import Layout

    default = Layout.objects.get(name=NAME)
    make_template("tip", layout=default, category="reviews")
    make_template("receipt", layout=default, category="orders")
    tip, _ = send("tip")
    send("receipt")
    linked, plain = (request.json["HtmlBody"] for request in esp.requests)
    token = make_token(tip.pk)
    assert f'href="https://shop.example.com/mail/unsubscribe/{token}/"' in linked
    assert f'href="https://shop.example.com/mail/preferences/{token}/"' in linked
    assert 'class="unsubscribe"' not in plain and "href=\"\"" not in plain


def test_a_hostile_setting_never_becomes_a_header_of_its_own(streams, esp):
    """Settings that skipped `manage.py check` still give one header line each."""
    streams.TRANSACTIONAL_MAIL = {**streams.TRANSACTIONAL_MAIL,
                                  "LIST_HELP": "mailto:help@example.com>\r\nBcc: x@evil.example",
                                  "BASE_URL": "https://shop.example.com\r\nBcc: y@evil.example"}
    send("review_request")
    [request] = esp.requests
    assert "Bcc" not in request.json
    values = headers(request.json)
    assert not any("\n" in value or "\r" in value for value in values.values())
    assert set(values) == {"List-Help", "List-Unsubscribe", "List-Unsubscribe-Post"}


def test_a_categorys_esp_down_leaves_the_other_streams_sending(streams, esp):
    """One batch, two streams: the one whose server refuses connections is retried later;
    the other is sent."""
    streams.TRANSACTIONAL_MAIL = {**streams.TRANSACTIONAL_MAIL, "CATEGORIES": {
        **CATEGORIES, "reviews": {**CATEGORIES["reviews"], "connection": {
            "backend": "django.core.mail.backends.smtp.EmailBackend",
            "host": "127.0.0.1", "port": 1, "timeout": 2}}}}
    review = transactional_mail.send("review_request", "ann@example.com", ORDER_CONTEXT)
    order = transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT)
    outcomes = delivery.deliver_batch([review.pk, order.pk], 2)
    assert outcomes[order.pk].status == EmailStatus.SENT
    assert outcomes[review.pk].status == EmailStatus.QUEUED
    assert outcomes[review.pk].retry_in
    review.refresh_from_db()
    assert "Connection refused" in review.last_error or "[Errno" in review.last_error
