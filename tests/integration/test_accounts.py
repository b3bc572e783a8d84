"""End to end: Django's password reset view -> broker -> a real celery worker looks the user
up and queues the email -> the worker delivers it -> the fake Postmark API.

The link that arrives works (Django's confirm view takes it); the send log's copy of the
email does not hold it.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from tests.factories import make_template
from tests.integration.helpers import settle, wait_for_status
from tests.workers import wait_for
from transactional_mail.models import Email
from transactional_mail.redaction import REDACTED

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def reset_setup(settings, db):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "USE_PASSWORD_RESET_FORM": True}
    make_template("password_reset", subject="Reset your password",
                  html='<p>Hi {{ user.name }}, <a href="{{ reset_url }}">reset</a>.</p>',
                  category="account")
    return User.objects.create_user("ann", "ann@example.com", "old-password",
                                    first_name="Ann")


def test_a_reset_link_arrives_works_and_is_not_in_the_log_and_unknown_gets_nothing(
        redis_worker, esp, reset_setup, client):
    """One test, not two: the worker caches the user's content type, whose id the next
    transactional test's flush would change."""
    known = client.post("/accounts/password_reset/", {"email": "ann@example.com"})
    assert known.status_code == 302

    row = wait_for(lambda: Email.objects.filter(template_key="password_reset").first(), 30,
                   message="the worker to queue the reset email")
    email = wait_for_status(row, "sent")
    [request] = esp.requests_for(email.pk)
    [link] = re.findall(r'href="http://testserver(/accounts/reset/[^"]+)"',
                        request.json["HtmlBody"])
    page = client.get(link, follow=True)
    assert page.status_code == 200
    assert "new_password1" in page.content.decode()  # Django accepted the token

    assert email.context["reset_url"] == REDACTED
    token = link.split("/reset/")[1]
    assert token not in email.html_body + email.text_body + email.subject
    assert email.source_object_id == str(reset_setup.pk)

    # An address without an account: the same answer, and nothing queued or sent.
    unknown = client.post("/accounts/password_reset/", {"email": "nobody@example.com"})
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    settle(3)
    assert Email.objects.count() == 1
    assert len(esp.requests) == 1
