"""System checks: misconfiguration fails at ``manage.py check``, with an id and a hint.

Ids are stable; a retired id stays reserved. None of these checks queries the database.
"""

from __future__ import annotations

import difflib
from email.utils import parseaddr

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from .conf import DEFAULTS
from .headers import address_problem
from .snapshots import private_segment

#: Settings that must be whole numbers, with their smallest allowed value.
_WHOLE_NUMBERS = {
    "BATCH_SIZE": 1,
    "MAX_ATTEMPTS": 1,
    "RETRY_BACKOFF": 1,
    "RETRY_BACKOFF_MAX": 1,
    "MAX_COUNTDOWN": 1,
    "SWEEP_INTERVAL": 1,
    "SWEEP_GRACE": 0,
    "SENDING_TIMEOUT": 1,
    "INLINE_CACHE_SIZE": 0,
    "CACHE_TIMEOUT": 0,
    "MAX_RECIPIENTS": 1,
    "MAX_ATTACHMENTS_SIZE": 0,
    "RENDER_MAX_CHARS": 1,
    "RENDER_MAX_ITERATIONS": 1,
    "RENDER_MAX_CSS_RULES": 1,
    "SCHEDULE_BATCH_SIZE": 1,
    "SCHEDULE_LEASE": 1,
}


