"""Triggers: ``TRANSACTIONAL_MAIL["TRIGGERS"]`` -> ``Trigger`` objects -> receivers -> outbox rows.

A receiver only queues work: it evaluates the trigger's condition, resolves recipients
and context, and calls ``send()``, which writes one row and registers one ``on_commit``
callback. Nothing is rendered or sent on the request path.

Model events come from ``post_save`` / ``post_delete``, received for every model and
matched to triggers at call time (so ``override_settings`` works). ``"changed"`` knows a
field's old value from a snapshot taken when the instance was loaded (``post_init``), so
it costs no query per save; only an instance whose value was never loaded (deferred, or
built by hand with a primary key) costs one query in ``pre_save``.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.signals import setting_changed
from django.core.validators import validate_slug
from django.db import models
from django.db.models.signals import post_delete, post_init, post_save, pre_delete, pre_save
from django.dispatch import Signal
from django.utils.module_loading import import_string

from ..conf import get_setting
from ..exceptions import ConfigurationError, TransactionalMailError
from ..headers import address_problem
from ..snapshots import default_context, fields, plain, private_segment, resolve_path

logger = logging.getLogger(__name__)

EVENTS = ("created", "updated", "deleted", "changed")

#: Every key a trigger definition may have.
KNOWN_KEYS = frozenset({
    "model", "on", "field", "from_value", "to_value", "signal", "instance_arg", "sender",
    "when", "cancel_when", "template", "to", "context", "language", "from_email",
    "reply_to", "category", "tags", "attachments", "delay", "once", "description",
})

_UNSET = object()

#: Operators of a ``when`` lookup dict: ``{"status": "paid", "total__gte": 100}``.
LOOKUPS: dict[str, Callable[[Any, Any], bool]] = {
    "exact": operator.eq,
    "ne": operator.ne,
    "in": lambda value, options: value in options,
    "gt": lambda value, bound: value is not None and value > bound,
    "gte": lambda value, bound: value is not None and value >= bound,
    "lt": lambda value, bound: value is not None and value < bound,
    "lte": lambda value, bound: value is not None and value <= bound,
    "isnull": lambda value, expected: (value is None) == bool(expected),
}


class TriggerError(TransactionalMailError):
    """A trigger could not queue its email (recorded on the log, never raised at a save)."""


# --- Definitions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """One parsed entry of ``TRANSACTIONAL_MAIL["TRIGGERS"]``."""

    key: str
    template: str
    definition: Mapping[str, Any]
    model: type[models.Model] | None = None
    on: str | None = None
    field: str | None = None
    from_value: Any = _UNSET
    to_value: Any = _UNSET
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
            old = _initial_values(instance).get(self.field, _UNSET)
            new = _field_value(instance, self.field)
            if old is _UNSET or old == new:
                return False
            if self.from_value is not _UNSET and old != self.from_value:
                return False
            return self.to_value is _UNSET or new == self.to_value
        return False

    def wanted(self, instance: Any, extra: Mapping[str, Any]) -> bool:
        return self.when is None or bool(self.when(instance, **extra))


def _import_or_none(path: str) -> Any:
    """The object a dotted path names, or None when it does not import."""
    if "." not in path:
        return None
    try:
        return import_string(path)
    except ImportError:
        return None


def _import_failure(path: str) -> str:
    """Why ``path`` does not import when the cause is inside a module that exists (a broken
    import in it), rather than the path's own spelling; "" otherwise."""
    if not isinstance(path, str) or "." not in path:
        return ""
    try:
        import_string(path)
    except ImportError as err:
        missing, module_path = getattr(err, "name", None), path.rsplit(".", 1)[0]
        if missing is None or module_path == missing or module_path.startswith(missing + "."):
            return ""  # the path's own module or attribute is missing: a spelling problem
        return f" (importing it raised {type(err).__name__}: {err})"
    return ""


def _names_app_module(path: str) -> bool:
    """Whether ``path`` starts inside an installed app's package: a dotted callable, not an
    attribute path (used where the instance's attributes cannot be checked)."""
    parts = path.split(".")
    packages = {config.name for config in apps.get_app_configs()}
    return len(parts) > 2 and any(".".join(parts[:n]) in packages for n in range(1, len(parts)))


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
    imported = _import_or_none(value)
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


