"""Checking trigger definitions: every mistake as a message and a hint, for ``manage.py check``.

``transactional_mail.checks`` reports them with ids; ``parse_trigger`` refuses a definition
with any of them. Nothing here touches the database.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import validate_slug
from django.db import models
from django.dispatch import Signal
from django.utils.module_loading import import_string

from ..api import parse_delay
from ..exceptions import TransactionalMailError
from ..snapshots import private_segment
from .syntax import (
    DIGEST_BY_RECIPIENT,
    DIGEST_KEYS,
    EVENTS,
    KNOWN_KEYS,
    LOOKUPS,
    email_address_problem,
    import_or_none,
    is_literal_address,
    resolve_sender,
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
    secret_keys = definition.get("secret_keys")
    if secret_keys is not None and not (
        isinstance(secret_keys, (list, tuple))
        and all(isinstance(key, str) and key for key in secret_keys)
    ):
        problems.append((f"'secret_keys' is {secret_keys!r}; it must be a list of top-level "
                         "context keys.", "For example ['reset_url'] or ['code']."))
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
                problem = email_address_problem(item)
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
    if isinstance(context, str) and not callable(import_or_none(context)):
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
        try:
            parse_delay(definition["delay"])
        except TransactionalMailError as err:
            problems.append((str(err), "For example timedelta(days=7) or '7d'."))
    if "digest" in definition:
        problems += _digest_problems(definition, model)
    problems += private_path_problems(definition)
    return problems


#: The hint of every digest problem.
DIGEST_HINT = ('For example "digest": {"window": "1h", "key": "recipient", '
               '"first_at_once": False, "context": "shop.mail.digest_context"}; see the '
               'scheduling guide.')


def _digest_problems(definition: Mapping[str, Any], model) -> list[tuple[str, str]]:
    """The mistakes of a trigger's ``"digest"`` option."""
    digest = definition["digest"]
    if not isinstance(digest, Mapping):
        return [(f"'digest' is {digest!r}; it must be a dict.", DIGEST_HINT)]
    problems = []
    for name in digest:
        if name not in DIGEST_KEYS:
            close = difflib.get_close_matches(str(name), DIGEST_KEYS, n=1)
            problems.append((f"'digest' has an unknown key {name!r}.",
                             f"Did you mean {close[0]!r}?" if close else DIGEST_HINT))
    if "window" not in digest:
        problems.append(("'digest' has no 'window'.", DIGEST_HINT))
    else:
        try:
            window = parse_delay(digest["window"])
        except TransactionalMailError:
            window = None
        if window is None or window.total_seconds() < 1:
            problems.append((f"the digest 'window' {digest['window']!r} is not a duration "
                             "of at least one second.",
                             'Use a timedelta or a string like "15m", "1h" or "1d".'))
    key = digest.get("key", DIGEST_BY_RECIPIENT)
    if isinstance(key, str):
        if key != DIGEST_BY_RECIPIENT:
            _path_problems("digest key", key, model, problems)
    elif not callable(key):
        problems.append((f"the digest 'key' {key!r} is neither 'recipient', a path nor a "
                         "callable.", "Use 'recipient' (one digest per recipient), or an "
                         "attribute path such as 'post.pk' for one per recipient and post."))
    context = digest.get("context")
    if context is not None and not callable(context) and not (
            isinstance(context, str) and callable(import_or_none(context))):
        problems.append((f"the digest 'context' {context!r} is not a callable nor the dotted "
                         "path of one.", "Name a function (recipient, items, count) -> dict, "
                         'e.g. "shop.mail.comment_digest_context".'))
    if not isinstance(digest.get("first_at_once", False), bool):
        problems.append((f"the digest 'first_at_once' is {digest['first_at_once']!r}; it "
                         "must be True or False.", DIGEST_HINT))
    clashing = [name for name in ("delay", "once") if definition.get(name)]
    if clashing:
        problems.append((f"'digest' does not go with {' or '.join(map(repr, clashing))}: a "
                         "digest already waits for its window and gathers many events.",
                         "Remove one of them."))
    carried = [name for name in ("secret_keys", "attachments") if definition.get(name)]
    if carried:
        problems.append((f"'digest' does not go with {' or '.join(map(repr, carried))}: the "
                         "events wait in the database, and one email carries them all.",
                         "Send secrets and attachments with a trigger of their own."))
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
    digest = definition.get("digest")
    digest_key = digest.get("key") if isinstance(digest, Mapping) else None
    for name in ("to", "from_email", "reply_to", "when", "cancel_when", "language",
                 "attachments", "context", "field", "digest key"):
        value = digest_key if name == "digest key" else definition.get(name)
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
            ) and (name in ("context", "field") or not callable(import_or_none(item))):
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
    if not isinstance(import_or_none(signal), Signal):
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
    if sender is not None and resolve_sender(sender) is None:
        problems.append((f"'sender' {sender!r} is neither an installed model "
                         "('app_label.Model') nor a dotted path that imports.",
                         "Use e.g. 'auth.User', or remove 'sender' to accept any sender."))


def _path_problems(name, path, model, problems, lookup=None) -> None:
    """Flag a string that is neither a dotted callable nor an attribute path of the model."""
    if callable(import_or_none(path)) or private_segment(path):
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
