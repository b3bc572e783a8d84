"""Fixtures of the periodic email tests."""

from __future__ import annotations

import datetime

import pytest

from tests.factories import make_template

REPORT_HTML = "<p>Hello {{ name }}, here is your report.</p>"


@pytest.fixture
def report_template(db):
    return make_template("weekly_report", subject="Your report, {{ name }}", html=REPORT_HTML,
                         category="reports")


@pytest.fixture
def use_schedules(settings):
    """``use_schedules(key=definition, ...)``: exactly these schedules in settings."""
    def use(**definitions):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULES": definitions}
    return use


def weekly(**overrides):
    """A definition sending ``weekly_report`` on Mondays at 08:00 in Paris."""
    from celery.schedules import crontab

    return {"schedule": crontab(hour=8, minute=0, day_of_week="mon"),
            "timezone": "Europe/Paris", "recipients": "tests.periodic.recipients.three",
            "template": "weekly_report", "category": "reports", **overrides}


#: A Monday 08:00 in Paris (07:00 UTC, winter time).
MONDAY = datetime.datetime(2026, 11, 30, 7, 0, tzinfo=datetime.timezone.utc)
