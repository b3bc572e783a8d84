"""The schedule runs admin: staff with the view permission see each run, its lease and its
emails; only the change permission resumes a run that stopped half-way; the settings'
schedules are listed with their next due time and their beat row."""

from __future__ import annotations

import datetime
from unittest import mock

import django
import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.admin_clients import staff_client
from tests.factories import make_template
from tests.periodic.conftest import MONDAY, REPORT_HTML, weekly
from transactional_mail.models import Email, ScheduleRun
from transactional_mail.periodic.beat import row_name, sync_schedule_rows
from transactional_mail.periodic.definitions import parse_schedule
from transactional_mail.periodic.runs import run

pytestmark = pytest.mark.django_db

URL = "/admin/transactional_mail/schedulerun/"
LOG = "/admin/transactional_mail/email/"
LABEL = "2026-11-30T08:00+01:00"
HELD = "00000000-0000-0000-0000-000000000001"


@pytest.fixture
def schedules(settings):
    make_template("weekly_report", subject="Your report", html=REPORT_HTML)
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULES": {
        "weekly_report": weekly(description="The Monday report")}}


@pytest.fixture
def runs(schedules, enqueued):
    """A finished run (two periods' worth of emails), one stopped half-way that nobody
    holds, one a worker holds."""
    schedule = parse_schedule("weekly_report", weekly())
    run(schedule, MONDAY)
    run(schedule, MONDAY - datetime.timedelta(days=7))
    now = timezone.now()
    stopped = ScheduleRun.objects.create(
        schedule_key="weekly_report", period="2026-11-16T08:00+01:00", recipients_done=2,
        cursor="2", last_error="'bad': not an address", lease_token=HELD,
        lease_expires_at=now - datetime.timedelta(minutes=1))
    held = ScheduleRun.objects.create(
        schedule_key="weekly_report", period="2026-11-09T08:00+01:00", lease_token=HELD,
        lease_expires_at=now + datetime.timedelta(minutes=5))
    return {"done": ScheduleRun.objects.get(period=LABEL), "stopped": stopped, "held": held}


def viewer():
    return staff_client("val", perms=("view_schedulerun", "view_email"))


def operator():
    return staff_client("ops", perms=("view_schedulerun", "change_schedulerun"))


