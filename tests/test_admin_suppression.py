"""The suppressions admin: list, exact search, filters, add and remove with a reason kept
in the history, and the event that caused a suppression."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User

from tests.factories import make_template
from transactional_mail.models import (
    EmailEvent,
    Suppression,
    SuppressionChange,
    SuppressionHistory,
    SuppressionReason,
)

pytestmark = pytest.mark.django_db

URL = "/admin/transactional_mail/suppression/"


@pytest.fixture
def bounced():
    return Suppression.objects.create(address="ann@example.com",
                                      reason=SuppressionReason.HARD_BOUNCE,
                                      source="Postmark event ev-1")


def test_search_is_exact_and_normalised(admin_client, bounced):
    Suppression.objects.create(address="joann@example.com", reason=SuppressionReason.MANUAL)
    found = admin_client.get(URL, {"q": " Ann <ANN@example.com> "}).context["cl"].result_list
    assert list(found) == [bounced]
    assert list(admin_client.get(URL, {"q": "example.com"}).context["cl"].result_list) == []


def test_filters_by_reason_and_category(admin_client, bounced):
    make_template(category="news")
    news = Suppression.objects.create(address="bob@example.com", category="news",
                                      reason=SuppressionReason.UNSUBSCRIBE)
    assert list(admin_client.get(URL, {"reason": "unsubscribe"}).context["cl"].result_list) == [
        news]
    assert list(admin_client.get(URL, {"category": "news"}).context["cl"].result_list) == [news]


def test_add_needs_a_reason_and_records_it(admin_client):
    response = admin_client.post(f"{URL}add/", {"address": "Cid@Example.com", "category": "",
                                                "reason": "manual", "note": ""})
    assert response.status_code == 200 and not Suppression.objects.exists()  # form error
    admin_client.post(f"{URL}add/", {"address": "Cid@Example.com", "category": "",
                                     "reason": "manual", "note": "Asked by phone"})
    suppression = Suppression.objects.get()
    assert suppression.address == "cid@example.com"
    [entry] = SuppressionHistory.objects.all()
    assert (entry.change, entry.note, entry.user.username) == (
        SuppressionChange.ADDED, "Asked by phone", "admin")


def test_remove_asks_for_a_reason_and_keeps_it(admin_client, bounced):
    page = admin_client.get(f"{URL}{bounced.pk}/delete/")
    assert page.status_code == 200 and b'name="note"' in page.content
    admin_client.post(f"{URL}{bounced.pk}/delete/", {"note": ""})
    assert Suppression.objects.filter(pk=bounced.pk).exists()  # no reason, no removal
    admin_client.post(f"{URL}{bounced.pk}/delete/", {"note": "Mailbox fixed, she called"})
    assert not Suppression.objects.filter(pk=bounced.pk).exists()
    [entry] = SuppressionHistory.objects.all()
    assert (entry.address, entry.change, entry.suppression_reason, entry.note) == (
        "ann@example.com", SuppressionChange.REMOVED, SuppressionReason.HARD_BOUNCE,
        "Mailbox fixed, she called")
    assert LogEntry.objects.filter(object_id=str(bounced.pk)).exists()


def test_bulk_delete_is_not_offered(admin_client, bounced):
    assert b"delete_selected" not in admin_client.get(URL).content


def test_view_only_staff_cannot_add_or_remove(client, bounced):
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_suppression"))
    client.force_login(user)
    assert client.get(URL).status_code == 200
    assert client.get(f"{URL}{bounced.pk}/change/").status_code == 200
    assert client.post(f"{URL}{bounced.pk}/delete/", {"note": "x"}).status_code == 403
    assert client.post(f"{URL}add/", {"address": "x@example.com", "reason": "manual",
                                      "note": "x"}).status_code == 403
    assert Suppression.objects.count() == 1


def test_the_causing_event_and_the_history_show(admin_client, bounced):
    EmailEvent.objects.create(esp_name="Postmark", event_id="ev-1", event_type="bounced",
                              description="Mailbox does not exist", hard_bounce=True)
    SuppressionHistory.objects.create(address="ann@example.com", change="removed",
                                      suppression_reason="manual", note="an older removal")
    html = admin_client.get(f"{URL}{bounced.pk}/change/").content.decode()
    assert "Mailbox does not exist" in html
    assert "an older removal" in html