def is_literal_address(value: Any) -> bool:
    """A string with an "@" is an address, never an attribute path or a dotted callable."""
    return isinstance(value, str) and "@" in value


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
    imported = _import_or_none(value)
    if not callable(imported):
        raise ConfigurationError(f"context {value!r} does not import as a callable.")
    return _with_event_arguments(imported)


def parse_trigger(key: str, definition: Mapping[str, Any]) -> Trigger:
    """Build a ``Trigger``; raise ``ConfigurationError`` saying what to fix."""
    problems = definition_problems(key, definition)
    if problems:
        raise ConfigurationError(f"TRANSACTIONAL_MAIL['TRIGGERS'][{key!r}]: {problems[0][0]}")
    from ..api import parse_delay

    model = apps.get_model(definition["model"]) if definition.get("model") else None
    signal = import_string(definition["signal"]) if definition.get("signal") else None
    return Trigger(
        key=key,
        template=definition["template"],
        definition=definition,
        model=model,
        on=definition.get("on"),
        field=definition.get("field"),
        from_value=definition.get("from_value", _UNSET),
        to_value=definition.get("to_value", _UNSET),
        signal=signal,
        instance_arg=definition.get("instance_arg", "instance"),
        sender=_resolve_sender(definition.get("sender")),
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
        options={name: definition[name] for name in ("category", "tags") if name in definition},
    )


def definition_problems(key: Any, definition: Any) -> list[tuple[str, str]]:
    """Every mistake in one trigger definition, as (message, hint) pairs; no DB access."""
    if not isinstance(key, str) or not 0 < len(key) <= 100:
        return [(f"the trigger key {key!r} is not a string of 1 to 100 characters.",
                 "Use a name like 'welcome'.")]
    if not isinstance(definition, Mapping):
        return [("the definition must be a dict.",
                 "See the triggers guide for the keys a trigger takes.")]
    problems = []
    for name in definition:
        if name not in KNOWN_KEYS:
            close = difflib.get_close_matches(str(name), KNOWN_KEYS, n=1)
            problems.append((f"unknown key {name!r}.",
                             f"Did you mean {close[0]!r}?" if close else
                             "Known keys: " + ", ".join(sorted(KNOWN_KEYS)) + "."))
    template = definition.get("template")
    if "template" not in definition:
        problems.append(("'template' is missing.",
                         "Give the key of an EmailTemplate, e.g. 'order_confirmation'."))
    elif not _is_slug(template):
        problems.append((f"'template' is {template!r}; it must be a template key (a slug).",
                         "Give the key of an EmailTemplate, e.g. 'order_confirmation'."))
    category = definition.get("category")
    if category is not None and not (isinstance(category, str) and len(category) <= 50):
        problems.append((f"'category' is {category!r}; it must be a string of at most 50 "
                         "characters.", "For example 'orders' or 'account'."))
    if "to" not in definition:
        problems.append(("'to' is missing.", "Give an attribute path like 'customer.email', "
                                             "a list of paths, or a dotted callable."))
    model = _model_problems(definition, problems)
    _signal_problems(definition, problems)
    for name in ("to", "from_email", "reply_to", "when", "cancel_when", "language",
                 "attachments"):
        value = definition.get(name)
        addresses = name in ("to", "from_email", "reply_to")
        values = value if addresses and isinstance(value, (list, tuple)) else [value]
        for item in values:
            if addresses and is_literal_address(item):
                problem = _address_problem(item)
                if problem:
                    problems.append((f"{name!r} {item!r} is {problem}.",
                                     "Give an address like 'Shop <shop@example.com>', or a "
                                     "path or callable that gives one."))
                continue
            if isinstance(item, str):
                _path_problems(name, item, model, problems)
            elif name in ("when", "cancel_when") and isinstance(item, Mapping):
                for lookup in item:
                    path = ".".join(part for part in str(lookup).split("__")
                                    if part not in LOOKUPS)
                    _path_problems(name, path, model, problems, lookup=lookup)
            elif item is not None and not callable(item):
                problems.append((f"{name!r} is {item!r}, which is neither a path nor a "
                                 "callable.", "Use a dotted path to a function, or an "
                                 "attribute path such as 'customer.email'."))
    context = definition.get("context")
    if isinstance(context, str) and not callable(_import_or_none(context)):
        problems.append((f"'context' {context!r} does not import as a callable"
                         f"{_import_failure(context)}.",
                         "Point it at a function(instance) -> dict, or give a list of "
                         "attribute paths."))
    elif isinstance(context, (list, tuple)):
        for path in context:
            _path_problems("context", path, model, problems)
    if not isinstance(definition.get("once", False), bool):
        problems.append((f"'once' is {definition['once']!r}; it must be True or False.",
                         "'once': True sends at most one email per object and recipient."))
    if definition.get("delay") is not None:
        from ..api import parse_delay

        try:
            parse_delay(definition["delay"])
        except TransactionalMailError as err:
            problems.append((str(err), "For example timedelta(days=7) or '7d'."))
    problems += private_path_problems(definition)
    return problems