def resume(client, *records):
    """Post the action; the resume is enqueued when its transaction commits."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(URL, {"action": "resume_now",
                                 "_selected_action": [record.pk for record in records]},
                           follow=True)


def test_the_list_shows_each_run_newest_first(runs):
    response = viewer().get(URL)
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert rows == sorted(rows, key=lambda record: record.started_at, reverse=True)
    page = response.content.decode()
    assert LABEL in page and "3 (all)" in page
    assert "expired " in page and "held until " in page and "free" in page
    assert "&#x27;bad&#x27;: not an address" in page


def test_filters_by_schedule_and_status(runs):
    client = viewer()
    assert client.get(URL, {"status__exact": "done"}).context["cl"].result_count == 2
    assert client.get(URL, {"schedule_key": "weekly_report"}).context["cl"].result_count == 4
    assert client.get(URL, {"schedule_key": "other"}).context["cl"].result_count == 0
    # A schedule removed from the settings keeps its history.
    ScheduleRun.objects.create(schedule_key="gone", period=LABEL)
    assert client.get(URL, {"schedule_key": "gone"}).context["cl"].result_count == 1


def test_staff_need_the_view_permission(runs):
    assert staff_client("sam").get(URL).status_code == 403
    assert viewer().get(f"{URL}{runs['stopped'].pk}/change/").status_code == 200


def test_the_run_page_shows_the_run_and_changes_nothing(admin_client, runs):
    """Even a superuser only reads: no add, no delete, a POST to the page saves nothing."""
    record = runs["stopped"]
    page = admin_client.get(f"{URL}{record.pk}/change/").content.decode()
    assert "2026-11-16T08:00+01:00" in page and "not an address" in page
    assert 'name="_save"' not in page
    admin_client.post(f"{URL}{record.pk}/change/", {"status": "done", "recipients_done": 99})
    record.refresh_from_db()
    assert (record.status, record.recipients_done) == ("running", 2)
    assert admin_client.get(f"{URL}add/").status_code == 403
    assert admin_client.post(f"{URL}{record.pk}/delete/", {"post": "yes"}).status_code == 403


def test_a_run_links_to_its_emails_in_the_send_log(runs):
    """The link resolves to the run's period only: the other period's emails of the same
    schedule (and a send() with a look-alike key) are not in it."""
    import transactional_mail

    transactional_mail.send("weekly_report", "dan@example.com", {"name": "Dan"},
                            idempotency_key=f"Schedule:weekly_report:{LABEL}:x")
    client = viewer()
    record = runs["done"]
    link = f"{LOG}?schedule_run={record.pk}"
    assert f'href="{link.replace("&", "&amp;")}"' in client.get(URL).content.decode()
    response = client.get(link)
    assert response.status_code == 200
    shown = {email.pk for email in response.context["cl"].result_list}
    assert shown == {email.pk for email in Email.objects.all()
                     if email.idempotency_key.startswith(f"schedule:weekly_report:{LABEL}:")}
    assert len(shown) == 3
    assert str(record) in response.content.decode()  # the filter says which run


@pytest.mark.parametrize("value", ["999999", "x", "-1", "99999999999999999999999"])
def test_the_send_log_filter_of_an_unknown_run_shows_nothing(runs, value):
    response = viewer().get(LOG, {"schedule_run": value})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


def test_resume_now_enqueues_the_stopped_run_only(runs):
    """Of a finished run, one stopped half-way and one a worker holds, only the stopped
    one is resumed; the action is recorded in the admin's log."""
    with mock.patch("transactional_mail.periodic.tasks.resume_schedule_run.apply_async"
                    ) as apply_async:
        response = resume(operator(), *runs.values())
    apply_async.assert_called_once_with((runs["stopped"].pk,))
    page = response.content.decode()
    assert "1 run will resume in a worker." in page
    assert "2 runs left alone" in page
    assert LogEntry.objects.get().object_id == str(runs["stopped"].pk)


def test_resume_now_routes_to_the_apps_queue(settings, runs):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "QUEUE": "mail"}
    with mock.patch("transactional_mail.periodic.tasks.resume_schedule_run.apply_async"
                    ) as apply_async:
        resume(operator(), runs["stopped"])
    apply_async.assert_called_once_with((runs["stopped"].pk,), queue="mail")


def test_the_page_of_a_stopped_run_has_a_resume_button(runs):
    """Only on a run that stopped half-way and nobody holds, and only for staff who may
    resume; the button posts the action for that run."""
    client = operator()
    stopped, held = runs["stopped"], runs["held"]
    page = client.get(f"{URL}{stopped.pk}/change/").content.decode()
    assert 'value="resume_now"' in page and f'value="{stopped.pk}"' in page
    assert 'value="resume_now"' not in client.get(f"{URL}{held.pk}/change/").content.decode()
    assert 'value="resume_now"' not in client.get(
        f"{URL}{runs['done'].pk}/change/").content.decode()
    assert 'value="resume_now"' not in viewer().get(
        f"{URL}{stopped.pk}/change/").content.decode()
    with mock.patch("transactional_mail.periodic.tasks.resume_schedule_run.apply_async"
                    ) as apply_async, TestCase.captureOnCommitCallbacks(execute=True):
        client.post(URL, {"action": "resume_now", "_selected_action": stopped.pk})
    apply_async.assert_called_once_with((stopped.pk,))


