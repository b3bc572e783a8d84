"""Trigger definitions: ``TRANSACTIONAL_MAIL["TRIGGERS"]`` read into ``Trigger`` objects.

Each definition is checked (``checks.definition_problems``) and parsed into callables once,
and parsed again when the settings change (``override_settings`` works).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import models
from django.dispatch import Signal
from django.utils.module_loading import import_string

from ..api import parse_delay
from ..conf import get_setting
from ..exceptions import ConfigurationError
from ..snapshots import default_context, fields, resolve_path
from .checks import definition_problems
from .syntax import (
    DIGEST_BY_RECIPIENT,
    LOOKUPS,
    UNSET,
    import_or_none,
    is_literal_address,
    resolve_sender,
)

#: The key of an instance's ``__dict__`` that holds the tracked fields' values as the
#: database has them: the receivers keep it, a "changed" trigger compares with it.
INITIAL_VALUES_ATTR = "_transactional_mail_initial"


@dataclass(frozen=True)
class Digest:
    """A trigger's ``"digest"`` option: its events gathered into one email per window."""

    window: timedelta
    #: The value grouping a recipient's events into windows (besides the recipient), or
    #: None for one window per recipient (``"key": "recipient"``).
    key: Callable[..., Any] | None = None
    first_at_once: bool = False
    #: ``(recipient, items, count) -> dict``: what the digest's email sees besides
    #: ``items`` and ``count`` (the reader's name, links), or None.
    context: Callable[..., Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class Trigger:
    """One parsed entry of ``TRANSACTIONAL_MAIL["TRIGGERS"]``."""

    key: str
    template: str
    definition: Mapping[str, Any]
    model: type[models.Model] | None = None
    on: str | None = None
    field: str | None = None
    from_value: Any = UNSET
    to_value: Any = UNSET
    signal: Signal | None = None
    instance_arg: str = "instance"
    sender: type | None = None
    when: Callable[..., bool] | None = None
    cancel_when: Callable[..., bool] | None = None
    to: Callable[..., list[str]] = dataclass_field(default=lambda instance, **kwargs: [])
    from_email: Callable[..., list[str]] | None = None
    reply_to: Callable[..., list[str]] | None = None
    context: Callable[..., dict] = dataclass_field(default=lambda instance, **kwargs: {})
    language: Callable[..., str | None] | None = None
    attachments: Callable[..., list] | None = None
    delay: timedelta | None = None
    once: bool = False
    digest: Digest | None = None
    options: Mapping[str, Any] = dataclass_field(default_factory=dict)

    def matches_save(self, instance: models.Model, created: bool, update_fields) -> bool:
        """Whether this save is the trigger's event (before its ``when``)."""
        if self.on == "created":
            return created
        if self.on == "updated":
            return not created
        if self.on == "changed" and not created:
            written = update_fields is None or not update_fields.isdisjoint(
                (self.field, instance._meta.get_field(self.field).attname))
            if not written:
                return False  # update_fields (names or column names) left the field out
            old = _initial_values(instance).get(self.field, UNSET)
            new = field_value(instance, self.field)
            if old is UNSET or old == new:
                return False
            if self.from_value is not UNSET and old != self.from_value:
                return False
            return self.to_value is UNSET or new == self.to_value
        return False

    def wanted(self, instance: Any, extra: Mapping[str, Any]) -> bool:
        return self.when is None or bool(self.when(instance, **extra))


def _with_event_arguments(function: Callable) -> Callable[..., Any]:
    """Call ``function(instance)``, plus the signal arguments it names (``request``...)."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return lambda instance, **extra: function(instance)
    takes_all = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    names = {name for name, p in parameters.items()
             if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}

    def call(instance, **extra):
        chosen = extra if takes_all else {k: v for k, v in extra.items() if k in names}
        chosen.pop(next(iter(parameters), None), None)  # the instance's own parameter
        return function(instance, **chosen)

    return call


def _callable_or_path(value: str) -> Callable[..., Any]:
    """A dotted callable when ``value`` imports as one, else an attribute path."""
    imported = import_or_none(value)
    if callable(imported):
        return _with_event_arguments(imported)
    return lambda instance, **extra: resolve_path(instance, value)


def _lookup_condition(lookups: Mapping[str, Any]) -> Callable[..., bool]:
    parsed = []
    for key, expected in lookups.items():
        parts = key.split("__")
        lookup = parts.pop() if len(parts) > 1 and parts[-1] in LOOKUPS else "exact"
        parsed.append((".".join(parts), LOOKUPS[lookup], expected))

    def condition(instance, **extra) -> bool:
        return all(test(resolve_path(instance, path), expected)
                   for path, test, expected in parsed)

    return condition


def _condition(value: Any) -> Callable[..., bool] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return _lookup_condition(value)
    if callable(value):
        return _with_event_arguments(value)
    return _callable_or_path(value)


def _address_getter(item: Any) -> Callable[..., Any]:
    if is_literal_address(item):
        return lambda instance, **extra: item
    if isinstance(item, str):
        return _callable_or_path(item)
    return _with_event_arguments(item)


def _recipients(value: Any) -> Callable[..., list[str]]:
    """``to``, ``from_email``, ``reply_to``: addresses, paths and callables, flattened."""
    getters = [_address_getter(item)
               for item in (value if isinstance(value, (list, tuple)) else [value])]

    def recipients(instance, **extra) -> list[str]:
        found: list[str] = []
        for getter in getters:
            result = getter(instance, **extra)
            if isinstance(result, (list, tuple, set)):
                found.extend(result)
            else:
                found.append(result)
        return found

    return recipients


def _context(value: Any) -> Callable[..., dict]:
    if value is None:
        return lambda instance, **extra: default_context(instance)
    if isinstance(value, (list, tuple)):
        return lambda instance, **extra: fields(instance, *value)
    if callable(value):
        return _with_event_arguments(value)
    imported = import_or_none(value)
    if not callable(imported):
        raise ConfigurationError(f"context {value!r} does not import as a callable.")
    return _with_event_arguments(imported)


def _digest(value: Mapping[str, Any] | None) -> Digest | None:
    if value is None:
        return None
    key = value.get("key", DIGEST_BY_RECIPIENT)
    return Digest(
        window=parse_delay(value["window"]),
        key=None if key == DIGEST_BY_RECIPIENT else _condition(key),
        first_at_once=bool(value.get("first_at_once", False)),
        context=_digest_context_callable(value.get("context")),
    )


def _digest_context_callable(value: Any) -> Callable[..., Mapping[str, Any]] | None:
    if value is None or callable(value):
        return value
    imported = import_or_none(value)
    if not callable(imported):
        raise ConfigurationError(f"the digest context {value!r} does not import as a callable.")
    return imported


def parse_trigger(key: str, definition: Mapping[str, Any]) -> Trigger:
    """Build a ``Trigger``; raise ``ConfigurationError`` saying what to fix."""
    problems = definition_problems(key, definition)
    if problems:
        raise ConfigurationError(f"TRANSACTIONAL_MAIL['TRIGGERS'][{key!r}]: {problems[0][0]}")
    model = apps.get_model(definition["model"]) if definition.get("model") else None
    signal = import_string(definition["signal"]) if definition.get("signal") else None
    return Trigger(
        key=key,
        template=definition["template"],
        definition=definition,
        model=model,
        on=definition.get("on"),
        field=definition.get("field"),
        from_value=definition.get("from_value", UNSET),
        to_value=definition.get("to_value", UNSET),
        signal=signal,
        instance_arg=definition.get("instance_arg", "instance"),
        sender=resolve_sender(definition.get("sender")),
        when=_condition(definition.get("when")),
        cancel_when=_condition(definition.get("cancel_when")),
        to=_recipients(definition["to"]),
        from_email=_recipients(definition["from_email"]) if definition.get("from_email") else None,
        reply_to=_recipients(definition["reply_to"]) if definition.get("reply_to") else None,
        context=_context(definition.get("context")),
        language=_condition(definition.get("language")) if definition.get("language") else None,
        attachments=_condition(definition.get("attachments")),
        delay=parse_delay(definition["delay"]) if definition.get("delay") is not None else None,
        once=bool(definition.get("once", False)),
        digest=_digest(definition.get("digest")),
        options={name: definition[name] for name in ("category", "tags", "secret_keys")
                 if name in definition},
    )


#: The parsed settings: "triggers" by key, "by_model" and "tracked" worked out from them.
_cache: dict[str, Any] = {}


def all_triggers() -> dict[str, Trigger]:
    """Every trigger from settings, parsed once until the settings change."""
    triggers = _cache.get("triggers")
    if triggers is None:
        triggers = {key: parse_trigger(key, definition)
                    for key, definition in (get_setting("TRIGGERS") or {}).items()}
        _cache["triggers"] = triggers
        by_model: dict[type, list[Trigger]] = {}
        tracked: dict[type, dict[str, str]] = {}
        for trigger in triggers.values():
            if trigger.model is not None:
                by_model.setdefault(trigger.model, []).append(trigger)
            if trigger.on == "changed":
                attname = trigger.model._meta.get_field(trigger.field).attname
                tracked.setdefault(trigger.model, {})[trigger.field] = attname
        _cache["by_model"] = by_model
        _cache["tracked"] = tracked
    return triggers


def triggers_for_model(model: type[models.Model]) -> list[Trigger]:
    all_triggers()
    return _cache["by_model"].get(model, [])


def tracked_fields(model: type[models.Model]) -> dict[str, str]:
    """``{field name: attname}`` of the model's fields that "changed" triggers watch.

    Worked out once per settings: ``post_init`` asks for it on every row a query loads.
    """
    all_triggers()
    return _cache["tracked"].get(model, {})


def forget_triggers() -> None:
    """Drop the parsed triggers: the next ``all_triggers()`` reads the settings again."""
    _cache.clear()


def _initial_values(instance: models.Model) -> dict[str, Any]:
    return instance.__dict__.get(INITIAL_VALUES_ATTR, {})


def field_value(instance: models.Model, name: str) -> Any:
    """The value ``instance`` holds for the field ``name`` (a relation's id, not a query)."""
    return getattr(instance, instance._meta.get_field(name).attname)