#: The hint of every private-path problem (check E010).
PRIVATE_PATH_HINT = ("A path never reads an attribute starting with '_': '__dict__' would put "
                     "every field, the password hash included, in the email's snapshot. Name "
                     "the public fields the email needs, or use a callable.")


def private_path_problems(definition: Any) -> list[tuple[str, str]]:
    """Each attribute path of ``definition`` with a segment starting with "_", as a
    (message, hint) pair; the checks report them as E010, and ``parse_trigger`` refuses
    them like any other problem."""
    if not isinstance(definition, Mapping):
        return []
    problems = []
    for name, path, segment in _private_paths(definition):
        problems.append((f"{name!r} {path!r} reaches {segment!r}, an attribute starting "
                         "with '_'.", PRIVATE_PATH_HINT))
    return problems


def _private_paths(definition: Mapping[str, Any]):
    """(option, path as written, private segment) for every string of ``definition``
    that is read as an attribute path of the instance."""
    for name in ("to", "from_email", "reply_to", "when", "cancel_when", "language",
                 "attachments", "context", "field"):
        value = definition.get(name)
        if name == "context" and not isinstance(value, (list, tuple)):
            continue  # a string context is a dotted callable, never a path
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, Mapping) and name in ("when", "cancel_when"):
                for lookup in item:
                    parts = str(lookup).split("__")
                    segment = next((part for part in parts if part.startswith("_")), "")
                    if segment:
                        yield name, lookup, segment
            elif isinstance(item, str) and not (
                name in ("to", "from_email", "reply_to") and is_literal_address(item)
            ) and (name in ("context", "field") or not callable(_import_or_none(item))):
                segment = private_segment(item)
                if segment:
                    yield name, item, segment


def _is_slug(value: Any) -> bool:
    try:
        validate_slug(value if isinstance(value, str) else "")
    except ValidationError:
        return False
    return True


def _model_problems(definition, problems) -> type[models.Model] | None:
    model_label, signal = definition.get("model"), definition.get("signal")
    if bool(model_label) == bool(signal):
        problems.append(("give either 'model' (with 'on') or 'signal'.",
                         "'model': 'shop.Order', 'on': 'created' — or 'signal': "
                         "'django.contrib.auth.signals.user_logged_in'."))
        return None
    if not model_label:
        return None
    try:
        model = apps.get_model(model_label)
    except (LookupError, ValueError):
        labels = [m._meta.label for m in apps.get_models()]
        close = difflib.get_close_matches(str(model_label), labels, n=1)
        problems.append((f"'model' {model_label!r} is not an installed model.",
                         f"Did you mean {close[0]!r}?" if close else
                         "Use 'app_label.ModelName' of a model in INSTALLED_APPS."))
        return None
    on = definition.get("on")
    if on not in EVENTS:
        problems.append((f"'on' is {on!r}; it must be one of {', '.join(EVENTS)}.",
                         "'changed' also needs 'field'."))
    if on == "changed":
        name = definition.get("field")
        try:
            model_field = model._meta.get_field(name)
            if not model_field.concrete or model_field.many_to_many:
                raise FieldDoesNotExist(name)  # a relation stored elsewhere: no old value
        except (FieldDoesNotExist, TypeError):
            names = [f.name for f in model._meta.concrete_fields]
            close = difflib.get_close_matches(str(name), names, n=1)
            problems.append((f"'field' {name!r} is not a field of {model_label}.",
                             f"Did you mean {close[0]!r}?" if close else
                             "Fields: " + ", ".join(names) + "."))
        else:
            choices = [value for value, _label in model_field.flatchoices]
            for option in ("from_value", "to_value"):
                value = definition.get(option)
                if choices and option in definition and value not in choices:
                    close = difflib.get_close_matches(str(value), map(str, choices), n=1)
                    problems.append((f"{option!r} {value!r} is not a choice of "
                                     f"{model_label}.{name}; the trigger would never fire.",
                                     f"Did you mean {close[0]!r}?" if close else
                                     "Choices: " + ", ".join(map(repr, choices)) + "."))
    elif any(name in definition for name in ("field", "from_value", "to_value")):
        problems.append(("'field', 'from_value' and 'to_value' only go with 'on': 'changed'.",
                         "Use 'on': 'changed', or a 'when' condition."))
    return model


