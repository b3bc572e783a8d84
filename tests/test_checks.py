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


# --- Issue 11, section 5: private paths (E010), the limits, the sender ------------------

_PRIVATE_HINT = (
    "A path never reads an attribute starting with '_': '__dict__' would put every field, "
    "the password hash included, in the email's snapshot. Name the public fields the email "
    "needs, or use a callable.")


def _triggers(**definitions) -> dict:
    return {"DEFAULT_FROM_EMAIL": "a@example.com", "TRIGGERS": definitions}


@override_settings(TRANSACTIONAL_MAIL=_triggers(welcome={
    "model": "auth.User", "on": "created", "template": "welcome", "to": "email",
    "context": ["username", "__dict__"]}))
def test_a_context_path_to_dunder_dict_is_e010():
    """The issue's reproduction: before the fix this passed the checks, and the snapshot
    held the password hash."""
    assert check_settings() == [checks.Error(
        "TRANSACTIONAL_MAIL['TRIGGERS']['welcome']: 'context' '__dict__' reaches '__dict__', "
        "an attribute starting with '_'.",
        hint=_PRIVATE_HINT,
        obj="trigger welcome",
        id="transactional_mail.E010",
    )]


@override_settings(TRANSACTIONAL_MAIL=_triggers(order={
    "model": "testapp.Order", "on": "created", "template": "order_confirmation",
    "to": ["customer.email", "customer._password"], "from_email": "customer.__dict__",
    "reply_to": "_state.db", "language": "customer._meta.app_label",
    "when": {"customer___password__isnull": False}, "cancel_when": "__class__",
    "attachments": "customer._state", "context": ["number", "_state.db"]}))
def test_every_path_option_is_checked_once_as_e010():
    """No E009 beside them: "_state" is not a class attribute, but one report is enough."""
    messages = [(error.id, error.msg.split(": ", 1)[1]) for error in check_settings()]
    assert messages == [("transactional_mail.E010", message) for message in [
        "'to' 'customer._password' reaches '_password', an attribute starting with '_'.",
        "'from_email' 'customer.__dict__' reaches '__dict__', an attribute starting with '_'.",
        "'reply_to' '_state.db' reaches '_state', an attribute starting with '_'.",
        "'when' 'customer___password__isnull' reaches '_password', an attribute starting "
        "with '_'.",
        "'cancel_when' '__class__' reaches '__class__', an attribute starting with '_'.",
        "'language' 'customer._meta.app_label' reaches '_meta', an attribute starting "
        "with '_'.",
        "'attachments' 'customer._state' reaches '_state', an attribute starting with '_'.",
        "'context' '_state.db' reaches '_state', an attribute starting with '_'.",
    ]]


@override_settings(TRANSACTIONAL_MAIL=_triggers(
    login={"signal": "django.contrib.auth.signals.user_logged_in", "template": "login",
           "to": "email", "context": ["_password"]},
    status={"model": "testapp.Order", "on": "changed", "field": "_state",
            "template": "order_confirmation", "to": "customer.email"},
    fine={"model": "testapp.Order", "on": "created", "template": "order_confirmation",
          "to": "customer.email", "when": "operator.__not__",
          "context": "tests.testapp.mail.order_context"}))
def test_signal_triggers_and_field_are_checked_and_callables_are_not_paths():
    found = [(error.id, error.obj, error.msg.split(": ", 1)[1]) for error in check_settings()]
    assert found == [
        ("transactional_mail.E010", "trigger login",
         "'context' '_password' reaches '_password', an attribute starting with '_'."),
        ("transactional_mail.E009", "trigger status",
         "'field' '_state' is not a field of testapp.Order."),
        ("transactional_mail.E010", "trigger status",
         "'field' '_state' reaches '_state', an attribute starting with '_'."),
    ]


@override_settings(TRANSACTIONAL_MAIL={"DEFAULT_FROM_EMAIL": "a@example.com",
                                       "MAX_RECIPIENTS": 0, "MAX_ATTACHMENTS_SIZE": "10MB"})
def test_the_limits_are_whole_numbers():
    assert check_settings() == [
        checks.Error(
            "TRANSACTIONAL_MAIL['MAX_RECIPIENTS'] is 0; it must be a whole number >= 1.",
            hint="Remove it to use the default (50).",
            id="transactional_mail.E003",
        ),
        checks.Error(
            "TRANSACTIONAL_MAIL['MAX_ATTACHMENTS_SIZE'] is '10MB'; it must be a whole number "
            ">= 0.",
            hint="Remove it to use the default (7000000).",
            id="transactional_mail.E003",
        ),
    ]


