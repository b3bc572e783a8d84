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

from .alerts import alert_settings
from .conf import DEFAULTS
from .exceptions import ConfigurationError
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
    "SOFT_BOUNCE_LIMIT": 1,
    "DIGEST_MAX_ITEMS": 1,
    "SCHEDULE_BATCH_SIZE": 1,
    "SCHEDULE_LEASE": 1,
}

#: Retention settings in days (None: keep): their smallest value, what None keeps, a hint.
_RETENTIONS = {
    "RAW_EVENT_RETENTION_DAYS": (0, "raw webhook payloads",
                                 "Raw payloads hold personal data; 30 days is the default."),
    "DIGEST_RETENTION_DAYS": (0, "closed digest windows",
                              "Closed windows hold the events' contexts (personal data); 30 "
                              "days is the default (docs/privacy.md)."),
    "RETENTION_DAYS": (1, "bodies and contexts",
                       "Emails older than it lose their bodies and context snapshots "
                       "(docs/privacy.md)."),
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
    for name, (minimum, kept, hint) in _RETENTIONS.items():
        days = user.get(name, DEFAULTS[name])
        if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                                 or days < minimum):
            errors.append(checks.Error(
                f"TRANSACTIONAL_MAIL[{name!r}] is {days!r}; it must be a whole number of "
                f"days >= {minimum}, or None to keep {kept}.",
                hint=hint, id="transactional_mail.E003",
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
    if not isinstance(user.get("PUBLISH_IN_BACKGROUND", True), bool):
        errors.append(checks.Error(
            f"TRANSACTIONAL_MAIL['PUBLISH_IN_BACKGROUND'] is "
            f"{user['PUBLISH_IN_BACKGROUND']!r}; it must be True or False.",
            hint="True (the default) publishes delivery tasks from a thread after the "
            "commit; False publishes them in the on_commit callback.",
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
    errors += _check_streams(user)
    errors += _check_alerts()
    errors += _check_pacing(user)
    return errors


def _check_streams(user) -> list[checks.CheckMessage]:
    """E020: CATEGORIES malformed; E021 (E041): a trigger (a schedule) naming an undeclared
    category; E022: BASE_URL, LIST_HELP or UNSUBSCRIBE_MAILTO malformed; E023: unsubscribe
    links that cannot be built; W020/W021: non-essential mail without a one-click link."""
    from .categories import definition_problems

    declared = user.get("CATEGORIES", DEFAULTS["CATEGORIES"])
    if not isinstance(declared, dict):
        return [checks.Error(
            "TRANSACTIONAL_MAIL['CATEGORIES'] must be a dict of category key -> definition.",
            hint="For example {'reviews': {'essential': False}}; see the deliverability "
            "guide.", id="transactional_mail.E020")]
    errors = [
        checks.Error(f"TRANSACTIONAL_MAIL['CATEGORIES']: {message}", hint=hint,
                     id="transactional_mail.E020")
        for key, definition in declared.items()
        for message, hint in definition_problems(key, definition)
        or _connection_problems(key, definition)
    ]
    errors += _undeclared_categories(declared, user, "TRIGGERS", "trigger", "E021")
    errors += _undeclared_categories(declared, user, "SCHEDULES", "schedule", "E041")
    errors += _check_link_settings(user)
    non_essential = [key for key, definition in declared.items()
                     if isinstance(definition, dict) and definition.get("essential") is False]
    if non_essential and not any(error.id == "transactional_mail.E022" for error in errors):
        errors += _check_unsubscribe_links(user, non_essential)
    return errors


def _undeclared_categories(declared: dict, user: dict, setting: str, kind: str,
                           error_id: str) -> list[checks.CheckMessage]:
    """One error per definition of ``setting`` (TRIGGERS, SCHEDULES) naming a category
    ``declared`` does not hold; none while no category is declared (keys are then free
    labels). A blank category names none (essential mail), so it is not an error."""
    definitions = user.get(setting, {})
    if not declared or not isinstance(definitions, dict):
        return []
    errors = []
    for key, definition in definitions.items():
        category = definition.get("category") if isinstance(definition, dict) else None
        if isinstance(category, str) and category and category not in declared:
            errors.append(checks.Error(
                f"TRANSACTIONAL_MAIL[{setting!r}][{key!r}]: the category {category!r} "
                "is not declared in TRANSACTIONAL_MAIL['CATEGORIES'].",
                hint="Declared: " + ", ".join(sorted(map(str, declared))) + ".",
                obj=f"{kind} {key}", id=f"transactional_mail.{error_id}"))
    return errors


def _connection_problems(key: str, definition: dict) -> list[tuple[str, str]]:
    """A category's own backend that cannot be imported (its mail would all fail)."""
    from .categories import get_category

    connection = definition.get("connection")
    if connection is None:
        return []
    backend, _ = get_category(key).connection_arguments(settings.EMAIL_BACKEND)
    try:
        import_string(backend)
    except ImportError as err:
        return [(f"{key!r}: the connection's backend {backend!r} cannot be imported: {err}",
                 "Give a Django email backend's dotted path, e.g. "
                 "'anymail.backends.amazon_ses.EmailBackend'.")]
    return []


def _check_link_settings(user) -> list[checks.CheckMessage]:
    problems = []
    base_url = user.get("BASE_URL", "")
    if base_url and not (isinstance(base_url, str) and _absolute_url(base_url)):
        problems.append((f"TRANSACTIONAL_MAIL['BASE_URL'] is {base_url!r}; it must be the "
                         "absolute URL of the site.", "For example 'https://shop.example.com'."))
    list_help = user.get("LIST_HELP", "")
    if list_help and not (isinstance(list_help, str) and (
            _absolute_url(list_help) or _mailto(list_help))):
        problems.append((f"TRANSACTIONAL_MAIL['LIST_HELP'] is {list_help!r}; it must be a "
                         "URL or a mailto: address.",
                         "For example 'https://shop.example.com/help/' or "
                         "'mailto:help@example.com'."))
    mailto = user.get("UNSUBSCRIBE_MAILTO", "")
    if mailto and not (isinstance(mailto, str) and _mailto(f"mailto:{mailto}")):
        problems.append((f"TRANSACTIONAL_MAIL['UNSUBSCRIBE_MAILTO'] is {mailto!r}; it must "
                         "be a bare address.", "For example 'unsubscribe@example.com'."))
    return [checks.Error(message, hint=hint, id="transactional_mail.E022")
            for message, hint in problems]


def _absolute_url(value: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    return (parts.scheme in ("http", "https") and bool(parts.netloc)
            and value == value.strip() and not any(c in value for c in "<>, \r\n"))


def _local(url: str) -> bool:
    """Whether ``url`` is on this machine (development, where http is expected)."""
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1") or host.endswith(".localhost")


def _mailto(value: str) -> bool:
    address = value[len("mailto:"):] if value.startswith("mailto:") else ""
    return bool(address) and parseaddr(address)[1] == address and "@" in address and not any(
        c in address for c in "<>, \r\n")


def _check_unsubscribe_links(user, non_essential: list[str]) -> list[checks.CheckMessage]:
    from django.urls import NoReverseMatch, reverse

    base_url = user.get("BASE_URL", "")
    if not base_url:
        if user.get("UNSUBSCRIBE_MAILTO"):
            return [checks.Warning(
                "Non-essential mail (" + ", ".join(non_essential) + ") gets only a mailto: "
                "unsubscribe: TRANSACTIONAL_MAIL['BASE_URL'] is not set.",
                hint="Set BASE_URL to the site's https URL: Gmail and Yahoo require "
                "one-click unsubscribe (RFC 8058) from bulk senders.",
                id="transactional_mail.W020")]
        return [checks.Warning(
            "Non-essential mail (" + ", ".join(non_essential) + ") goes out without an "
            "unsubscribe link: TRANSACTIONAL_MAIL['BASE_URL'] is not set.",
            hint="Set BASE_URL to the site's https URL and add path('mail/', "
            "include('transactional_mail.urls')) to your URLconf.",
            id="transactional_mail.W020")]
    errors = []
    if not base_url.startswith("https://") and not _local(base_url):
        errors.append(checks.Warning(
            f"TRANSACTIONAL_MAIL['BASE_URL'] is {base_url!r}: non-essential mail gets no "
            "List-Unsubscribe-Post header (RFC 8058 one-click needs https).",
            hint="Use the site's https URL.", id="transactional_mail.W021"))
    try:
        reverse("transactional_mail:unsubscribe", args=["token"])
    except NoReverseMatch:
        errors.append(checks.Error(
            "Non-essential mail needs the unsubscribe pages, and the URLconf does not "
            "include them.",
            hint="Add path('mail/', include('transactional_mail.urls')) to your URLconf.",
            id="transactional_mail.E023"))
    return errors


def _check_alerts() -> list[checks.CheckMessage]:
    try:
        alert_settings()
    except ConfigurationError as err:
        return [checks.Error(str(err), hint="Give only the keys to change; the others keep "
                             "their defaults (docs/alerts.md).", id="transactional_mail.E012")]
    return []


def _check_pacing(user) -> list[checks.CheckMessage]:
    """E030: ``FREQUENCY_CAPS``; E031: ``QUIET_HOURS``; E032: ``RECIPIENT_TIMEZONE``;
    W030: a cap or quiet hours naming a category that is essential (never held back)."""
    from .categories import get_category
    from .durations import parse_delay
    from .exceptions import TransactionalMailError
    from .pacing import parse_clock

    messages = []

    def essential(category) -> bool:
        return get_category(category).essential

    caps = user.get("FREQUENCY_CAPS", {})
    cap_hint = 'For example {"reviews": {"count": 2, "period": "1d"}}.'
    if not isinstance(caps, dict):
        messages.append(checks.Error("TRANSACTIONAL_MAIL['FREQUENCY_CAPS'] must be a dict of "
                                     "category -> cap.", hint=cap_hint,
                                     id="transactional_mail.E030"))
        caps = {}
    for category, cap in caps.items():
        where = f"TRANSACTIONAL_MAIL['FREQUENCY_CAPS'][{category!r}]"
        count = cap.get("count") if isinstance(cap, dict) else None
        try:
            period = parse_delay(cap.get("period")) if isinstance(cap, dict) else None
        except TransactionalMailError:
            period = None
        if (isinstance(count, bool) or not isinstance(count, int) or count < 1
                or period is None or period.total_seconds() <= 0
                or set(cap) - {"count", "period"}):
            messages.append(checks.Error(
                f"{where} is {cap!r}; it must be a dict with a 'count' (a whole number "
                ">= 1) and a 'period' (a duration like '1d').", hint=cap_hint,
                id="transactional_mail.E030"))
        elif essential(category):
            messages.append(_essential_warning(where, category))
    quiet = user.get("QUIET_HOURS")
    if quiet is not None:
        hint = ('For example {"start": "21:00", "end": "08:00", "categories": ["reviews"]}, '
                "or None for no quiet hours.")
        problem = ""
        if not isinstance(quiet, dict) or set(quiet) - {"start", "end", "categories"}:
            problem = "it must be a dict with 'start', 'end' and optional 'categories'"
        else:
            try:
                start, end = parse_clock(quiet.get("start")), parse_clock(quiet.get("end"))
                if start == end:
                    problem = "'start' and 'end' are the same time"
            except ValueError as err:
                problem = f"{err}"
            listed = quiet.get("categories")
            if listed is not None and not (isinstance(listed, (list, tuple)) and all(
                    isinstance(category, str) for category in listed)):
                problem = problem or "'categories' must be a list of category keys"
        if problem:
            messages.append(checks.Error(
                f"TRANSACTIONAL_MAIL['QUIET_HOURS'] is {quiet!r}: {problem}.", hint=hint,
                id="transactional_mail.E031"))
        else:
            for category in quiet.get("categories") or ():
                if essential(category):
                    messages.append(_essential_warning(
                        "TRANSACTIONAL_MAIL['QUIET_HOURS']['categories']", category))
    zone = user.get("RECIPIENT_TIMEZONE")
    if zone is not None and not (isinstance(zone, str) and zone and not private_segment(zone)):
        messages.append(checks.Error(
            f"TRANSACTIONAL_MAIL['RECIPIENT_TIMEZONE'] is {zone!r}; it must be an attribute "
            "path on the email's source object (no '_' segment) or a dotted "
            "callable(address), or None.",
            hint="For example 'customer.timezone' or 'shop.mail.recipient_timezone'.",
            id="transactional_mail.E032"))
    return messages


def _essential_warning(where: str, category: str) -> checks.CheckMessage:
    return checks.Warning(
        f"{where} names the category {category!r}, which is essential (not declared with "
        "'essential': False in TRANSACTIONAL_MAIL['CATEGORIES']): essential mail is never "
        "held back, so this has no effect.",
        hint=f"Declare it: 'CATEGORIES': {{{category!r}: {{'essential': False}}}}.",
        id="transactional_mail.W030")


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
    """One E040 per mistake in a periodic email's definition; W040 when nothing runs them."""
    from .periodic.definitions import schedule_problems

    if not isinstance(schedules, dict):
        return [checks.Error(
            "TRANSACTIONAL_MAIL['SCHEDULES'] must be a dict of schedule key -> definition.",
            hint="See the periodic emails section of docs/scheduling.md.",
            id="transactional_mail.E040",
        )]
    messages: list[checks.CheckMessage] = [
        checks.Error(message, hint=hint, obj=f"schedule {key}", id="transactional_mail.E040")
        for key, definition in schedules.items()
        for message, hint in schedule_problems(key, definition)
    ]
    if schedules and not apps.is_installed("django_celery_beat"):
        messages.append(checks.Warning(
            "TRANSACTIONAL_MAIL['SCHEDULES'] is set but 'django_celery_beat' is not in "
            "INSTALLED_APPS: nothing runs the schedules.",
            hint="Add 'django_celery_beat' to INSTALLED_APPS, run migrate and start celery "
            "beat with its DatabaseScheduler; or run them with manage.py run_schedule.",
            id="transactional_mail.W040",
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
