"""Turning data into the plain JSON a template may see and the send log stores."""

from __future__ import annotations

import datetime
import json
import math
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.fields.files import FieldFile

from .exceptions import ConfigurationError, ContextNotSerializable

#: Values stored as they are (Django's JSON encoder writes Decimal, dates and UUIDs as text).
_PLAIN = (str, int, float, bool, type(None), Decimal, uuid.UUID, datetime.date,
          datetime.time, datetime.timedelta)


def fields(instance: Any, *paths: str) -> dict[str, Any]:
    """Snapshot chosen attributes of ``instance`` as nested plain data.

    ``fields(order, "number", "total", "customer.name")`` ->
    ``{"number": "A-1", "total": Decimal("9.90"), "customer": {"name": "Ann"}}``.
    A related object or queryset reached by a path becomes its ``{"id", "str"}``
    (or a list of them), never the object: a template cannot call into the ORM.
    """
    data: dict[str, Any] = {}
    for path in paths:
        parts = path.split(".")
        target = data
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = plain(resolve_path(instance, path))
    return data


def default_context(instance: Any) -> dict[str, Any]:
    """What a trigger without a ``context`` gives its template: the object's id and str()."""
    if instance is None:
        return {}
    return {"object": {"id": plain(getattr(instance, "pk", None)), "str": str(instance)}}


def private_segment(path: str) -> str:
    """The first segment of ``path`` that starts with "_" ("" when none does)."""
    return next((part for part in path.split(".") if part.startswith("_")), "")


def resolve_path(instance: Any, path: str) -> Any:
    """Follow ``"customer.email"`` from ``instance``; None when a step is None.

    A segment starting with "_" is refused with ``ConfigurationError``, whatever checks
    ran before: ``__dict__``, ``_state`` or a ``_password`` attribute would put what
    nobody chose to expose (a password hash) in the snapshot.
    """
    segment = private_segment(path)
    if segment:
        raise ConfigurationError(
            f"The attribute path {path!r} reaches {segment!r}; paths never read an "
            "attribute starting with '_'. Name the public fields the email needs."
        )
    value = instance
    for part in path.split("."):
        if value is None:
            return None
        value = getattr(value, part)
        if isinstance(value, models.Manager):
            value = value.all()
    return value


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data; model instances become ``{"id", "str"}``."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, models.Model):
        return {"id": plain(value.pk), "str": str(value)}
    if isinstance(value, FieldFile):
        return value.name or None
    if isinstance(value, models.QuerySet):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    return str(value)


class JSONSnapshot(dict):
    """A mapping's snapshot, with the JSON text it was read from in ``json``.

    A scheduled run inserts its rows right after building them (periodic/copy_rows.py) and
    writes that text instead of serializing the snapshot a second time. The text stays
    true while nobody changes the snapshot, which nothing does in between.
    """

    __slots__ = ("json",)


def json_snapshot(data: Any, *, name: str = "context") -> Any:
    """Return ``data`` as the plain JSON it will be stored as.

    Raises ``ContextNotSerializable`` naming the first offending key; also for a NUL
    character or a lone UTF-16 surrogate in a string or key, which PostgreSQL's ``jsonb``
    cannot hold (the caller's INSERT, and with it their transaction, would fail on
    PostgreSQL only).
    """
    if not data and type(data) in (dict, list):  # the usual metadata, at no cost
        return type(data)()
    if type(data) is JSONSnapshot:
        # Already one (a scheduled run's source takes it as each recipient is read).
        return data
    try:
        text = json.dumps(data, cls=DjangoJSONEncoder, allow_nan=False)
    except (TypeError, ValueError):
        path, value = _first_unserializable(data)
        raise ContextNotSerializable(path, value, name) from None
    snapshot = json.loads(text)
    # JSON's escapes of NUL and of UTF-16 surrogates (or such text written literally).
    if "\\u0000" in text or "\\ud" in text:
        found = _first_unstorable(snapshot)
        if found is not None:
            path, character, problem = found
            raise ContextNotSerializable(path, character, name, problem=problem)
    if isinstance(snapshot, dict):
        snapshot = JSONSnapshot(snapshot)
        snapshot.json = text
    return snapshot


#: Characters PostgreSQL cannot store in ``jsonb`` (nor UTF-8 encode, for surrogates).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable_problem(character: str) -> str:
    if character == "\x00":
        return ("contains a NUL character (\\x00), which the database cannot store in JSON. "
                "Remove it from the value.")
    return (f"contains a lone UTF-16 surrogate (\\u{ord(character):04x}), which is not a "
            "character and which the database cannot store. It usually comes from text "
            "decoded with errors='surrogateescape' or cut in the middle of an emoji: "
            "decode it properly or remove it.")


def _first_unstorable(data: Any, path: str = "") -> tuple[str, str, str] | None:
    """(path, character, problem) of the first string (or key) of ``data`` holding a
    character the database cannot store."""
    if isinstance(data, str):
        found = _UNSTORABLE.search(data)
        return (path, found[0], _unstorable_problem(found[0])) if found else None
    if isinstance(data, Mapping):
        for key, value in data.items():
            found = _UNSTORABLE.search(key) if isinstance(key, str) else None
            if found:
                return f"{path}[{key!r}] (key)", found[0], _unstorable_problem(found[0])
            inner = _first_unstorable(value, f"{path}[{key!r}]")
            if inner is not None:
                return inner
    elif isinstance(data, (list, tuple)):
        for index, value in enumerate(data):
            inner = _first_unstorable(value, f"{path}[{index}]")
            if inner is not None:
                return inner
    return None


def _first_unserializable(data: Any, path: str = "") -> tuple[str, Any]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            if not isinstance(key, str):
                return f"{path}[{key!r}] (key)", key
            found = _first_unserializable(value, f"{path}[{key!r}]")
            if found[0] is not None:
                return found
        return None, None
    if isinstance(data, (list, tuple)):
        for index, value in enumerate(data):
            found = _first_unserializable(value, f"{path}[{index}]")
            if found[0] is not None:
                return found
        return None, None
    if isinstance(data, float) and not math.isfinite(data):
        return path, data
    if isinstance(data, _PLAIN):
        return None, None
    return path or "", data
