"""transactional_mail.allauth.AccountAdapter against the real django-allauth (the test extra).

Each flow runs through allauth's own views; the email is queued with the app's template
in the starter's keys, its links and codes marked secret, and (where it matters) the link
or code that arrives works.
"""

from __future__ import annotations

import importlib
import re
import sys

import pytest
from django.contrib.auth.models import User
from django.core import mail

from tests.factories import make_template
from transactional_mail import delivery
from transactional_mail.exceptions import ConfigurationError
from transactional_mail.models import Email
from transactional_mail.redaction import REDACTED

pytest.importorskip("allauth", reason="the allauth extra is not installed")

pytestmark = pytest.mark.django_db


def template(key: str, html: str) -> None:
    make_template(key, subject=f"{key} for {{{{ user.name }}}}", html=html, category="account")


@pytest.fixture
def ann(db):
    from allauth.account.models import EmailAddress

    user = User.objects.create_user("ann", "ann@example.com", "old-password-1",
                                    first_name="Ann")
    EmailAddress.objects.create(user=user, email="ann@example.com", primary=True,
                                verified=True)
    return user


def only_email(key: str) -> Email:
    [email] = Email.objects.filter(template_key=key)
    return email


@pytest.fixture
def reset(client, django_capture_on_commit_callbacks):
    """POST allauth's reset form for an address, then run the task it queued, as the
    worker would; return the task's result (how many accounts it found)."""
    from tests.test_auth import Publishes
    from transactional_mail.allauth import send_allauth_password_reset

    def post(address: str, **extra) -> int:
        with Publishes() as publishes, django_capture_on_commit_callbacks(execute=True):
            response = client.post("/allauth/password/reset/", {"email": address}, **extra)
        assert response.status_code == 302
        [(name, args)] = publishes.tasks
        assert name == "transactional_mail.send_allauth_password_reset"
        assert not mail.outbox and not Email.objects.exists()  # nothing in the request
        return send_allauth_password_reset(*args)

    return post


def test_signup_confirmation_goes_through_the_app_and_its_link_works(allauth, client, esp):
    template("account_activation", '<a href="{{ activation_url }}">Confirm</a> '
             "({{ link_valid_days }} days)")
    response = client.post("/allauth/signup/", {"email": "bob@example.com",
                                                "password1": "A-long-pass-93",
                                                "password2": "A-long-pass-93"})
    assert response.status_code == 302
    email = only_email("account_activation")
    assert email.to == ["bob@example.com"]
    assert email.secret_keys == ["activation_url"]
    assert email.context["link_valid_days"] == 3
    assert email.context["user"]["email"] == "bob@example.com"
    assert email.source_object_id == str(User.objects.get(email="bob@example.com").pk)
    assert not mail.outbox  # not allauth's own mail

    delivery.deliver(email.pk)
    [link] = re.findall(r'href="http://testserver(/allauth/confirm-email/[^"]+)"',
                        esp.requests[0].json["HtmlBody"])
    client.post(link)
    from allauth.account.models import EmailAddress

    assert EmailAddress.objects.get(email="bob@example.com").verified
    assert Email.objects.get(pk=email.pk).context["activation_url"] == REDACTED


def test_password_reset_through_allauth_s_view(allauth, client, ann, esp, reset):
    template("password_reset", '<a href="{{ reset_url }}">Reset</a> '
             "({{ link_valid_hours }} hours)")
    assert reset("ann@example.com") == 1
    email = only_email("password_reset")
    assert email.secret_keys == ["reset_url"]
    assert email.context["user"] == {"name": "Ann", "email": "ann@example.com"}
    assert email.context["link_valid_hours"] == 72
    assert email.context["site_url"] == "http://testserver"
    assert "key" not in email.context and "uid" not in email.context

    delivery.deliver(email.pk)
    [link] = re.findall(r'href="http://testserver(/allauth/password/reset/key/[^"]+)"',
                        esp.requests[0].json["HtmlBody"])
    page = client.get(link, follow=True)
    assert "password1" in page.content.decode()  # allauth took the key
    assert Email.objects.get(pk=email.pk).context["reset_url"] == REDACTED


def test_a_sign_in_code(allauth, client, ann, esp):
    """The test settings enable login by code (allauth reads it when its URLs load)."""
    template("sign_in_code", "<p>Your code: {{ code }} ({{ code_valid_minutes }} min)</p>")
    response = client.post("/allauth/login/code/", {"email": "ann@example.com"})
    assert response.status_code == 302
    email = only_email("sign_in_code")
    assert email.secret_keys == ["code"]
    assert len(email.context["code"]) >= 6
    assert email.context["code_valid_minutes"] == 3

    delivery.deliver(email.pk)
    [code] = re.findall(r"Your code: (\S+) ", esp.requests[0].json["HtmlBody"])
    client.post("/allauth/login/code/confirm/", {"code": code})
    assert client.session.get("_auth_user_id") == str(ann.pk)  # the code signed her in
    assert Email.objects.get(pk=email.pk).context["code"] == REDACTED


