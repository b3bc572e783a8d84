"""Attacks on transactional_mail.auth.PasswordResetForm: enumeration, host header
poisoning, several accounts, inactive and password-less users, Unicode and case tricks."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_template
from tests.test_auth import Publishes
from transactional_mail import delivery
from transactional_mail.auth import send_password_reset
from transactional_mail.models import Email

pytestmark = pytest.mark.django_db

VIEW = "/accounts/password_reset/"


@pytest.fixture
def template():
    return make_template("password_reset", subject="Reset",
                         html='<p><a href="{{ reset_url }}">reset</a> {{ site_url }}</p>',
                         category="account")


@pytest.fixture
def drop_in(settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "USE_PASSWORD_RESET_FORM": True}


def post(client, address, captured, **extra):
    """POST the form: (response, SQL, published tasks, log records)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with Publishes() as publishes, CaptureQueriesContext(connection) as queries, \
                captured(execute=True):
            response = client.post(VIEW, {"email": address}, **extra)
    finally:
        root.removeHandler(handler)
    return response, [q["sql"] for q in queries], publishes.tasks, records


def shape(result):
    response, sql, tasks, records = result
    return (response.status_code, response.get("Location"), response.content, sql,
            [name for name, _ in tasks], [(r.name, r.levelno) for r in records],
            sorted(response.cookies.keys()))


@pytest.mark.parametrize("other", ["nobody@example.com", "inactive@example.com",
                                   "nopass@example.com"])
def test_known_unknown_inactive_passwordless_look_the_same(client, drop_in, other,
                                                           django_capture_on_commit_callbacks):
    User.objects.create_user("ann", "ann@example.com", "pw")
    User.objects.create_user("ina", "inactive@example.com", "pw", is_active=False)
    User.objects.create_user("nop", "nopass@example.com", None)
    post(client, "warm-up@example.com", django_capture_on_commit_callbacks)  # first connect
    rows_before = Email.objects.count()
    known = post(client, "ann@example.com", django_capture_on_commit_callbacks)
    unknown = post(client, other, django_capture_on_commit_callbacks)
    assert shape(known) == shape(unknown)
    assert Email.objects.count() == rows_before  # no side effect on the request path


def test_inactive_and_passwordless_users_get_nothing_from_the_worker(
        client, drop_in, template, django_capture_on_commit_callbacks):
    User.objects.create_user("ina", "inactive@example.com", "pw", is_active=False)
    User.objects.create_user("nop", "nopass@example.com", None)
    for address in ("inactive@example.com", "nopass@example.com"):
        _, _, [(_, args)], _ = post(client, address, django_capture_on_commit_callbacks)
        assert send_password_reset(*args) == 0
    assert not Email.objects.exists()


def test_host_header_not_allowed_is_refused_and_nothing_queued(
        client, drop_in, settings, django_capture_on_commit_callbacks):
    settings.ALLOWED_HOSTS = ["shop.example.com"]
    User.objects.create_user("ann", "ann@example.com", "pw")
    response, _, tasks, _ = post(client, "ann@example.com", django_capture_on_commit_callbacks,
                                 HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert tasks == []


def test_the_worker_builds_the_link_on_the_request_host_as_django_does(
        client, drop_in, template, settings, esp, django_capture_on_commit_callbacks):
    """With ALLOWED_HOSTS = ["*"] the link follows the Host header, exactly as Django's own
    form (documented: "else the request's host"): the defence is ALLOWED_HOSTS or
    django.contrib.sites. Kept as a regression test of that documented behaviour."""
    settings.ALLOWED_HOSTS = ["*"]
    User.objects.create_user("ann", "ann@example.com", "pw")
    _, _, [(_, args)], _ = post(client, "ann@example.com", django_capture_on_commit_callbacks,
                                HTTP_HOST="evil.example")
    assert args[1]["domain"] == "evil.example"


def test_several_accounts_of_one_address_each_get_their_own_link_to_the_stored_address(
        client, drop_in, template, esp, django_capture_on_commit_callbacks):
    one = User.objects.create_user("ann1", "Ann@Example.com", "pw")
    two = User.objects.create_user("ann2", "ann@example.com", "pw")
    _, _, [(_, args)], _ = post(client, "ANN@EXAMPLE.COM", django_capture_on_commit_callbacks)
    assert send_password_reset(*args) == 2
    emails = list(Email.objects.order_by("pk"))
    assert sorted(e.to[0] for e in emails) == ["Ann@example.com", "ann@example.com"]
    assert {e.source_object_id for e in emails} == {str(one.pk), str(two.pk)}
    for email in emails:
        delivery.deliver(email.pk)
    bodies = [r.json["HtmlBody"] for r in esp.requests]
    assert len(set(bodies)) == 2  # a link per account, never one account's link to both


@pytest.mark.parametrize("attack", [
    "mıke@example.org",   # dotless i: upper() is MIKE
    "mike@example.org ",  # trailing space
    "MİKE@example.org",   # dotted capital I
    "mike@exampIe.org",   # capital I for l
])
def test_unicode_lookalikes_never_mail_the_attacker_spelling(
        client, drop_in, template, esp, attack, django_capture_on_commit_callbacks):
    User.objects.create_user("mike", "mike@example.org", "pw")
    response, _, tasks, _ = post(client, attack, django_capture_on_commit_callbacks)
    for _, args in tasks:
        send_password_reset(*args)
    for email in Email.objects.all():
        assert email.to == ["mike@example.org"]


def test_extra_context_cannot_come_from_the_request(client, drop_in, template, esp,
                                                    django_capture_on_commit_callbacks):
    """Posted fields beyond the email do not reach the task's options."""
    User.objects.create_user("ann", "ann@example.com", "pw")
    with Publishes() as publishes, django_capture_on_commit_callbacks(execute=True):
        client.post(VIEW, {"email": "ann@example.com", "domain": "evil.example",
                           "reset_url": "https://evil.example/", "form": "os.system"})
    [(_, args)] = publishes.tasks
    assert args[1]["form"] == "transactional_mail.auth.PasswordResetForm"
    assert args[1]["extra_context"] == {}
    assert args[1]["domain"] == "testserver"
