"""CATEGORIES and the link settings: system checks (exact messages, ids, hints) and the
template form refusing an undeclared category."""

from __future__ import annotations

import pytest
from django.core import checks
from django.core.exceptions import ValidationError
from django.test import override_settings

from tests.factories import make_template
from transactional_mail.checks import check_settings

BASE = {"DEFAULT_FROM_EMAIL": "a@example.com", "BASE_URL": "https://shop.example.com"}
DECLARED = {"orders": {}, "reviews": {"essential": False}}


def ids(messages) -> list[str]:
    return [message.id for message in messages]


@override_settings(TRANSACTIONAL_MAIL={**BASE, "CATEGORIES": DECLARED,
                                       "LIST_HELP": "mailto:help@example.com",
                                       "UNSUBSCRIBE_MAILTO": "unsubscribe@example.com"})
def test_well_formed_streams_pass():
    assert check_settings() == []


@override_settings(TRANSACTIONAL_MAIL={**BASE, "CATEGORIES": ["orders"]})
def test_categories_must_be_a_dict():
    assert check_settings() == [checks.Error(
        "TRANSACTIONAL_MAIL['CATEGORIES'] must be a dict of category key -> definition.",
        hint="For example {'reviews': {'essential': False}}; see the deliverability guide.",
        id="transactional_mail.E020")]


@override_settings(TRANSACTIONAL_MAIL={**BASE, "CATEGORIES": {
    "bad key!": {},
    "reviews": {"essential": "no", "from_email": "a@example.com, b@example.com",
                "reply_to": 3, "esp_extra": ["MessageStream"], "connection": 5,
                "stream": "broadcast"},
}})
def test_malformed_categories_are_each_reported():
    messages = check_settings()
    assert set(ids(messages)) == {"transactional_mail.E020"}
    text = "\n".join(message.msg for message in messages)
    assert "the category key 'bad key!' must be a slug" in text
    assert "'reviews' has an unknown key 'stream'" in text
    assert "'reviews': 'essential' must be True or False." in text
    assert "'from_email' 'a@example.com, b@example.com' is 2 addresses in one string" in text
    assert "'reviews': 'reply_to' is 3" in text
    assert "'esp_extra' must be a dict" in text
    assert "'connection' must be None" in text


@override_settings(TRANSACTIONAL_MAIL={**BASE, "CATEGORIES": DECLARED, "TRIGGERS": {
    "review_request": {"model": "testapp.Order", "on": "created", "template": "review_request",
                       "to": "customer.email", "category": "review"},
}})
def test_a_trigger_naming_an_undeclared_category():
    assert check_settings() == [checks.Error(
        "TRANSACTIONAL_MAIL['TRIGGERS']['review_request']: the category 'review' is not "
        "declared in TRANSACTIONAL_MAIL['CATEGORIES'].",
        hint="Declared: orders, reviews.", obj="trigger review_request",
        id="transactional_mail.E021")]


@override_settings(TRANSACTIONAL_MAIL={**BASE, "TRIGGERS": {
    "review_request": {"model": "testapp.Order", "on": "created", "template": "review_request",
                       "to": "customer.email", "category": "anything"},
}})
def test_while_none_is_declared_categories_are_free_labels():
    assert check_settings() == []


@pytest.mark.parametrize(("name", "value"), [
    ("BASE_URL", "shop.example.com"),
    ("BASE_URL", "https://shop.example.com/>, <https://evil.example"),
    ("LIST_HELP", "help@example.com"),
    ("LIST_HELP", "mailto:help@example.com>\r\nBcc: x@evil.example"),
    ("UNSUBSCRIBE_MAILTO", "mailto:unsubscribe@example.com"),
    ("UNSUBSCRIBE_MAILTO", "Shop <unsubscribe@example.com>"),
])
def test_malformed_link_settings(settings, name, value):
    settings.TRANSACTIONAL_MAIL = {**BASE, "CATEGORIES": DECLARED, name: value}
    assert ids(check_settings()) == ["transactional_mail.E022"]


def test_soft_bounce_limit_is_a_whole_number(settings):
    settings.TRANSACTIONAL_MAIL = {**BASE, "SOFT_BOUNCE_LIMIT": 0}
    assert ids(check_settings()) == ["transactional_mail.E003"]


def test_non_essential_mail_without_base_url_warns(settings):
    settings.TRANSACTIONAL_MAIL = {"DEFAULT_FROM_EMAIL": "a@example.com",
                                   "CATEGORIES": DECLARED}
    assert check_settings() == [checks.Warning(
        "Non-essential mail (reviews) goes out without an unsubscribe link: "
        "TRANSACTIONAL_MAIL['BASE_URL'] is not set.",
        hint="Set BASE_URL to the site's https URL and add path('mail/', "
        "include('transactional_mail.urls')) to your URLconf.",
        id="transactional_mail.W020")]


def test_a_plain_http_base_url_warns_unless_it_is_local(settings):
    settings.TRANSACTIONAL_MAIL = {**BASE, "CATEGORIES": DECLARED,
                                   "BASE_URL": "http://shop.example.com"}
    assert ids(check_settings()) == ["transactional_mail.W021"]
    settings.TRANSACTIONAL_MAIL["BASE_URL"] = "http://127.0.0.1:8000"
    assert check_settings() == []


def test_the_unsubscribe_pages_must_be_in_the_urlconf(settings):
    settings.ROOT_URLCONF = "tests.urls_without_mail"
    settings.TRANSACTIONAL_MAIL = {**BASE, "CATEGORIES": DECLARED}
    assert check_settings() == [checks.Error(
        "Non-essential mail needs the unsubscribe pages, and the URLconf does not include "
        "them.",
        hint="Add path('mail/', include('transactional_mail.urls')) to your URLconf.",
        id="transactional_mail.E023")]


