"""manage.py resend_emails."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.management import CommandError, call_command

import transactional_mail
from tests.factories import make_template, published
from transactional_mail.models import Email, EmailStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def emails():
    make_template()
    failed = transactional_mail.send("order_confirmation", "a@example.com")
    sent = transactional_mail.send("order_confirmation", "b@example.com")
    Email.objects.filter(pk=failed.pk).update(status=EmailStatus.FAILED, attempts=8,
                                              last_error="[permanent] 401")
    Email.objects.filter(pk=sent.pk).update(status=EmailStatus.SENT)
    return failed, sent


def test_resend_failed(emails, django_capture_on_commit_callbacks, capsys):
    failed, sent = emails
    with mock.patch("transactional_mail.publishing.publish") as publish, \
            django_capture_on_commit_callbacks(execute=True):
        call_command("resend_emails", "--failed")
    assert published(publish) == [(failed.pk,)]
    failed.refresh_from_db()
    assert failed.status == EmailStatus.QUEUED and failed.attempts == 0
    assert Email.objects.get(pk=sent.pk).status == EmailStatus.SENT
    assert "Queued 1 email(s)" in capsys.readouterr().out


def test_resend_by_id_skips_emails_the_esp_accepted(emails):
    failed, sent = emails
    with mock.patch("transactional_mail.publishing.publish"):
        call_command("resend_emails", str(sent.pk), str(failed.pk))
    assert Email.objects.get(pk=sent.pk).status == EmailStatus.SENT
    assert Email.objects.get(pk=failed.pk).status == EmailStatus.QUEUED


def test_resend_by_id_names_the_emails_it_skips(emails, capsys):
    failed, sent = emails
    with mock.patch("transactional_mail.publishing.publish"):
        call_command("resend_emails", str(sent.pk), str(failed.pk))
    out = capsys.readouterr().out
    assert "Queued 1 email(s)" in out
    assert f"Skipped email {sent.pk} (sent: the ESP accepted it; --force sends it again)." in out
    assert f"Skipped email {failed.pk}" not in out


def test_resend_unknown_id(emails):
    with pytest.raises(CommandError, match="No email with id 999"):
        call_command("resend_emails", "999")


def test_resend_needs_a_selection():
    with pytest.raises(CommandError, match="--failed"):
        call_command("resend_emails")


def test_resend_since_filters(emails):
    with mock.patch("transactional_mail.publishing.publish"):
        call_command("resend_emails", "--failed", "--since", "2999-01-01")
    assert Email.objects.filter(status=EmailStatus.FAILED).count() == 1
    with pytest.raises(CommandError, match="not an ISO date"):
        call_command("resend_emails", "--failed", "--since", "yesterday")


def test_resend_force_includes_emails_the_esp_accepted(emails):
    failed, sent = emails
    with mock.patch("transactional_mail.publishing.publish"):
        call_command("resend_emails", str(sent.pk), "--force")
    assert Email.objects.get(pk=sent.pk).status == EmailStatus.QUEUED


def test_resend_force_never_touches_emails_in_progress(emails):
    failed, sent = emails
    Email.objects.filter(pk=sent.pk).update(status=EmailStatus.SENDING)
    with mock.patch("transactional_mail.publishing.publish"):
        call_command("resend_emails", str(sent.pk), "--force")
    assert Email.objects.get(pk=sent.pk).status == EmailStatus.SENDING