def _signal_problems(definition, problems) -> None:
    signal = definition.get("signal")
    if not signal:
        if "sender" in definition or "instance_arg" in definition:
            problems.append(("'sender' and 'instance_arg' only go with 'signal'.",
                             "Remove them, or use 'signal' instead of 'model'."))
        return
    if not isinstance(_import_or_none(signal), Signal):
        problems.append((f"'signal' {signal!r} does not import as a Django Signal.",
                         "Use a dotted path such as "
                         "'django.contrib.auth.signals.user_logged_in'."))
    misplaced = [name for name in ("on", "field", "from_value", "to_value")
                 if name in definition]
    if misplaced:
        problems.append((f"{', '.join(map(repr, misplaced))} only go with 'model'.",
                         "A signal trigger fires on every send of the signal; filter with "
                         "'sender' or 'when'."))
    sender = definition.get("sender")
    if sender is not None and _resolve_sender(sender) is None:
        problems.append((f"'sender' {sender!r} is neither an installed model "
                         "('app_label.Model') nor a dotted path that imports.",
                         "Use e.g. 'auth.User', or remove 'sender' to accept any sender."))


def _resolve_sender(sender: Any) -> Any:
    """The sender a signal trigger accepts: a model label, a dotted path, or an object."""
    if not isinstance(sender, str):
        return sender
    if sender.count(".") == 1:
        try:
            return apps.get_model(sender)
        except (LookupError, ValueError):
            pass
    return _import_or_none(sender)


def _path_problems(name, path, model, problems, lookup=None) -> None:
    """Flag a string that is neither a dotted callable nor an attribute path of the model."""
    if callable(_import_or_none(path)) or private_segment(path):
        return  # a callable; or a private path, reported once by private_path_problems
    if model is None:
        # A signal's instance: its attributes cannot be checked without one, but a path
        # into an installed app's package is a dotted callable that does not import.
        if _names_app_module(path):
            problems.append((f"{name!r} {path!r} does not import as a callable"
                             f"{_import_failure(path)}.",
                             "Check the spelling, or the module's import path."))
        return
    current: Any = model
    for part in path.split("."):
        if not part.isidentifier():
            break
        if isinstance(current, type) and issubclass(current, models.Model):
            try:
                related = current._meta.get_field(part)
            except FieldDoesNotExist:
                if hasattr(current, part):
                    return  # a property or method: checked when it runs
                break
            current = related.related_model or None
            if current is None:
                return
        else:
            return
    else:
        return
    shown = lookup or path
    problems.append((f"{name!r} {shown!r} is neither a dotted callable that imports nor an "
                     f"attribute path of {model._meta.label}{_import_failure(path)}.",
                     "Check the spelling, or the module's import path."))


# --- The parsed settings, rebuilt when they change -----------------------------------

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


def _tracked_fields(model: type[models.Model]) -> dict[str, str]:
    """``{field name: attname}`` of the model's fields that "changed" triggers watch.

    Worked out once per settings: ``post_init`` asks for it on every row a query loads.
    """
    all_triggers()
    return _cache["tracked"].get(model, {})


