"""The read-only JSON context templates see: :func:`freeze_context` and its frozen types.

Templates only ever see the context made by :func:`freeze_context`: JSON data converted
to read-only types (mappings to :class:`FrozenDict`, lists to :class:`FrozenList`, a
tuple; both print like the JSON data they hold). Django calls zero-argument methods
during lookups; on these types the only zero-argument methods return new values
(``items``, ``upper``...) and nothing can be mutated (there is no ``clear`` or ``pop`` to
call) or reached beyond the data itself.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils.functional import Promise

from ..exceptions import RenderError

__all__ = ["FrozenDict", "FrozenList", "freeze_context"]


# Values a context may hold besides JSON types, converted to what the JSON snapshot
# would hold (Django's encoder: ISO strings for dates, str for Decimal and UUID) so a
# preview of a live context renders exactly like the stored snapshot will.
_JSON_COERCIBLE = (
    decimal.Decimal,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
    Promise,
)
_ENCODER = DjangoJSONEncoder()


_SCALARS = frozenset({str, int, float, bool, type(None)})


class FrozenDict(dict):
    """A read-only dict: what a JSON object of the context is to a template.

    A ``dict`` subclass so lookups and ``items`` run at C speed and it prints like the
    data it holds (``MappingProxyType`` printed ``mappingproxy({...})`` into emails).
    Every method that would change it raises ``TypeError``; those a template can reach
    (zero-argument ``clear``, ``popitem``, ``copy``) are marked ``alters_data``, so Django
    renders them as empty instead of calling them.
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("The email's context is read-only.")

    _read_only.alters_data = True  # type: ignore[attr-defined]
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = copy = pop = popitem = setdefault = update = _read_only


class FrozenList(tuple):
    """A read-only sequence that prints as the JSON array it holds, like a list."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "[" + ", ".join(map(repr, self)) + "]"

    __str__ = __repr__


class _NotJSON(Exception):
    """Raised deep inside _freeze; each level adds its key to the path on the way out."""

    def __init__(self, value: Any, what: str) -> None:
        self.value, self.what, self.path = value, what, ""


def _freeze(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or isinstance(value, Mapping):
        frozen = {}
        for key, item in value.items():
            try:
                frozen[key if type(key) is str else _key(key)] = _freeze(item)
            except _NotJSON as err:
                err.path = f"[{key!r}]{err.path}"
                raise
        return FrozenDict(frozen)
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_freeze(item))
            except _NotJSON as err:
                err.path = f"[{index}]{err.path}"
                raise
        return FrozenList(items)
    if isinstance(value, str):
        # A str subclass may be SafeString, which would bypass autoescaping.
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, _JSON_COERCIBLE):
        return _ENCODER.default(value)
    raise _NotJSON(value, "value")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    # What json.dumps would turn the key into.
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (int, float)):
        return str(key)
    raise _NotJSON(key, "key")


def freeze_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a read-only copy of a JSON context for rendering.

    The top level is a new ``dict`` (tags such as ``{% cycle ... as x %}`` write to it;
    it is thrown away after the render); everything below it is a :class:`FrozenDict`
    or a :class:`FrozenList`. Raise :class:`~transactional_mail.exceptions.RenderError`
    for values that are not JSON data, so a model instance can never reach a template.
    """
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise RenderError(f"The context must be a mapping, not {type(context).__name__}.")
    try:
        return dict(_freeze(context))
    except _NotJSON as err:
        if err.what == "key":
            raise RenderError(
                f"context{err.path} has a {type(err.value).__name__} key; JSON keys are strings."
            ) from None
        raise RenderError(
            f"context{err.path} is a {type(err.value).__name__}; templates only see JSON "
            "data (dicts, lists, str, int, float, bool, None). Put plain values in the "
            "context."
        ) from None
