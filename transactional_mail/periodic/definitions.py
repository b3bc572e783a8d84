"""``TRANSACTIONAL_MAIL["SCHEDULES"]`` -> ``Schedule`` objects, and what is wrong with them."""

from __future__ import annotations

import datetime
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from celery.schedules import crontab
from django.apps import apps
from django.utils import timezone

from ..api import parse_delay
from ..conf import get_setting
from ..exceptions import ConfigurationError, InvalidEmailOption
from ..snapshots import private_segment
from ..triggers.syntax import import_or_none

#: Every key a schedule definition may have.
KNOWN_KEYS = frozenset({
    "schedule", "timezone", "recipients", "template", "category", "language",
    "secret_keys", "description",
})
#: Every key of the queryset form of ``"recipients"``.
QUERYSET_KEYS = frozenset({"queryset", "to", "context", "language"})

_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclass(frozen=True)
class Schedule:
    """One periodic email, as the settings define it."""

    key: str
    #: A Celery ``crontab`` (calendar times in ``timezone``) or a ``timedelta`` (every so
    #: long, counted from the Unix epoch).
    every: crontab | datetime.timedelta
    timezone: zoneinfo.ZoneInfo
    #: The ``recipients`` setting: a dotted callable, or the queryset form (a dict).
    recipients: Any
    template: str
    category: str | None = None
    language: str | None = None
    secret_keys: tuple[str, ...] = ()
    description: str = ""


def schedule_problems(key: Any, definition: Any) -> list[tuple[str, str]]:
    """Each mistake in one definition as (message, hint); [] when it is fine.

    Never queries the database (it serves ``manage.py check``): that the template exists
    is checked when the schedule runs.
    """
    name = f"TRANSACTIONAL_MAIL['SCHEDULES'][{key!r}]"
    if not isinstance(key, str) or not _KEY.match(key):
        return [(f"{name}: the key must be 1-100 letters, digits, '_' or '-'.",
                 "Rename it, e.g. 'weekly_report'.")]
    if not isinstance(definition, Mapping):
        return [(f"{name} must be a dict, not {type(definition).__name__}.",
                 'Give at least "schedule", "recipients" and "template".')]
    problems = []
    unknown = sorted(str(k) for k in definition if k not in KNOWN_KEYS)
    if unknown:
        problems.append((f"{name} has unknown keys: {', '.join(unknown)}.",
                         "Known keys: " + ", ".join(sorted(KNOWN_KEYS)) + "."))
    for required in ("schedule", "recipients", "template"):
        if required not in definition:
            problems.append((f"{name} has no {required!r}.",
                             "See the periodic emails section of docs/scheduling.md."))
    if "schedule" in definition:
        problems += _every_problems(name, definition["schedule"])
    if "timezone" in definition:
        problems += _timezone_problems(name, definition["timezone"])
    if "recipients" in definition:
        problems += _recipients_problems(name, definition["recipients"])
    for option in ("template", "category", "language", "description"):
        value = definition.get(option)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            problems.append((f"{name}[{option!r}] must be a non-empty string, not {value!r}.",
                             f"Give the {option} as a string, or leave the key out."))
    secret_keys = definition.get("secret_keys", ())
    if not isinstance(secret_keys, (list, tuple)) or not all(
        isinstance(item, str) for item in secret_keys
    ):
        problems.append((f"{name}['secret_keys'] must be a list of context keys.",
                         "For example ['login_url']."))
    return problems


def _every_problems(name: str, value: Any) -> list[tuple[str, str]]:
    hint = ('Use crontab(hour=8, minute=0, day_of_week="mon") from celery.schedules, a '
            'timedelta, or a duration like "15m".')
    if isinstance(value, crontab):
        return []
    try:
        every = parse_delay(value)
    except InvalidEmailOption:
        return [(f"{name}['schedule'] is {value!r}, not a schedule.", hint)]
    if every < datetime.timedelta(seconds=1) or every.total_seconds() % 1:
        return [(f"{name}['schedule'] is {every}; an interval is a whole number of "
                 "seconds, at least one.", hint)]
    return []