def test_a_security_notice(allauth, client, ann, settings):
    settings.ACCOUNT_EMAIL_NOTIFICATIONS = True
    template("password_changed", "<p>Changed at {{ changed_at }}; not you? "
             '<a href="{{ security_url }}">secure your account</a></p>')
    client.force_login(ann)
    client.post("/allauth/password/change/", {"oldpassword": "old-password-1",
                                              "password1": "New-pass-8812",
                                              "password2": "New-pass-8812"})
    email = only_email("password_changed")
    assert email.secret_keys == []
    assert email.context["security_url"] == "http://testserver/allauth/password/change/"
    assert email.context["changed_at"]
    assert email.context["ip_address"] == "127.0.0.1"


def test_an_unmapped_message_goes_out_as_allauth_sends_it(allauth, settings, reset):
    settings.ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = True
    assert reset("nobody@example.com") == 0
    assert not Email.objects.exists()
    [message] = mail.outbox
    assert message.to == ["nobody@example.com"]


def test_a_setting_maps_more_messages(allauth, settings, reset):
    settings.ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = True
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "ALLAUTH_TEMPLATES": {
        "account/email/unknown_account": "unknown_account"}}
    template("unknown_account", '<a href="{{ signup_url }}">Sign up</a>')
    reset("nobody@example.com")
    email = only_email("unknown_account")
    assert email.context["signup_url"] == "http://testserver/allauth/signup/"
    assert not mail.outbox


def test_a_missing_template_falls_back_to_allauth_s_mail(allauth, ann, caplog, reset):
    reset("ann@example.com")
    assert not Email.objects.exists()
    [message] = mail.outbox
    assert "/allauth/password/reset/key/" in message.body
    assert "No 'password_reset' template for allauth's account/email/password_reset_key" \
        in caplog.text


def test_importing_without_allauth_names_the_extra(monkeypatch):
    for name in [name for name in sys.modules if name == "allauth" or
                 name.startswith("allauth.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "allauth", None)
    monkeypatch.delitem(sys.modules, "transactional_mail.allauth", raising=False)
    with pytest.raises(ConfigurationError, match=r'django-transactional-mail\[allauth\]'):
        importlib.import_module("transactional_mail.allauth")


def test_the_email_changed_notice_in_the_starter_s_keys(allauth, ann, rf):
    from allauth.core.context import request_context

    from transactional_mail.allauth import AccountAdapter

    template("email_changed", "<p>{{ old_email }} is now {{ new_email }}</p>")
    with request_context(rf.get("/")):
        AccountAdapter().send_mail("account/email/email_changed", "ann@example.com", {
            "user": ann, "from_email": "ann@example.com", "to_email": "ann@new.example.com",
            "timestamp": "2026-11-30T01:00:00+00:00", "ip": "192.0.2.1",
            "user_agent": "Firefox on a laptop"})
    email = only_email("email_changed")
    assert email.context == {
        "user": {"name": "Ann", "email": "ann@example.com"},
        "site_name": "testserver", "site_url": "http://testserver",
        "old_email": "ann@example.com", "new_email": "ann@new.example.com",
        "changed_at": "2026-11-30T01:00:00+00:00", "ip_address": "192.0.2.1",
        "device": "Firefox on a laptop", "security_url": "http://testserver/allauth/email/",
    }
    assert email.secret_keys == []


def test_the_reset_link_keeps_the_request_s_scheme_and_host(allauth, ann, reset, settings):
    settings.ALLOWED_HOSTS = ["shop.example.com"]
    template("password_reset", '<a href="{{ reset_url }}">Reset</a>')
    assert reset("ann@example.com", secure=True, HTTP_HOST="shop.example.com") == 1
    assert only_email("password_reset").context["reset_url"].startswith(
        "https://shop.example.com/allauth/password/reset/key/")


def test_allauth_s_view_gets_allauth_s_form_back_with_another_adapter(settings):
    from allauth.account.forms import ResetPasswordForm as AllauthForm
    from allauth.account.views import PasswordResetView

    from transactional_mail.allauth import ResetPasswordForm

    settings.ACCOUNT_ADAPTER = "transactional_mail.allauth.AccountAdapter"
    assert PasswordResetView.form_class is ResetPasswordForm
    settings.ACCOUNT_ADAPTER = "allauth.account.adapter.DefaultAccountAdapter"
    assert PasswordResetView.form_class is AllauthForm


def test_an_unknown_address_is_still_refused_when_allauth_is_set_to_tell(allauth, client,
                                                                          settings):
    """``ACCOUNT_PREVENT_ENUMERATION = False`` is a site's choice to tell: the form looks
    the address up in the request, as allauth's does."""
    settings.ACCOUNT_PREVENT_ENUMERATION = False
    response = client.post("/allauth/password/reset/", {"email": "nobody@example.com"})
    assert response.status_code == 200
    assert response.context["form"].errors["email"]  # allauth's "not assigned to any account"
