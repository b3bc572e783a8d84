"""The schedule runs admin in a real browser: the schedules above the list, a stopped run
resumed with the action, a run's page, and the link to its emails in the send log."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from django.utils import timezone

from tests.browser.admin_pages import expect, log_in
from tests.factories import make_template
from tests.periodic.conftest import MONDAY, REPORT_HTML, weekly
from transactional_mail.models import ScheduleRun
from transactional_mail.periodic.definitions import parse_schedule
from transactional_mail.periodic.runs import run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_resume_a_stopped_run_and_open_a_runs_emails(page, settings, enqueued,
                                                           screenshot):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULES": {
        "weekly_report": weekly(description="The Monday report")}}
    make_template("weekly_report", subject="Your report", html=REPORT_HTML)
    run(parse_schedule("weekly_report", weekly()), MONDAY)
    stopped = ScheduleRun.objects.create(
        schedule_key="weekly_report", period="2026-11-23T08:00+01:00", recipients_done=1,
        lease_token="00000000-0000-0000-0000-000000000001",
        lease_expires_at=timezone.now() - datetime.timedelta(minutes=1))
    log_in(page, "ops")
    page.goto("/admin/transactional_mail/schedulerun/")
    expect(page.locator("#configured-schedules")).to_contain_text("The Monday report")
    screenshot("schedule-runs")

    page.locator(f"input[name=_selected_action][value='{stopped.pk}']").check()
    page.select_option("select[name=action]", "resume_now")
    with mock.patch("transactional_mail.periodic.tasks.resume_schedule_run.apply_async"
                    ) as apply_async:
        page.click("button[name=index]")
        expect(page.locator(".messagelist")).to_contain_text("1 run will resume in a worker.")
    apply_async.assert_called_once_with((stopped.pk,))

    page.goto(f"/admin/transactional_mail/schedulerun/{stopped.pk}/change/")
    with mock.patch("transactional_mail.periodic.tasks.resume_schedule_run.apply_async"
                    ) as apply_async:
        page.click("text=Resume now")
        expect(page.locator(".messagelist")).to_contain_text("1 run will resume in a worker.")
    apply_async.assert_called_once_with((stopped.pk,))

    page.locator("#result_list tr", has_text="2026-11-30T08:00+01:00").locator("th a").click()
    expect(page.locator("#content")).to_contain_text("2026-11-30T08:00+01:00")
    expect(page.locator("#content")).to_contain_text("in the send log")
    page.goto("/admin/transactional_mail/schedulerun/")
    page.locator("#result_list tr", has_text="2026-11-30T08:00+01:00").get_by_text(
        "in the send log").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(3)