def _timezone_problems(name: str, value: Any) -> list[tuple[str, str]]:
    try:
        _zone(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        return [(f"{name}['timezone'] {value!r} is not a known time zone.",
                 'Use an IANA name such as "Europe/Paris", or leave it out for TIME_ZONE.')]
    return []


def _recipients_problems(name: str, value: Any) -> list[tuple[str, str]]:
    hint = ('Give a dotted callable yielding (address, context) pairs, or '
            '{"queryset": "app.Model" or a dotted callable, "to": "email", '
            '"context": "a.dotted.callable"}.')
    where = f"{name}['recipients']"
    if isinstance(value, str):
        if not callable(import_or_none(value)):
            return [(f"{where} {value!r} does not import as a callable.", hint)]
        return []
    if callable(value):
        return []
    if not isinstance(value, Mapping):
        return [(f"{where} must be a dotted callable or a dict, not {value!r}.", hint)]
    problems = []
    unknown = sorted(str(k) for k in value if k not in QUERYSET_KEYS)
    if unknown:
        problems.append((f"{where} has unknown keys: {', '.join(unknown)}.",
                         "Known keys: " + ", ".join(sorted(QUERYSET_KEYS)) + "."))
    queryset = value.get("queryset")
    if not isinstance(queryset, str) or queryset_factory(queryset) is None:
        problems.append((f"{where}['queryset'] {queryset!r} is neither an installed model "
                         "('app_label.Model') nor a dotted callable that imports.", hint))
    for option in ("to", "language"):
        path = value.get(option)
        if path is not None and (not isinstance(path, str) or not path):
            problems.append((f"{where}[{option!r}] must be an attribute path, not {path!r}.",
                             'For example "email" or "profile.language".'))
        elif path and private_segment(path):
            problems.append((f"{where}[{option!r}] {path!r} reaches "
                             f"{private_segment(path)!r}; paths never read an attribute "
                             "starting with '_'.", "Name a public attribute."))
    context = value.get("context")
    if context is not None and not callable(context) and not callable(
        import_or_none(context) if isinstance(context, str) else None
    ):
        problems.append((f"{where}['context'] {context!r} does not import as a callable.",
                         "Give a dotted callable(obj, period) returning a dict."))
    return problems


def queryset_factory(value: str) -> Callable[..., Any] | None:
    """A callable(period) returning the queryset a ``"queryset"`` string names, or None."""
    if value.count(".") == 1:
        try:
            model = apps.get_model(value)
        except (LookupError, ValueError):
            model = None
        if model is not None:
            return lambda period: model._default_manager.all()
    imported = import_or_none(value)
    return imported if callable(imported) else None


def _zone(value: Any) -> zoneinfo.ZoneInfo:
    if isinstance(value, zoneinfo.ZoneInfo):
        return value
    if not isinstance(value, str) or not value:
        raise TypeError(value)
    return zoneinfo.ZoneInfo(value)


def parse_schedule(key: str, definition: Mapping[str, Any]) -> Schedule:
    """Build a ``Schedule``; raise ``ConfigurationError`` saying what to fix."""
    problems = schedule_problems(key, definition)
    if problems:
        message, hint = problems[0]
        raise ConfigurationError(f"{message} {hint}")
    every = definition["schedule"]
    zone = definition.get("timezone")
    return Schedule(
        key=key,
        every=every if isinstance(every, crontab) else parse_delay(every),
        timezone=_zone(zone) if zone else timezone.get_default_timezone(),
        recipients=definition["recipients"],
        template=definition["template"],
        category=definition.get("category"),
        language=definition.get("language"),
        secret_keys=tuple(definition.get("secret_keys", ())),
        description=definition.get("description", ""),
    )


def all_schedules() -> dict[str, Schedule]:
    """Every schedule in the settings, read now (``ConfigurationError`` for a bad one)."""
    return {key: parse_schedule(key, definition)
            for key, definition in (get_setting("SCHEDULES") or {}).items()}


def get_schedule(key: str) -> Schedule:
    """The schedule ``key``; ``ConfigurationError`` naming the known keys when there is none."""
    definitions = get_setting("SCHEDULES") or {}
    if key not in definitions:
        known = ", ".join(sorted(definitions)) or "none"
        raise ConfigurationError(
            f"No schedule {key!r} in TRANSACTIONAL_MAIL['SCHEDULES'] (known: {known})."
        )
    return parse_schedule(key, definitions[key])
