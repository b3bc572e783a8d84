"""The plain first admin: every page loads, the log is view-only and searchable."""

from __future__ import annotations

import pytest

import transactional_mail
from tests.factories import make_layout, make_template
from transactional_mail.models import Email

pytestmark = pytest.mark.django_db


@pytest.fixture
def email():
    make_template(layout=make_layout())
    return transactional_mail.send("order_confirmation", "ann@example.com",
                                   {"order": {"number": "A-1"}})


@pytest.mark.parametrize("page", [
    "/admin/transactional_mail/email/",
    "/admin/transactional_mail/emailtemplate/",
    "/admin/transactional_mail/layout/",
    "/admin/transactional_mail/suppression/",
    "/admin/transactional_mail/trigger/",
])
def test_changelists_load(admin_client, email, page):
    assert admin_client.get(page).status_code == 200


@pytest.mark.parametrize(("term", "found"), [
    ("ann@example.com", True), ("bob@example.com", False), ("not-a-number", False),
])
def test_send_log_search(admin_client, email, term, found):
    response = admin_client.get("/admin/transactional_mail/email/", {"q": term})
    assert response.status_code == 200
    assert (email in response.context["cl"].result_list) is found


def test_search_by_id(admin_client, email):
    response = admin_client.get("/admin/transactional_mail/email/", {"q": str(email.pk)})
    assert list(response.context["cl"].result_list) == [email]


def test_send_log_is_view_only(admin_client, email):
    change = admin_client.get(f"/admin/transactional_mail/email/{email.pk}/change/")
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert admin_client.post(f"/admin/transactional_mail/email/{email.pk}/delete/",
                             {"post": "yes"}).status_code == 403
    assert Email.objects.filter(pk=email.pk).exists()


def test_template_change_page_lists_revisions(admin_client, email):
    template = make_template("welcome", subject="Hi")
    template.subject = "Hello"
    template.save()
    page = admin_client.get(f"/admin/transactional_mail/emailtemplate/{template.pk}/change/")
    assert page.status_code == 200
    assert b"Hello" in page.content and b"Hi" in page.content