# --- Receivers ---------------------------------------------------------------------------


def connect() -> None:
    """Connect the receivers the current settings need (from ``ready()`` and on change)."""
    post_save.connect(_model_saved, weak=False, dispatch_uid="transactional_mail.post_save")
    setting_changed.connect(_settings_changed, weak=False,
                            dispatch_uid="transactional_mail.setting_changed")
    try:
        triggers = all_triggers()
    except ConfigurationError:
        # manage.py check reports it with an id and a hint. Until it is fixed, refuse
        # every save and delete before anything is written: the error is loud, and no
        # row is committed without the email it should have queued.
        pre_save.connect(_refuse_broken_triggers, weak=False, dispatch_uid=_BROKEN_UID)
        pre_delete.connect(_refuse_broken_triggers, weak=False, dispatch_uid=_BROKEN_UID)
        return
    for model in {t.model for t in triggers.values() if t.on == "changed"}:
        uid = f"transactional_mail.track.{model._meta.label}"
        post_init.connect(_remember_values, sender=model, weak=False, dispatch_uid=uid)
        pre_save.connect(_load_unknown_values, sender=model, weak=False, dispatch_uid=uid)
    # Only models with a "deleted" trigger: any post_delete receiver turns off Django's
    # fast (signal-free) delete for that model.
    for model in {t.model for t in triggers.values() if t.on == "deleted"}:
        post_delete.connect(_model_deleted, sender=model, weak=False,
                            dispatch_uid=f"transactional_mail.deleted.{model._meta.label}")
    for trigger in triggers.values():
        if trigger.signal is not None:
            trigger.signal.connect(_signal_receiver(trigger.key), weak=False,
                                   dispatch_uid=f"transactional_mail.signal.{trigger.key}")
    _cache["connected"] = triggers


def disconnect() -> None:
    """Undo ``connect()`` for the settings it was called with."""
    pre_save.disconnect(dispatch_uid=_BROKEN_UID)
    pre_delete.disconnect(dispatch_uid=_BROKEN_UID)
    for trigger in _cache.pop("connected", {}).values():
        if trigger.on == "deleted":
            uid = f"transactional_mail.deleted.{trigger.model._meta.label}"
            post_delete.disconnect(sender=trigger.model, dispatch_uid=uid)
        if trigger.on == "changed":
            uid = f"transactional_mail.track.{trigger.model._meta.label}"
            post_init.disconnect(sender=trigger.model, dispatch_uid=uid)
            pre_save.disconnect(sender=trigger.model, dispatch_uid=uid)
        if trigger.signal is not None:
            trigger.signal.disconnect(dispatch_uid=f"transactional_mail.signal.{trigger.key}")


_BROKEN_UID = "transactional_mail.broken_triggers"


def _refuse_broken_triggers(sender, raw=False, **kwargs) -> None:
    if not raw:
        all_triggers()  # raises the ConfigurationError that says what to fix


def _settings_changed(setting: str, **kwargs) -> None:
    if setting == "TRANSACTIONAL_MAIL":
        disconnect()
        _cache.clear()
        connect()


def _initial_values(instance: models.Model) -> dict[str, Any]:
    return instance.__dict__.get("_transactional_mail_initial", {})


def _field_value(instance: models.Model, name: str) -> Any:
    return getattr(instance, instance._meta.get_field(name).attname)


def _remember_values(sender, instance, only=None, **kwargs) -> None:
    """Keep the tracked fields' values as the database has them now.

    After a save with ``update_fields``, only those fields reached the database.
    """
    loaded = instance.__dict__
    remembered = loaded.setdefault("_transactional_mail_initial", {})
    for name, attname in _tracked_fields(sender).items():
        if attname in loaded and (only is None or name in only or attname in only):
            remembered[name] = loaded[attname]


