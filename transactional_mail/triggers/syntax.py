"""The language of a trigger definition: its keys, events and lookups, and how its strings read.

A string in ``to``, ``when``, ``context``... is a dotted callable when it imports as one,
otherwise an attribute path of the instance; a string with an "@" is an address. The
definitions, their checks and the firing all read strings by these rules.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.utils.module_loading import import_string

from ..headers import addr_spec, address_problem

#: The model events a trigger's ``"on"`` names.
EVENTS = ("created", "updated", "deleted", "changed")

#: Every key a trigger definition may have.
KNOWN_KEYS = frozenset({
    "model", "on", "field", "from_value", "to_value", "signal", "instance_arg", "sender",
    "when", "cancel_when", "template", "to", "context", "language", "from_email",
    "reply_to", "category", "tags", "attachments", "delay", "once", "description",
    "secret_keys", "digest",
})

#: Every key a trigger's ``"digest"`` option may have.
DIGEST_KEYS = frozenset({"window", "key", "first_at_once", "context"})

#: The digest ``"key"`` that groups by recipient only (the default).
DIGEST_BY_RECIPIENT = "recipient"

#: Not given: a definition without ``from_value``/``to_value``, an old value not known.
UNSET = object()

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


def import_or_none(path: str) -> Any:
    """The object a dotted path names, or None when it does not import."""
    if "." not in path:
        return None
    try:
        return import_string(path)
    except ImportError:
        return None


def is_literal_address(value: Any) -> bool:
    """A string with an "@" is an address, never an attribute path or a dotted callable."""
    return isinstance(value, str) and "@" in value


def resolve_sender(sender: Any) -> Any:
    """The sender a signal trigger accepts: a model label, a dotted path, or an object."""
    if not isinstance(sender, str):
        return sender
    if sender.count(".") == 1:
        try:
            return apps.get_model(sender)
        except (LookupError, ValueError):
            pass
    return import_or_none(sender)


_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def email_address_problem(address: Any) -> str:
    """Why ``address`` (from a definition, or a callable's result) is not one email
    address: "empty", or what is wrong with it; "" when it is one."""
    if address is None or (isinstance(address, str) and not address.strip()):
        return "empty"
    if not isinstance(address, str):
        return f"not a string ({type(address).__name__})"
    problem = address_problem(address.strip())
    if problem:
        return problem  # not one line, too long, or several mailboxes in one string
    if not _ADDRESS.match(addr_spec(address) or ""):
        return "not an email address"
    return ""
