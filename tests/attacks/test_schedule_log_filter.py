"""The send log's ``?schedule_run=<id>`` filter and the run's page, probed with ids that
are not plain numbers, and with schedule keys holding LIKE's wildcards."""

from __future__ import annotations

import pytest

from tests.periodic.conftest import MONDAY, weekly
from tests.test_admin_schedules import LOG, URL, operator, runs, schedules, viewer  # noqa: F401
from transactional_mail.models import Email, ScheduleRun
from transactional_mail.periodic.definitions import parse_schedule
from transactional_mail.periodic.runs import run

pytestmark = pytest.mark.django_db

#: Strings str.isdigit() accepts that int() refuses, or reads as another number.
ODD_IDS = ["²", "①", "١", "1\n", " 1", "1 ", "+1", "0x1", "1_0", "%", "_", "1%", "1e3", ""]


@pytest.mark.parametrize("value", ODD_IDS)
def test_the_send_log_filter_of_an_odd_id_shows_nothing(runs, value):  # noqa: F811
    response = viewer().get(LOG, {"schedule_run": value})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize("value", ["²", "①", "١"])
def test_the_page_of_an_odd_run_id_is_not_a_server_error(runs, value):  # noqa: F811
    """Also for staff who may resume (the page then looks the run up itself)."""
    for client in (viewer(), operator()):
        response = client.get(f"{URL}{value}/change/", follow=True)
        assert response.status_code in (200, 404)


def test_a_schedule_key_with_wildcards_shows_its_own_emails_only(settings, report_template,
                                                                 enqueued):
    """"_" is a LIKE wildcard and a valid key character: run "a_b"'s filter must not show
    the emails of schedule "aXb"."""
    definitions = {key: weekly() for key in ("a_b", "aXb", "a_bc")}
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULES": definitions}
    for key, definition in definitions.items():
        run(parse_schedule(key, definition), MONDAY)
    client = viewer()
    record = ScheduleRun.objects.get(schedule_key="a_b")
    response = client.get(LOG, {"schedule_run": record.pk})
    shown = {email.idempotency_key for email in response.context["cl"].result_list}
    assert len(shown) == 3
    assert all(key.startswith("schedule:a_b:") for key in shown)
    assert Email.objects.count() == 9


def test_a_hostile_skip_reason_is_shown_as_text(runs):  # noqa: F811
    """A skipped recipient's reason quotes what the source yielded: markup in it stays
    text on the runs list, the run's page and the send log filter."""
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    record = runs["stopped"]
    ScheduleRun.objects.filter(pk=record.pk).update(last_error=f"{hostile!r}: not one line")
    client = viewer()
    for url in (URL, f"{URL}{record.pk}/change/"):
        page = client.get(url).content.decode()
        assert "&lt;script&gt;" in page and "<script>alert" not in page
        assert "<img src=x" not in page
