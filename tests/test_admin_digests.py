"""The digest windows admin: staff see what waits for whom and when it goes; view only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.admin_clients import staff_client
from tests.factories import make_template
from tests.testapp.models import Customer
from tests.triggers.helpers import BASE, new_order
from transactional_mail.models import DigestWindow
from transactional_mail.triggers import digests

pytestmark = pytest.mark.django_db

URL = "/admin/transactional_mail/digestwindow/"


@pytest.fixture
def windows(use_triggers):
    make_template("order_digest", subject="{{ count }} orders")
    use_triggers(digest={**BASE, "on": "created", "template": "order_digest",
                         "context": ["number"], "digest": {"window": "1h"}})
    ann = Customer.objects.create(name="Ann", email="ann@example.com")
    bob = Customer.objects.create(name="Bob", email="bob@example.com")
    new_order(ann, "A-1")
    digests.close_due_windows(now=timezone.now() + timedelta(hours=2))
    new_order(bob, "B-1")
    new_order(bob, "B-2")
    return DigestWindow.objects.order_by("pk")


def test_the_list_shows_waiting_events_and_the_digest_email(admin_client, windows):
    closed, open_ = windows
    page = admin_client.get(URL).content.decode()
    assert "bob@example.com" in page and "ann@example.com" in page
    assert f'href="/admin/transactional_mail/email/{closed.email_id}/change/"' in page
    assert admin_client.get(URL, {"closed_at__isempty": "1"}).context[
        "cl"].result_count == 1
    detail = admin_client.get(f"{URL}{open_.pk}/change/").content.decode()
    assert "B-1" in detail and "B-2" in detail


def test_view_only_even_for_a_superuser(admin_client, windows):
    window = windows.first()
    assert admin_client.get(f"{URL}add/").status_code == 403
    assert admin_client.post(f"{URL}{window.pk}/delete/", {"post": "yes"}).status_code == 403
    assert DigestWindow.objects.count() == 2


def test_staff_need_the_view_permission(windows):
    assert staff_client("sam").get(URL).status_code == 403
    assert staff_client("val", perms=("view_digestwindow",)).get(URL).status_code == 200
