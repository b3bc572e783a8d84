"""transactional_mail.auth: Django's password reset through the outbox.

The request path queues one task whatever the address; the task (run here in the test
process; tests/integration/test_accounts.py runs it in a real worker) looks the users up
and calls send().
"""

from __future__ import annotations

import re

import pytest
from celery.signals import before_task_publish
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.models import User
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.contrib.auth.views import PasswordResetView
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from tests.factories import make_template
from transactional_mail import delivery
from transactional_mail.auth import PasswordResetForm, send_password_reset
from transactional_mail.exceptions import ConfigurationError
from transactional_mail.models import Email, EmailStatus
from transactional_mail.redaction import REDACTED

pytestmark = pytest.mark.django_db

DJANGO_VIEW = "/accounts/password_reset/"
SHOP_VIEW = "/shop/password-reset/"


@pytest.fixture
def template():
    return make_template(
        "password_reset",
        subject="Reset your {{ site_name }} password",
        html=('<p>Hi {{ user.name }},</p><p><a class="button" href="{{ reset_url }}">Choose a '
              "new password</a> (valid {{ link_valid_hours }} hours)</p>"),
        category="account",
    )


@pytest.fixture
def ann():
    return User.objects.create_user("ann", "ann@example.com", "old-password",
                                     first_name="Ann", last_name="Lee")


@pytest.fixture
def drop_in(settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "USE_PASSWORD_RESET_FORM": True}


class Publishes:
    """The tasks published while the block runs (the ``before_task_publish`` signal)."""

    def __init__(self):
        self.tasks: list[tuple[str, tuple]] = []

    def __enter__(self):
        before_task_publish.connect(self.record, weak=False)
        return self

    def __exit__(self, *exc):
        before_task_publish.disconnect(self.record)

    def record(self, sender=None, body=None, **kwargs):
        self.tasks.append((sender, body[0] if isinstance(body, tuple) else body))


def request_reset(client, address: str, captured, url: str = DJANGO_VIEW):
    """POST the reset form; return (response, the queries, the published tasks)."""
    with Publishes() as publishes, CaptureQueriesContext(connection) as queries, \
            captured(execute=True):
        response = client.post(url, {"email": address})
    return response, [query["sql"] for query in queries], publishes.tasks


def test_known_and_unknown_addresses_get_the_same_response_and_the_same_work(
        client, ann, drop_in, django_capture_on_commit_callbacks):
    """Same status, same redirect, the same SQL (none: no user lookup on the request path)
    and one task published each: nothing tells an account from no account."""
    known, known_sql, known_tasks = request_reset(client, "ann@example.com",
                                                  django_capture_on_commit_callbacks)
    unknown, unknown_sql, unknown_tasks = request_reset(client, "nobody@example.com",
                                                        django_capture_on_commit_callbacks)
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert known["Location"] == "/accounts/password_reset/done/"
    assert known_sql == unknown_sql
    assert not any("auth_user" in sql for sql in known_sql)
    assert [name for name, _ in known_tasks] == ["transactional_mail.send_password_reset"]
    assert [name for name, _ in unknown_tasks] == ["transactional_mail.send_password_reset"]
    assert known_tasks[0][1][0] == "ann@example.com"
    assert not Email.objects.exists()  # the worker queues the email, not the request


def test_without_the_setting_django_s_own_form_is_used(settings):
    assert PasswordResetView.form_class is auth_forms.PasswordResetForm
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "USE_PASSWORD_RESET_FORM": True}
    assert PasswordResetView.form_class is PasswordResetForm
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "USE_PASSWORD_RESET_FORM": False}
    assert PasswordResetView.form_class is auth_forms.PasswordResetForm


def task_of(client, address, captured, url=DJANGO_VIEW):
    """The published task's arguments for a reset request."""
    _, _, tasks = request_reset(client, address, captured, url)
    [(_, args)] = tasks
    return args