@override_settings(TRANSACTIONAL_MAIL={
    "DEFAULT_FROM_EMAIL": "Shop\u2028Bcc: evil@example.com <shop@example.com>"})
def test_a_sender_that_is_not_one_line_is_e007():
    assert check_settings() == [checks.Error(
        "The default sender 'Shop\\u2028Bcc: evil@example.com <shop@example.com>' is not one "
        "line: it contains a line separator (U+2028).",
        hint="Set TRANSACTIONAL_MAIL['DEFAULT_FROM_EMAIL'] = 'Shop <no-reply@example.com>'.",
        id="transactional_mail.E007",
    )]


@override_settings(TRANSACTIONAL_MAIL={
    "DEFAULT_FROM_EMAIL": "a@example.com", "RENDER_MAX_CHARS": "1MB",
    "RENDER_MAX_ITERATIONS": 0, "RENDER_MAX_SECONDS": "5",
})
def test_render_budgets_must_be_positive_numbers():
    """A budget of the wrong type would make every render, and every email, fail."""
    assert check_settings() == [
        checks.Error(
            "TRANSACTIONAL_MAIL['RENDER_MAX_CHARS'] is '1MB'; it must be a whole number >= 1.",
            hint="Remove it to use the default (1048576).",
            id="transactional_mail.E003",
        ),
        checks.Error(
            "TRANSACTIONAL_MAIL['RENDER_MAX_ITERATIONS'] is 0; it must be a whole number >= 1.",
            hint="Remove it to use the default (100000).",
            id="transactional_mail.E003",
        ),
        checks.Error(
            "TRANSACTIONAL_MAIL['RENDER_MAX_SECONDS'] is '5'; it must be a number of "
            "seconds > 0.",
            hint="Every render would fail (and every email with it). Remove it to use the "
            "default (5).",
            id="transactional_mail.E003",
        ),
    ]


@override_settings(TRANSACTIONAL_MAIL={"DEFAULT_FROM_EMAIL": "a@example.com",
                                       "RENDER_MAX_SECONDS": 0.5})
def test_a_fractional_render_time_budget_is_fine():
    assert check_settings() == []
@override_settings(TRANSACTIONAL_MAIL={"DEFAULT_FROM_EMAIL": "a@example.com", "BATCH_SIZE": 0})
def test_a_batch_size_below_one():
    assert check_settings() == [
        checks.Error(
            "TRANSACTIONAL_MAIL['BATCH_SIZE'] is 0; it must be a whole number >= 1.",
            hint="Remove it to use the default (50).",
            id="transactional_mail.E003",
        ),
    ]


@override_settings(TRANSACTIONAL_MAIL={
    "DEFAULT_FROM_EMAIL": "a@example.com", "USE_PASSWORD_RESET_FORM": "yes",
    "PASSWORD_RESET_LANGUAGE": "profile._language",
    "ALLAUTH_TEMPLATES": {"account/email/unknown_account": ""}})
def test_account_settings():
    assert check_settings() == [
        checks.Error(
            "TRANSACTIONAL_MAIL['USE_PASSWORD_RESET_FORM'] must be True or False.",
            hint="True makes Django's PasswordResetView use "
            "transactional_mail.auth.PasswordResetForm.",
            id="transactional_mail.E011",
        ),
        checks.Error(
            "TRANSACTIONAL_MAIL['PASSWORD_RESET_LANGUAGE'] is 'profile._language'; it must be "
            "an attribute path on the user (no '_' segment), or None.",
            hint="For example 'profile.language'; None uses the request's language.",
            id="transactional_mail.E011",
        ),
        checks.Error(
            "TRANSACTIONAL_MAIL['ALLAUTH_TEMPLATES'] must map allauth template prefixes to "
            "template keys.",
            hint="For example {'account/email/unknown_account': 'unknown_account'}.",
            id="transactional_mail.E011",
        ),
    ]


@override_settings(TRANSACTIONAL_MAIL={"DEFAULT_FROM_EMAIL": "a@example.com",
                                       "ALERTS": {"COMPLAINT_RATE": 0.003}})
def test_alert_thresholds():
    assert check_settings() == [
        checks.Error(
            "TRANSACTIONAL_MAIL['ALERTS']['COMPLAINT_RATE'] must be None or a pair (warning, "
            "critical) of fractions between 0 and 1, warning first, e.g. (0.001, 0.003) for "
            "0.1 % and 0.3 %; it is 0.003.",
            hint="Give only the keys to change; the others keep their defaults "
            "(docs/alerts.md).",
            id="transactional_mail.E012",
        ),
    ]