def _load_unknown_values(sender, instance, raw=False, using=None, **kwargs) -> None:
    """Before a save, fetch old values that were never loaded (one query, rarely)."""
    if raw or instance.pk is None:
        return
    initial = instance.__dict__.setdefault("_transactional_mail_initial", {})
    if instance._state.adding:
        # Built by hand with a primary key: what it holds may not be what the row holds.
        initial.clear()
    tracked = _tracked_fields(sender)
    missing = [name for name in tracked if name not in initial]
    if missing:
        attnames = [tracked[name] for name in missing]
        row = sender._base_manager.using(using).filter(pk=instance.pk).values(*attnames).first()
        if row is not None:
            for name, attname in zip(missing, attnames, strict=True):
                initial[name] = row[attname]


def _model_saved(sender, instance, created, update_fields=None, raw=False, using=None,
                 **kwargs) -> None:
    if raw:
        return  # loaddata: fixtures are not events
    triggers = triggers_for_model(sender)
    if not triggers:
        return
    for trigger in triggers:
        if trigger.matches_save(instance, created, update_fields):
            fire(trigger, instance)
    if any(trigger.on == "changed" for trigger in triggers):
        _remember_values(sender, instance, only=update_fields)  # the next save compares




def _model_deleted(sender, instance, using=None, **kwargs) -> None:
    # The log keeps the deleted object's type and id as text, like admin's LogEntry.
    for trigger in triggers_for_model(sender):
        if trigger.on == "deleted":
            fire(trigger, instance)


def _signal_receiver(key: str) -> Callable[..., None]:
    def receiver(sender, **kwargs):
        trigger = all_triggers().get(key)
        if trigger is None or (trigger.sender is not None and sender is not trigger.sender):
            return
        instance = kwargs.get(trigger.instance_arg)
        extra = {name: value for name, value in kwargs.items() if name != "signal"}
        fire(trigger, instance, extra=extra,
             source=instance if isinstance(instance, models.Model) else None)

    return receiver


# --- Firing ------------------------------------------------------------------------------


_SOURCE = object()


@dataclass
class Plan:
    """What a trigger would queue for one event: the dry run's answer, and fire()'s input."""

    trigger: str
    template: str
    fires: bool
    reason: str = ""
    recipients: list[str] = dataclass_field(default_factory=list)
    invalid_recipients: dict[str, str] = dataclass_field(default_factory=dict)
    context: dict[str, Any] = dataclass_field(default_factory=dict)
    language: str | None = None
    delay: timedelta | None = None
    options: dict[str, Any] = dataclass_field(default_factory=dict)


def plan(trigger: Trigger, instance: Any, extra: Mapping[str, Any] | None = None) -> Plan:
    """Evaluate ``trigger`` for ``instance`` without writing anything."""
    from ..models import Trigger as TriggerSwitch

    extra = dict(extra or {})
    result = Plan(trigger=trigger.key, template=trigger.template, fires=False)
    if trigger.key in TriggerSwitch.objects.disabled_keys():
        result.reason = "disabled in the admin"
        return result
    if not trigger.wanted(instance, extra):
        result.reason = "its 'when' condition is false"
        return result
    result.fires = True
    result.recipients, result.invalid_recipients = _sorted_recipients(
        trigger.to(instance, **extra))
    result.context = trigger.context(instance, **extra)
    if trigger.language is not None:
        language = trigger.language(instance, **extra)
        result.language = str(language) if language else None
    result.delay = trigger.delay
    result.options = dict(trigger.options)
    for name in ("from_email", "reply_to"):
        getter = getattr(trigger, name)
        if getter is not None:
            addresses = _evaluated_addresses(trigger, name, getter(instance, **extra))
            if addresses:  # none (a blank field): the default applies
                result.options[name] = addresses[0] if name == "from_email" else addresses
    if trigger.attachments is not None:
        result.options["attachments"] = trigger.attachments(instance, **extra)
    return result


def _evaluated_addresses(trigger: Trigger, name: str, values: list) -> list[str]:
    """The non-blank addresses an option gave; TriggerError naming any invalid one."""
    addresses = []
    for address in values:
        problem = _address_problem(address)
        if problem == "empty":
            continue
        if problem:
            raise TriggerError(f"{name} {address!r} is {problem}; check the trigger's "
                               f"{name!r} ({trigger.definition.get(name)!r}).")
        addresses.append(address.strip())
    if name == "from_email" and len(addresses) > 1:
        raise TriggerError(f"from_email gave {len(addresses)} addresses; an email has one "
                           f"sender. Check the trigger's 'from_email'.")
    return addresses