def test_the_worker_queues_the_reset_email_with_the_link_secret(
        client, ann, template, drop_in, django_capture_on_commit_callbacks, esp):
    args = task_of(client, "ANN@example.com", django_capture_on_commit_callbacks)
    assert send_password_reset(*args) == 1
    email = Email.objects.get()
    assert email.template_key == "password_reset"
    assert email.to == ["ann@example.com"]
    assert email.secret_keys == ["reset_url"]
    assert email.source_object_id == str(ann.pk)
    assert email.source_content_type.model == "user"
    assert email.context["user"] == {"name": "Ann Lee", "email": "ann@example.com"}
    assert email.context["link_valid_hours"] == 72  # PASSWORD_RESET_TIMEOUT, 3 days
    assert email.context["site_name"] == "testserver"
    assert email.context["site_url"] == "http://testserver"

    delivery.deliver(email.pk)
    html = esp.requests[0].json["HtmlBody"]
    [link] = re.findall(r'href="(http://testserver/accounts/reset/[^"]+)"', html)
    # The link works: Django's confirm view takes it and asks for the new password.
    page = client.get(link.removeprefix("http://testserver"), follow=True)
    assert page.status_code == 200
    assert "new_password1" in page.content.decode()
    stored = Email.objects.get(pk=email.pk)
    assert stored.status == EmailStatus.SENT
    assert stored.context["reset_url"] == REDACTED
    assert link.split("/reset/")[1] not in stored.html_body + stored.text_body


def test_an_unknown_address_queues_nothing(client, ann, template, drop_in,
                                           django_capture_on_commit_callbacks):
    args = task_of(client, "nobody@example.com", django_capture_on_commit_callbacks)
    assert send_password_reset(*args) == 0
    assert not Email.objects.exists()


def test_without_a_template_the_log_says_why(client, ann, drop_in,
                                             django_capture_on_commit_callbacks):
    """No password_reset template yet: a failed row naming the problem, not silence."""
    args = task_of(client, "ann@example.com", django_capture_on_commit_callbacks)
    assert send_password_reset(*args) == 0
    email = Email.objects.get()
    assert email.status == EmailStatus.FAILED
    assert email.last_error.startswith("Password reset could not be queued: TemplateNotFound")
    assert email.to == ["ann@example.com"] and email.source_object_id == str(ann.pk)


def test_an_inactive_user_gets_nothing(client, ann, template, drop_in,
                                       django_capture_on_commit_callbacks):
    User.objects.filter(pk=ann.pk).update(is_active=False)
    assert send_password_reset(*task_of(client, "ann@example.com",
                                        django_capture_on_commit_callbacks)) == 0


def test_the_email_is_in_the_request_s_language(client, ann, template, drop_in,
                                                django_capture_on_commit_callbacks):
    make_template("password_reset", language="fr", subject="Nouveau mot de passe",
                  category="account")
    with translation.override("fr"):
        args = task_of(client, "ann@example.com", django_capture_on_commit_callbacks)
    send_password_reset(*args)
    assert Email.objects.get().language == "fr"


def test_a_setting_names_the_user_s_language(client, ann, template, settings,
                                             django_capture_on_commit_callbacks):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "USE_PASSWORD_RESET_FORM": True,
                                   "PASSWORD_RESET_LANGUAGE": "last_name"}
    make_template("password_reset", language="de", subject="Neues Passwort",
                  category="account")
    User.objects.filter(pk=ann.pk).update(last_name="de")  # a language field, for the test
    send_password_reset(*task_of(client, "ann@example.com", django_capture_on_commit_callbacks))
    assert Email.objects.get().language == "de"


def test_a_user_without_the_related_object_gets_the_request_s_language(settings):
    """A one-to-one the user lacks (no profile yet) is no error: the request's language."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "PASSWORD_RESET_LANGUAGE": "profile.language"}

    class NoProfile:
        @property
        def profile(self):
            raise ObjectDoesNotExist("User has no profile.")

    assert PasswordResetForm().user_language(NoProfile()) is None


def test_a_site_s_own_view_with_the_form(client, ann, template,
                                         django_capture_on_commit_callbacks):
    """form_class=PasswordResetForm works without the setting."""
    args = task_of(client, "ann@example.com", django_capture_on_commit_callbacks, SHOP_VIEW)
    assert send_password_reset(*args) == 1


class OtherTokens(PasswordResetTokenGenerator):
    pass


def test_another_token_generator_must_be_named_on_the_form(ann):
    form = PasswordResetForm({"email": "ann@example.com"})
    assert form.is_valid()
    with pytest.raises(ConfigurationError, match="Set token_generator on a subclass"):
        form.save(domain_override="shop.example.com", token_generator=OtherTokens())


def test_the_task_only_runs_password_reset_forms():
    with pytest.raises(ConfigurationError, match="is not a PasswordResetForm"):
        send_password_reset("ann@example.com",
                            {"form": "django.contrib.auth.forms.UserCreationForm"})