def test_view_only_staff_cannot_resume(runs):
    """Without the change permission the action is not offered, and posting it anyway
    enqueues nothing."""
    client = viewer()
    assert "resume_now" not in client.get(URL).content.decode()
    with mock.patch("transactional_mail.periodic.tasks.resume_schedule_run.apply_async"
                    ) as apply_async:
        resume(client, runs["stopped"])
    apply_async.assert_not_called()
    assert not LogEntry.objects.exists()
    assert "resume_now" in operator().get(URL).content.decode()


def test_a_run_of_a_removed_schedule_is_not_resumed(settings, runs):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULES": {}}
    with mock.patch("transactional_mail.periodic.tasks.resume_schedule_run.apply_async"
                    ) as apply_async:
        page = resume(operator(), runs["stopped"]).content.decode()
    apply_async.assert_not_called()
    assert "no longer in" in page


def test_a_broker_that_is_down_does_not_break_the_page(runs, caplog):
    with mock.patch("transactional_mail.periodic.tasks.resume_schedule_run.apply_async",
                    side_effect=OSError("connection refused")):
        response = resume(operator(), runs["stopped"])
    assert response.status_code == 200
    assert "Could not enqueue the resume of schedule run" in caplog.text


def test_the_header_lists_the_schedules_with_their_beat_rows(runs):
    """Each schedule: its next due time and a link to its beat row, where staff pause it
    (a paused row says so)."""
    from django_celery_beat.models import PeriodicTask

    sync_schedule_rows()
    row = PeriodicTask.objects.get(name=row_name("weekly_report"))
    client = viewer()
    page = client.get(URL).content.decode()
    beat_url = f"/admin/django_celery_beat/periodictask/{row.pk}/change/"
    assert f'href="{beat_url}"' in page and "The Monday report" in page and "enabled" in page
    assert client.get(beat_url).status_code in (200, 403)  # the URL resolves
    listed = response_schedules(client)[0]
    assert listed.next_due > timezone.now() and listed.next_due.isoweekday() == 1
    assert listed.next_period.endswith(("T08:00+01:00", "T08:00+02:00"))  # Paris time
    assert listed.next_period in page
    row.enabled = False
    row.save()
    assert ">paused<" in client.get(URL).content.decode()


def test_a_schedule_with_a_mistake_is_listed_with_it(settings, runs):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULES": {
        "broken": {"schedule": "never", "recipients": "x", "template": "t"}}}
    page = viewer().get(URL).content.decode()
    assert "broken" in page and "not a schedule" in page


def response_schedules(client):
    return client.get(URL).context["schedules"]


def test_the_list_reads_a_fixed_number_of_queries(runs):
    """No query per row: the list of 60 runs costs what the list of 4 does."""
    client = viewer()
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    ScheduleRun.objects.bulk_create(
        ScheduleRun(schedule_key=f"k{number % 3}", period=f"2026-01-{number % 28 + 1:02d}"
                    f"T{number % 24:02d}:00+00:00", lease_token=HELD,
                    lease_expires_at=timezone.now())
        for number in range(60))
    with CaptureQueriesContext(connection) as many:
        response = client.get(URL)
    assert len(response.context["cl"].result_list) == 64
    assert len(many) == len(few)


@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="the pattern operator class is PostgreSQL's")
@pytest.mark.skipif(django.VERSION < (5, 0), reason=(
    "Django 4.2 creates the index with the condition LIKE 'schedule:%%' (its escaping, "
    "fixed in 5.0): PostgreSQL cannot match it to the query's, and scans (docs/send-log.md)"))
def test_the_emails_of_a_run_are_found_on_the_partial_index(runs):
    """The query repeats the index's condition, so PostgreSQL answers LIKE 'prefix%' from
    tmail_email_schedule_key_idx whatever the database's collation (with sequential scans
    off, as a big table would make it choose). Unordered: on a table this small the
    planner may prefer reading the created_at index backwards to sorting, which says
    nothing of the filter."""
    from transactional_mail.periodic.runs import emails_of

    sql, params = emails_of(Email.objects.order_by(), runs["done"]).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "tmail_email_schedule_key_idx" in plan, plan