@checks.register()
def check_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    user = getattr(settings, "TRANSACTIONAL_MAIL", {})
    if not isinstance(user, dict):
        return [
            checks.Error(
                "TRANSACTIONAL_MAIL must be a dict.",
                hint="Set TRANSACTIONAL_MAIL = {...} in your settings; see the settings "
                "reference in the docs.",
                id="transactional_mail.E001",
            )
        ]
    errors = []
    for name in user:
        if name not in DEFAULTS:
            close = difflib.get_close_matches(str(name), DEFAULTS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else (
                "Known settings: " + ", ".join(sorted(DEFAULTS)) + "."
            )
            errors.append(checks.Error(
                f"TRANSACTIONAL_MAIL has an unknown setting {name!r}.",
                hint=hint,
                id="transactional_mail.E002",
            ))
    for name, minimum in _WHOLE_NUMBERS.items():
        value = user.get(name, DEFAULTS[name])
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            errors.append(checks.Error(
                f"TRANSACTIONAL_MAIL[{name!r}] is {value!r}; it must be a whole number "
                f">= {minimum}.",
                hint=f"Remove it to use the default ({DEFAULTS[name]!r}).",
                id="transactional_mail.E003",
            ))
    retention = user.get("RAW_EVENT_RETENTION_DAYS", DEFAULTS["RAW_EVENT_RETENTION_DAYS"])
    if retention is not None and (
        isinstance(retention, bool) or not isinstance(retention, int) or retention < 0
    ):
        errors.append(checks.Error(
            f"TRANSACTIONAL_MAIL['RAW_EVENT_RETENTION_DAYS'] is {retention!r}; it must be "
            "a whole number of days >= 0, or None to keep raw webhook payloads.",
            hint="Raw payloads hold personal data; 30 days is the default.",
            id="transactional_mail.E003",
        ))
    seconds = user.get("RENDER_MAX_SECONDS", DEFAULTS["RENDER_MAX_SECONDS"])
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        errors.append(checks.Error(
            f"TRANSACTIONAL_MAIL['RENDER_MAX_SECONDS'] is {seconds!r}; it must be a number "
            "of seconds > 0.",
            hint="Every render would fail (and every email with it). Remove it to use the "
            f"default ({DEFAULTS['RENDER_MAX_SECONDS']!r}).",
            id="transactional_mail.E003",
        ))
    queue = user.get("QUEUE")
    if queue is not None and not (isinstance(queue, str) and queue):
        errors.append(checks.Error(
            f"TRANSACTIONAL_MAIL['QUEUE'] is {queue!r}; it must be a Celery queue name "
            "or None.",
            hint="None sends the app's tasks to your default Celery queue.",
            id="transactional_mail.E004",
        ))
    triggers = user.get("TRIGGERS", {})
    if not isinstance(triggers, dict):
        errors.append(checks.Error(
            "TRANSACTIONAL_MAIL['TRIGGERS'] must be a dict of trigger key -> definition.",
            hint="See the triggers guide in the docs.",
            id="transactional_mail.E005",
        ))
    else:
        errors += _check_triggers(triggers)
    errors += _check_schedules(user.get("SCHEDULES", {}))
    errors += _check_backend(user)
    errors += _check_from_email(user)
    errors += _check_accounts(user)
    return errors


def _check_accounts(user) -> list[checks.CheckMessage]:
    """E011: the account emails' settings (transactional_mail.auth, .allauth)."""
    problems = []
    if not isinstance(user.get("USE_PASSWORD_RESET_FORM", False), bool):
        problems.append(("TRANSACTIONAL_MAIL['USE_PASSWORD_RESET_FORM'] must be True or False.",
                         "True makes Django's PasswordResetView use "
                         "transactional_mail.auth.PasswordResetForm."))
    language = user.get("PASSWORD_RESET_LANGUAGE")
    if language is not None and not (isinstance(language, str) and language
                                     and not private_segment(language)):
        problems.append((f"TRANSACTIONAL_MAIL['PASSWORD_RESET_LANGUAGE'] is {language!r}; it "
                         "must be an attribute path on the user (no '_' segment), or None.",
                         "For example 'profile.language'; None uses the request's language."))
    mapping = user.get("ALLAUTH_TEMPLATES", {})
    if not (isinstance(mapping, dict) and all(
            isinstance(prefix, str) and isinstance(key, str) and key
            for prefix, key in mapping.items())):
        problems.append(("TRANSACTIONAL_MAIL['ALLAUTH_TEMPLATES'] must map allauth template "
                         "prefixes to template keys.",
                         "For example {'account/email/unknown_account': 'unknown_account'}."))
    return [checks.Error(message, hint=hint,
                         id="transactional_mail.E011") for message, hint in problems]


def _check_triggers(triggers: dict) -> list[checks.CheckMessage]:
    """One E009 per mistake in a definition; E010 for a path that reaches an attribute
    starting with "_" (``__dict__`` would put the password hash in the snapshot)."""
    from .triggers.checks import definition_problems, private_path_problems

    errors = []
    for key, definition in triggers.items():
        private = set(private_path_problems(definition))
        errors += [
            checks.Error(
                f"TRANSACTIONAL_MAIL['TRIGGERS'][{key!r}]: {message}",
                hint=hint,
                obj=f"trigger {key}",
                id="transactional_mail.E010" if (message, hint) in private else (
                    "transactional_mail.E009"),
            )
            for message, hint in definition_problems(key, definition)
        ]
    return errors


def _check_schedules(schedules) -> list[checks.CheckMessage]:
    """One E020 per mistake in a periodic email's definition; W020 when nothing runs them."""
    from .periodic.definitions import schedule_problems

    if not isinstance(schedules, dict):
        return [checks.Error(
            "TRANSACTIONAL_MAIL['SCHEDULES'] must be a dict of schedule key -> definition.",
            hint="See the periodic emails section of docs/scheduling.md.",
            id="transactional_mail.E020",
        )]
    messages: list[checks.CheckMessage] = [
        checks.Error(message, hint=hint, obj=f"schedule {key}", id="transactional_mail.E020")
        for key, definition in schedules.items()
        for message, hint in schedule_problems(key, definition)
    ]
    if schedules and not apps.is_installed("django_celery_beat"):
        messages.append(checks.Warning(
            "TRANSACTIONAL_MAIL['SCHEDULES'] is set but 'django_celery_beat' is not in "
            "INSTALLED_APPS: nothing runs the schedules.",
            hint="Add 'django_celery_beat' to INSTALLED_APPS, run migrate and start celery "
            "beat with its DatabaseScheduler; or run them with manage.py run_schedule.",
            id="transactional_mail.W020",
        ))
    return messages


def _check_backend(user) -> list[checks.CheckMessage]:
    backend = user.get("EMAIL_BACKEND") or settings.EMAIL_BACKEND
    try:
        import_string(backend)
    except ImportError as err:
        source = "TRANSACTIONAL_MAIL['EMAIL_BACKEND']" if user.get("EMAIL_BACKEND") else (
            "EMAIL_BACKEND"
        )
        return [checks.Error(
            f"{source} {backend!r} cannot be imported: {err}",
            hint="Use a Django email backend such as "
            "'anymail.backends.postmark.EmailBackend' (pip install django-anymail[postmark]).",
            id="transactional_mail.E006",
        )]
    return []


def _check_from_email(user) -> list[checks.CheckMessage]:
    from_email = user.get("DEFAULT_FROM_EMAIL") or settings.DEFAULT_FROM_EMAIL
    address = parseaddr(str(from_email))[1]
    problem = address_problem(str(from_email))
    if problem or "@" not in address or " " in address:
        return [checks.Error(
            f"The default sender {from_email!r} is {problem or 'not an email address'}.",
            hint="Set TRANSACTIONAL_MAIL['DEFAULT_FROM_EMAIL'] = 'Shop <no-reply@example.com>'.",
            id="transactional_mail.E007",
        )]
    if not user.get("DEFAULT_FROM_EMAIL") and from_email == "webmaster@localhost":
        return [checks.Warning(
            "Emails will be sent from Django's placeholder 'webmaster@localhost'.",
            hint="Set TRANSACTIONAL_MAIL['DEFAULT_FROM_EMAIL'] or DEFAULT_FROM_EMAIL to an "
            "address on a domain your ESP is verified for.",
            id="transactional_mail.W001",
        )]
    return []


@checks.register()
def check_installed_apps(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    messages = []
    if not apps.is_installed("django.contrib.contenttypes"):
        messages.append(checks.Error(
            "transactional_mail needs 'django.contrib.contenttypes' in INSTALLED_APPS.",
            hint="The send log records each email's source object through it.",
            id="transactional_mail.E008",
        ))
    if not apps.is_installed("django_celery_beat"):
        messages.append(checks.Warning(
            "'django_celery_beat' is not in INSTALLED_APPS, so the outbox sweep is not "
            "scheduled: emails whose task was lost, and long retries, will not be sent.",
            hint="Add 'django_celery_beat' to INSTALLED_APPS and run migrate, or schedule "
            "the task 'transactional_mail.sweep_outbox' every minute yourself.",
            id="transactional_mail.W002",
        ))
    if not apps.is_installed("anymail"):
        messages.append(checks.Warning(
            "'anymail' is not in INSTALLED_APPS.",
            hint="Add 'anymail' to INSTALLED_APPS and path('anymail/', "
            "include('anymail.urls')) to your URLconf to receive delivery webhooks.",
            id="transactional_mail.W003",
        ))
    return messages