_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _address_problem(address: Any) -> str:
    from email.utils import parseaddr

    if address is None or (isinstance(address, str) and not address.strip()):
        return "empty"
    if not isinstance(address, str):
        return f"not a string ({type(address).__name__})"
    problem = address_problem(address.strip())
    if problem:
        return problem  # not one line, too long, or several mailboxes in one string
    if not _ADDRESS.match(parseaddr(address)[1] or ""):
        return "not an email address"
    return ""


def fire(trigger: Trigger, instance: Any, *, extra: Mapping[str, Any] | None = None,
         source: Any = _SOURCE) -> list:
    """Queue the trigger's emails for this event: one per recipient.

    Never raises into the save or signal that fired it: a failing callable, an unknown
    template or a bad recipient is recorded as a failed Email row with the reason, and
    logged, so it is seen in the send log and nothing is lost silently.
    """
    from .. import api

    source = instance if source is _SOURCE else source
    if not isinstance(source, models.Model) or source.pk is None:
        source = None
    try:
        result = plan(trigger, instance, extra)
    except Exception as err:
        logger.exception("Trigger %s failed while evaluating its event", trigger.key)
        return [api.record_unsent(trigger.template, f"Trigger {trigger.key!r} failed: "
                                  f"{type(err).__name__}: {err}",
                                  to=_recipients_if_known(trigger, instance, extra),
                                  trigger_key=trigger.key, source=source)]
    if not result.fires:
        return []
    emails = []
    for address, problem in result.invalid_recipients.items():
        emails.append(api.record_unsent(
            trigger.template,
            f"Trigger {trigger.key!r}: recipient {address!r} is {problem}; "
            f"check its 'to' ({trigger.definition.get('to')!r}).",
            to=[address] if address not in ("None", "") else [],
            trigger_key=trigger.key, source=source,
        ))
    if not result.recipients and not result.invalid_recipients:
        emails.append(api.record_unsent(
            trigger.template,
            f"Trigger {trigger.key!r}: no recipient ({trigger.definition.get('to')!r} "
            "gave nothing).", trigger_key=trigger.key, source=source))
    for address in result.recipients:
        options = dict(result.options)
        if trigger.once and source is not None:
            options["idempotency_key"] = once_key(trigger, source, address)
        try:
            emails.append(api.send(
                trigger.template, address, result.context, language=result.language,
                delay=result.delay, source=source, trigger_key=trigger.key, **options,
            ))
        except Exception as err:
            logger.exception("Trigger %s could not queue its email to %s", trigger.key,
                             address)
            emails.append(api.record_unsent(
                trigger.template, f"Trigger {trigger.key!r} could not queue: "
                f"{type(err).__name__}: {err}", to=[address], trigger_key=trigger.key,
                source=source))
    return emails


def _sorted_recipients(addresses: list) -> tuple[list[str], dict[str, str]]:
    """The valid addresses, one per mailbox however spelt, and the invalid ones with why."""
    from ..models.suppression import normalize_address

    valid: dict[str, str] = {}  # mailbox -> the address as first given
    invalid: dict[str, str] = {}
    for address in addresses:
        problem = _address_problem(address)
        if problem:
            invalid[str(address)] = problem
        else:
            valid.setdefault(normalize_address(address), address.strip())
    return list(valid.values()), invalid


def _recipients_if_known(trigger: Trigger, instance: Any, extra) -> list[str]:
    """The event's valid recipients, for the failed row of a trigger that failed after
    working them out (a failing context): the log is searched by address."""
    try:
        return _sorted_recipients(trigger.to(instance, **dict(extra or {})))[0]
    except Exception:
        return []


def once_key(trigger: Trigger, source: models.Model, address: str) -> str:
    """The idempotency key that makes a ``once`` trigger send one email per object and
    recipient: a double save or two racing requests hit the same unique key."""
    from ..models.suppression import normalize_address

    return (f"trigger:{trigger.key}:{source._meta.label_lower}:{source.pk}:"
            f"{normalize_address(address)}")[:255]


