"""System checks: exact messages, ids and hints."""

from __future__ import annotations

from django.core import checks
from django.test import override_settings

from transactional_mail.checks import check_installed_apps, check_settings


def test_valid_settings_pass():
    assert check_settings() == []


@override_settings(TRANSACTIONAL_MAIL=["not", "a", "dict"])
def test_settings_must_be_a_dict():
    assert check_settings() == [checks.Error(
        "TRANSACTIONAL_MAIL must be a dict.",
        hint="Set TRANSACTIONAL_MAIL = {...} in your settings; see the settings reference in "
        "the docs.",
        id="transactional_mail.E001",
    )]


@override_settings(TRANSACTIONAL_MAIL={"DEFAULT_FROM_EMAIL": "a@example.com",
                                       "MAX_ATEMPTS": 3})
def test_unknown_key_gets_a_did_you_mean_hint():
    assert check_settings() == [checks.Error(
        "TRANSACTIONAL_MAIL has an unknown setting 'MAX_ATEMPTS'.",
        hint="Did you mean 'MAX_ATTEMPTS'?",
        id="transactional_mail.E002",
    )]


@override_settings(TRANSACTIONAL_MAIL={"DEFAULT_FROM_EMAIL": "a@example.com",
                                       "MAX_ATTEMPTS": 0, "RAW_EVENT_RETENTION_DAYS": "30"})
def test_bad_numbers():
    assert check_settings() == [
        checks.Error(
            "TRANSACTIONAL_MAIL['MAX_ATTEMPTS'] is 0; it must be a whole number >= 1.",
            hint="Remove it to use the default (8).",
            id="transactional_mail.E003",
        ),
        checks.Error(
            "TRANSACTIONAL_MAIL['RAW_EVENT_RETENTION_DAYS'] is '30'; it must be a whole number "
            "of days >= 0, or None to keep raw webhook payloads.",
            hint="Raw payloads hold personal data; 30 days is the default.",
            id="transactional_mail.E003",
        ),
    ]


@override_settings(TRANSACTIONAL_MAIL={"DEFAULT_FROM_EMAIL": "a@example.com", "QUEUE": "",
                                       "TRIGGERS": []})
def test_bad_queue_and_triggers():
    ids = [message.id for message in check_settings()]
    assert ids == ["transactional_mail.E004", "transactional_mail.E005"]


@override_settings(TRANSACTIONAL_MAIL={"DEFAULT_FROM_EMAIL": "a@example.com",
                                       "EMAIL_BACKEND": "anymail.backends.nope.EmailBackend"})
def test_backend_that_does_not_import():
    [error] = check_settings()
    assert error.id == "transactional_mail.E006"
    assert error.msg.startswith(
        "TRANSACTIONAL_MAIL['EMAIL_BACKEND'] 'anymail.backends.nope.EmailBackend' cannot be "
        "imported")


@override_settings(TRANSACTIONAL_MAIL={}, DEFAULT_FROM_EMAIL="webmaster@localhost")
def test_placeholder_sender_warns():
    [warning] = check_settings()
    assert warning.id == "transactional_mail.W001"


@override_settings(TRANSACTIONAL_MAIL={"DEFAULT_FROM_EMAIL": "Shop <no address>"})
def test_sender_that_is_not_an_address():
    [error] = check_settings()
    assert error.id == "transactional_mail.E007"


def test_required_apps():
    assert check_installed_apps() == []
    with override_settings(INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                                          "transactional_mail"]):
        assert [m.id for m in check_installed_apps()] == [
            "transactional_mail.W002", "transactional_mail.W003"]


def test_checks_are_registered():
    """manage.py check runs them."""
    with override_settings(TRANSACTIONAL_MAIL={"DEFAULT_FROM_EMAIL": "a@example.com",
                                               "SWEEP_INTERVALL": 5}):
        ids = [message.id for message in checks.run_checks()]
    assert "transactional_mail.E002" in ids
