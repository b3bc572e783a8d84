"""The alerts banner (templatetags/transactional_mail_alerts.py) above the send log and on
the admin index, and the read-only list of alerts (admin/alerts.py)."""

from __future__ import annotations

import datetime

import pytest
from django.contrib import admin
from django.utils import timezone

from tests.admin_clients import staff_client
from transactional_mail.admin.alerts import INDEX_TEMPLATE, show_alerts_on_index
from transactional_mail.alerts import check_alerts
from transactional_mail.models import Alert, Email

pytestmark = pytest.mark.django_db

BANNER = 'class="messagelist transactional-mail-alerts"'
MESSAGE = "The bounce rate is 7.00% over the last 24 hours"


@pytest.fixture
def alert():
    now = timezone.now()
    return Alert.objects.create(kind="bounce_rate", severity="critical", message=MESSAGE,
                                value=0.07, threshold=0.05, raised_at=now, checked_at=now)


@pytest.mark.parametrize("url", ["/admin/", "/admin/transactional_mail/email/"])
def test_active_alerts_show_above_the_send_log_and_on_the_index(admin_client, alert, url):
    page = admin_client.get(url).content.decode()
    assert BANNER in page and MESSAGE in page
    assert '<li class="error">' in page and "Critical: bounce rate" in page
    assert "have not been checked for a while" not in page


@pytest.mark.parametrize("url", ["/admin/", "/admin/transactional_mail/email/"])
def test_no_banner_once_resolved(admin_client, alert, url):
    Alert.objects.update(resolved_at=timezone.now())
    assert BANNER not in admin_client.get(url).content.decode()


def test_a_warning_is_shown_as_a_warning(admin_client, alert):
    Alert.objects.update(severity="warning")
    assert '<li class="warning">' in admin_client.get("/admin/").content.decode()


def test_staff_who_may_not_view_the_send_log_see_no_alert(alert):
    page = staff_client(perms=("view_emailtemplate",)).get("/admin/").content.decode()
    assert BANNER not in page and MESSAGE not in page
    page = staff_client("viewer", perms=("view_email",)).get("/admin/").content.decode()
    assert MESSAGE in page


def test_the_banner_says_when_the_checks_stopped(admin_client, alert):
    """Beat stopped: the banner may show an alert that has ended, and says so."""
    Alert.objects.update(checked_at=timezone.now() - datetime.timedelta(hours=2))
    page = admin_client.get("/admin/").content.decode()
    assert MESSAGE in page and "have not been checked for a while" in page


def test_a_site_index_template_of_its_own_is_kept():
    site = admin.AdminSite(name="custom")
    site.index_template = "my/index.html"
    show_alerts_on_index(site)
    assert site.index_template == "my/index.html"
    show_alerts_on_index(plain := admin.AdminSite(name="plain"))
    assert plain.index_template == INDEX_TEMPLATE


def test_the_alert_list_is_read_only(admin_client, alert):
    page = admin_client.get("/admin/transactional_mail/alert/").content.decode()
    assert "bounce rate" in page
    assert admin_client.get("/admin/transactional_mail/alert/add/").status_code == 403
    change = admin_client.get(f"/admin/transactional_mail/alert/{alert.pk}/change/")
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()


def test_broken_alert_settings_do_not_break_the_admin(admin_client, alert, settings):
    """manage.py check reports them (E012); the admin index still loads."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "ALERTS": {"NOPE": 1}}
    response = admin_client.get("/admin/")
    assert response.status_code == 200 and MESSAGE in response.content.decode()


def test_a_stuck_outbox_shows_even_when_no_check_runs(admin_client):
    """Broker or workers down: check_alerts cannot run either, so the banner measures the
    outbox itself (one capped count over the outbox index)."""
    long_ago = timezone.now() - datetime.timedelta(hours=1)
    Email.objects.create(template_key="welcome", from_email="shop@example.com",
                         to=["a@example.com"], next_attempt_at=long_ago)
    for url in ("/admin/", "/admin/transactional_mail/email/"):
        page = admin_client.get(url).content.decode()
        assert "Critical: outbox stuck" in page
        assert "1 email has been due in the outbox for more than 15 minutes" in page
        assert "no alert check has recorded it" in page
    assert not Alert.objects.exists()


def test_a_recorded_stuck_outbox_is_shown_once(admin_client):
    Email.objects.create(template_key="welcome", from_email="shop@example.com",
                         to=["a@example.com"],
                         next_attempt_at=timezone.now() - datetime.timedelta(hours=1))
    check_alerts()
    page = admin_client.get("/admin/").content.decode()
    assert page.count("been due in the outbox") == 1
    assert "no alert check has recorded it" not in page


def test_the_banner_costs_two_queries(admin_client, alert, django_assert_max_num_queries):
    from django.template import Context, Template

    request = admin_client.get("/admin/").wsgi_request
    tag = Template("{% load transactional_mail_alerts %}{% transactional_mail_alerts %}")
    with django_assert_max_num_queries(2):  # the alerts; the outbox count
        assert MESSAGE in tag.render(Context({"request": request}))