@pytest.mark.django_db
def test_a_template_with_an_undeclared_category_is_refused_naming_the_declared(settings):
    settings.TRANSACTIONAL_MAIL = {**BASE, "CATEGORIES": DECLARED}
    template = make_template(publish=False)  # "orders": declared
    template.full_clean()
    template.category = "newsletter"
    with pytest.raises(ValidationError) as raised:
        template.full_clean()
    assert raised.value.message_dict == {"category": [
        "The category newsletter is not declared in the site's settings "
        "(TRANSACTIONAL_MAIL['CATEGORIES']). Declared categories: orders, reviews."]}


def test_a_categorys_backend_must_import(settings):
    settings.TRANSACTIONAL_MAIL = {**BASE, "CATEGORIES": {
        "orders": {"connection": "no.such.Backend"},
        "reviews": {"essential": False, "connection": {"backend": "no.such.Other"}},
    }}
    messages = check_settings()
    assert ids(messages) == ["transactional_mail.E020", "transactional_mail.E020"]
    assert "'orders': the connection's backend 'no.such.Backend' cannot be imported" in (
        messages[0].msg)
    assert "'no.such.Other'" in messages[1].msg


@pytest.mark.django_db
def test_the_template_form_refuses_an_undeclared_category(admin_client, settings):
    settings.TRANSACTIONAL_MAIL = {**BASE, "CATEGORIES": DECLARED}
    from transactional_mail.models import EmailTemplate

    form = {"key": "newsletter", "language": "", "subject": "Hi", "html": "<p>Hi</p>",
            "text": "", "layout": "", "sample_context": "{}",
            "revisions-TOTAL_FORMS": "0", "revisions-INITIAL_FORMS": "0"}
    response = admin_client.post("/admin/transactional_mail/emailtemplate/add/",
                                 {**form, "category": "newsletters"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["category"] == [
        "The category newsletters is not declared in the site's settings "
        "(TRANSACTIONAL_MAIL['CATEGORIES']). Declared categories: orders, reviews."]
    assert not EmailTemplate.objects.exists()
    response = admin_client.post("/admin/transactional_mail/emailtemplate/add/",
                                 {**form, "category": "reviews"})
    assert response.status_code == 302
    assert EmailTemplate.objects.get().category == "reviews"


@override_settings(TRANSACTIONAL_MAIL={**BASE, "CATEGORIES": DECLARED, "SCHEDULES": {
    "digest": {"schedule": "1h", "recipients": "tests.periodic.recipients.three",
               "template": "weekly_report", "category": "newsletter"},
    "report": {"schedule": "1h", "recipients": "tests.periodic.recipients.three",
               "template": "weekly_report", "category": "reviews"},
}})
def test_a_schedule_naming_an_undeclared_category():
    """E041, the trigger check (E021) applied to the schedules."""
    assert check_settings() == [checks.Error(
        "TRANSACTIONAL_MAIL['SCHEDULES']['digest']: the category 'newsletter' is not "
        "declared in TRANSACTIONAL_MAIL['CATEGORIES'].",
        hint="Declared: orders, reviews.", obj="schedule digest",
        id="transactional_mail.E041")]


@override_settings(TRANSACTIONAL_MAIL={**BASE, "SCHEDULES": {
    "digest": {"schedule": "1h", "recipients": "tests.periodic.recipients.three",
               "template": "weekly_report", "category": "anything"},
}})
def test_a_schedules_category_is_a_free_label_while_none_is_declared():
    assert check_settings() == []


@pytest.fixture
def orders_template(db):
    return make_template("order_confirmation", category="orders")


@pytest.mark.django_db
def test_send_refuses_an_undeclared_category_naming_the_declared(settings, orders_template):
    """Refused when called, before anything is written: its mail would go out in no
    stream, without the sender and unsubscribe link its category needs."""
    from transactional_mail import send
    from transactional_mail.api import build_email
    from transactional_mail.exceptions import InvalidEmailOption
    from transactional_mail.models import Email

    settings.TRANSACTIONAL_MAIL = {**BASE, "CATEGORIES": DECLARED}
    message = (r"The category 'review' is not declared in TRANSACTIONAL_MAIL\['CATEGORIES'\] "
               r"\(declared: orders, reviews\)")
    with pytest.raises(InvalidEmailOption, match=message):
        send("order_confirmation", "ann@example.com", category="review")
    with pytest.raises(InvalidEmailOption, match=message):
        build_email("order_confirmation", "ann@example.com", category="review")
    with pytest.raises(InvalidEmailOption, match="category must be a category key"):
        send("order_confirmation", "ann@example.com", category=["orders"])
    assert not Email.objects.exists()


@pytest.mark.django_db
def test_send_takes_a_declared_category_and_the_templates(settings, orders_template):
    """A declared key is taken; None is the template's category (what the password reset
    form and the allauth adapter pass) and "" none, as before (a trigger's blank one)."""
    from transactional_mail import send

    settings.TRANSACTIONAL_MAIL = {**BASE, "CATEGORIES": DECLARED}
    assert send("order_confirmation", "ann@example.com", category="reviews").category == (
        "reviews")
    assert send("order_confirmation", "ann@example.com").category == "orders"
    assert send("order_confirmation", "ann@example.com", category="").category == ""


@pytest.mark.django_db
def test_send_takes_any_category_while_none_is_declared(settings, orders_template):
    from transactional_mail import send

    settings.TRANSACTIONAL_MAIL = BASE
    assert send("order_confirmation", "ann@example.com", category="anything").category == (
        "anything")
