"""Enumeration through allauth's password reset with the app's adapter: does a request
for a known address do the same work as one for an unknown address?"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_template
from tests.test_auth import Publishes
from transactional_mail.models import Email

pytest.importorskip("allauth", reason="the allauth extra is not installed")

pytestmark = pytest.mark.django_db


def work(client, address, captured):
    mail.outbox.clear()
    rows = Email.objects.count()
    with Publishes() as publishes, CaptureQueriesContext(connection) as queries, \
            captured(execute=True):
        response = client.post("/allauth/password/reset/", {"email": address})
    writes = [q["sql"].split()[0] for q in queries
              if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    return {"status": response.status_code, "location": response.get("Location"),
            "writes": writes, "published": [name for name, _ in publishes.tasks],
            "django_mail": len(mail.outbox), "rows": Email.objects.count() - rows}


@pytest.mark.parametrize("unknown_accounts", [True, False])
def test_allauth_reset_does_the_same_work_for_known_and_unknown(
        allauth, client, settings, unknown_accounts, django_capture_on_commit_callbacks):
    from allauth.account.models import EmailAddress

    settings.ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = unknown_accounts
    make_template("password_reset", subject="Reset", html='<a href="{{ reset_url }}">r</a>',
                  category="account")
    user = User.objects.create_user("ann", "ann@example.com", "old-password-1")
    EmailAddress.objects.create(user=user, email="ann@example.com", primary=True,
                                verified=True)
    work(client, "warm@example.com", django_capture_on_commit_callbacks)  # first connect
    known = work(client, "ann@example.com", django_capture_on_commit_callbacks)
    unknown = work(client, "nobody@example.com", django_capture_on_commit_callbacks)
    assert known["status"] == unknown["status"] and known["location"] == unknown["location"]
    assert (known["writes"], known["published"], known["django_mail"], known["rows"]) == (
        unknown["writes"], unknown["published"], unknown["django_mail"], unknown["rows"])
