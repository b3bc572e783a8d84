"""The SCHEDULES setting: what ``manage.py check`` says about a bad definition."""

from __future__ import annotations

import pytest
from django.core import checks

from transactional_mail.checks import check_settings
from transactional_mail.exceptions import ConfigurationError
from transactional_mail.periodic.definitions import get_schedule, parse_schedule

from .conftest import weekly


def errors_of(settings, **definitions):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "SCHEDULES": definitions}
    return [error for error in check_settings() if error.id == "transactional_mail.E040"]


def test_a_good_definition_passes(settings):
    assert errors_of(settings, weekly_report=weekly(), hourly=weekly(schedule="1h"),
                     customers=weekly(recipients={"queryset": "testapp.Customer",
                                                  "context": "tests.periodic.recipients."
                                                  "customer_context"})) == []


def test_a_bad_schedule_is_an_error_with_an_id_and_a_hint(settings):
    assert errors_of(settings, weekly_report=weekly(schedule="every monday")) == [
        checks.Error(
            "TRANSACTIONAL_MAIL['SCHEDULES']['weekly_report']['schedule'] is 'every monday', "
            "not a schedule.",
            hint='Use crontab(hour=8, minute=0, day_of_week="mon") from celery.schedules, a '
            'timedelta, or a duration like "15m".',
            obj="schedule weekly_report",
            id="transactional_mail.E040",
        )
    ]


@pytest.mark.parametrize(("definition", "expected"), [
    (weekly(schedule="0.5s"), "an interval is a whole number of seconds, at least one"),
    (weekly(timezone="Mars/Olympus"), "'Mars/Olympus' is not a known time zone"),
    (weekly(recipients="tests.periodic.recipients.nobody"), "does not import as a callable"),
    (weekly(recipients={"queryset": "testapp.Nothing"}), "is neither an installed model"),
    (weekly(recipients={"queryset": "testapp.Customer", "to": "_password"}),
     "reaches '_password'"),
    (weekly(recipients={"queryset": "testapp.Customer", "context": "tests.nope.context"}),
     "['context'] 'tests.nope.context' does not import"),
    (weekly(template=""), "['template'] must be a non-empty string"),
    (weekly(secret_keys="login_url"), "['secret_keys'] must be a list"),
    (weekly(every="1h"), "unknown keys: every"),
    ({"schedule": "1h"}, "has no 'recipients'"),
])
def test_each_mistake_is_reported(settings, definition, expected):
    errors = errors_of(settings, report=definition)
    assert any(expected in error.msg for error in errors), [e.msg for e in errors]


def test_a_bad_key_and_a_bad_container(settings):
    assert "the key must be" in errors_of(settings, **{"weekly report": weekly()})[0].msg
    settings.TRANSACTIONAL_MAIL = {"SCHEDULES": ["weekly"]}
    assert [e.id for e in check_settings()] == ["transactional_mail.E040"]


def test_get_schedule_names_the_known_keys(settings):
    settings.TRANSACTIONAL_MAIL = {"SCHEDULES": {"weekly_report": weekly()}}
    with pytest.raises(ConfigurationError, match=r"No schedule 'weekly' .*known: weekly_report"):
        get_schedule("weekly")
    with pytest.raises(ConfigurationError, match="not a known time zone"):
        parse_schedule("bad", weekly(timezone="Nowhere"))


def test_schedules_without_django_celery_beat_are_a_warning(settings):
    from unittest import mock

    settings.TRANSACTIONAL_MAIL = {"SCHEDULES": {"weekly_report": weekly()}}
    with mock.patch("transactional_mail.checks.apps.is_installed",
                    lambda name: name != "django_celery_beat"):
        warnings = [m for m in check_settings() if m.id == "transactional_mail.W040"]
    assert len(warnings) == 1
    assert "nothing runs the schedules" in warnings[0].msg
    settings.TRANSACTIONAL_MAIL = {"SCHEDULES": {}}
    with mock.patch("transactional_mail.checks.apps.is_installed", lambda name: False):
        assert not [m for m in check_settings() if m.id == "transactional_mail.W040"]