# --- At send time ------------------------------------------------------------------------


def cancellation_reason(email) -> str:
    """Why a trigger's email should not go out now; "" to send it.

    Delayed emails of model triggers re-check ``when``, and every email checks
    ``cancel_when``, against the object as it is now: no review request for an order
    refunded in the meantime. A signal trigger's ``when`` is not re-checked: it was
    decided with the signal's arguments (the request...), which are gone.
    """
    trigger = all_triggers().get(email.trigger_key) if email.trigger_key else None
    if trigger is None or (trigger.cancel_when is None and trigger.delay is None):
        return ""
    if trigger.on == "deleted" or not email.source_content_type_id:
        return ""
    model = email.source_content_type.model_class()
    instance = model._base_manager.filter(pk=email.source_object_id).first() if model else None
    if instance is None:
        return f"Cancelled: the {email.source_content_type.name} it was about no longer exists."
    recheck_when = trigger.delay is not None and trigger.when is not None and trigger.model
    if recheck_when and not trigger.wanted(instance, {}):
        return f"Cancelled: trigger {trigger.key!r}'s 'when' is no longer true."
    if trigger.cancel_when is not None and trigger.cancel_when(instance):
        return f"Cancelled: trigger {trigger.key!r}'s 'cancel_when' is true."
    return ""


# --- Rows for the admin ------------------------------------------------------------------


def sync_trigger_rows(using: str = "default", **kwargs) -> None:
    """Create a ``Trigger`` row (enabled) for each trigger in settings; runs after migrate."""
    from django.db import DatabaseError

    from ..models import Trigger as TriggerSwitch

    definitions = get_setting("TRIGGERS")
    keys = set(definitions) if isinstance(definitions, Mapping) else set()
    try:
        existing = set(TriggerSwitch.objects.using(using).values_list("key", flat=True))
        TriggerSwitch.objects.using(using).bulk_create(
            [TriggerSwitch(key=key) for key in sorted(keys - existing) if isinstance(key, str)]
        )
    except DatabaseError:
        logger.warning("Could not sync trigger rows on %r; run migrate.", using, exc_info=True)


# --- Dry run -----------------------------------------------------------------------------


def dry_run(instance: Any, event: str, *, old_values: Mapping[str, Any] | None = None,
            signal: str | None = None, extra: Mapping[str, Any] | None = None) -> list[Plan]:
    """Which triggers would fire for ``instance`` and ``event``, for whom, with what context.

    Writes nothing and sends nothing. ``event`` is created, updated, deleted or changed
    (``old_values`` gives the values before the change), or "signal" with ``signal``
    naming the signal's dotted path.
    """
    plans = []
    for trigger in all_triggers().values():
        if event == "signal":
            if trigger.signal is None or trigger.definition.get("signal") != signal:
                continue
        elif trigger.model is None or not isinstance(instance, trigger.model):
            continue
        elif trigger.on == "changed":
            if event not in ("changed", "updated"):
                continue
            old = (old_values or {}).get(trigger.field, _UNSET)
            new = _field_value(instance, trigger.field)
            if old is _UNSET:
                plans.append(Plan(trigger=trigger.key, template=trigger.template, fires=False,
                                  reason=f"the old value of {trigger.field!r} is not given: "
                                         f"--old {trigger.field}=VALUE"))
                continue
            if old == new or (
                trigger.from_value is not _UNSET and old != trigger.from_value
            ) or (trigger.to_value is not _UNSET and new != trigger.to_value):
                plans.append(Plan(trigger=trigger.key, template=trigger.template, fires=False,
                                  reason=f"{trigger.field!r} did not change as required"))
                continue
        elif trigger.on != event:
            continue
        try:
            plans.append(plan(trigger, instance, extra))
        except Exception as err:
            plans.append(Plan(trigger=trigger.key, template=trigger.template, fires=False,
                              reason=f"it fails, and would log a failed email: "
                                     f"{type(err).__name__}: {err}"))
    return plans


__all__ = ["Plan", "Trigger", "all_triggers", "cancellation_reason", "dry_run", "fire",
           "parse_trigger", "plain"]
