"""Categories: the kinds of mail a site sends, each a sending stream of its own.

``TRANSACTIONAL_MAIL["CATEGORIES"]`` declares them by key (the ``category`` of templates
and triggers). A category is *essential* (password resets, receipts: no unsubscribe)
unless it says ``"essential": False``, and may give its own sender, reply-to, Anymail
``esp_extra`` (Postmark's ``MessageStream``, an SES configuration set) and backend
connection, so essential and non-essential mail never share a reputation. A key that is
not declared (or blank) gets an essential category with no options: mail behaves as it
did before categories existed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .conf import get_setting
from .headers import address_problem

#: The keys a category's definition may hold.
CATEGORY_KEYS = ("essential", "from_email", "reply_to", "esp_extra", "connection",
                 "description")
#: What a category key looks like (the model field is a 50-character SlugField).
_KEY = re.compile(r"^[-a-zA-Z0-9_]{1,50}\Z")


@dataclass(frozen=True)
class Category:
    """One declared kind of mail and how it is sent."""

    key: str
    essential: bool = True
    from_email: str = ""
    reply_to: tuple[str, ...] = ()
    esp_extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: None (the default backend), a backend's dotted path, or a dict of the backend's
    #: options (``get_connection(**options)``), whose ``"backend"`` key may name the path.
    connection: str | Mapping[str, Any] | None = None
    description: str = ""

    def connection_arguments(self, default_backend: str) -> tuple[str, dict[str, Any]]:
        """The backend path and options this category's mail is sent with."""
        if isinstance(self.connection, str):
            return self.connection, {}
        options = dict(self.connection or {})
        return options.pop("backend", None) or default_backend, options


def declared_categories() -> dict[str, Category]:
    """Every declared category, by key (only the well-formed ones: ``check`` reports the
    others)."""
    declared = get_setting("CATEGORIES")
    if not isinstance(declared, Mapping):
        return {}
    return {
        key: _category(key, definition)
        for key, definition in declared.items()
        if isinstance(key, str) and isinstance(definition, Mapping)
        and not definition_problems(key, definition)
    }


def get_category(key: str) -> Category:
    """The category ``key``; an undeclared (or blank) key gives an essential one with no
    options."""
    return declared_categories().get(key or "", Category(key=key or ""))


def is_declared(key: str) -> bool:
    """Whether ``key`` may be used: declared, or anything while none is declared (the
    categories are then free labels, all essential)."""
    declared = get_setting("CATEGORIES")
    return not declared or not isinstance(declared, Mapping) or key in declared


def undeclared_category_problem(key: str) -> str:
    """Why ``key`` may not be used, naming the declared categories; "" when it may."""
    if is_declared(key):
        return ""
    declared = ", ".join(sorted(map(str, get_setting("CATEGORIES"))))
    return (f"The category {key!r} is not declared in TRANSACTIONAL_MAIL['CATEGORIES'] "
            f"(declared: {declared}). Declare it there, or pass one of these.")


def _category(key: str, definition: Mapping[str, Any]) -> Category:
    reply_to = definition.get("reply_to") or ()
    return Category(
        key=key,
        essential=definition.get("essential", True),
        from_email=definition.get("from_email") or "",
        reply_to=(reply_to,) if isinstance(reply_to, str) else tuple(reply_to),
        esp_extra=MappingProxyType(dict(definition.get("esp_extra") or {})),
        connection=definition.get("connection"),
        description=definition.get("description") or "",
    )


def definition_problems(key: Any, definition: Any) -> list[tuple[str, str]]:
    """The mistakes in one category's definition, as (message, hint) pairs."""
    if not (isinstance(key, str) and _KEY.match(key)):
        return [(f"the category key {key!r} must be a slug of at most 50 characters.",
                 "For example 'account', 'orders' or 'reviews'.")]
    if not isinstance(definition, Mapping):
        return [(f"the definition of {key!r} must be a dict.",
                 "For example {'essential': False, 'from_email': 'Shop <hi@example.com>'}.")]
    problems = []
    for name in definition:
        if name not in CATEGORY_KEYS:
            problems.append((f"{key!r} has an unknown key {name!r}.",
                             "Known keys: " + ", ".join(CATEGORY_KEYS) + "."))
    if not isinstance(definition.get("essential", True), bool):
        problems.append((f"{key!r}: 'essential' must be True or False.",
                         "False gives its mail an unsubscribe link; True (the default) "
                         "is for mail the person needs and cannot opt out of."))
    from_email = definition.get("from_email")
    if from_email not in (None, "") and (
        not isinstance(from_email, str) or address_problem(from_email)
    ):
        problems.append((f"{key!r}: 'from_email' {from_email!r} is "
                         f"{_address_problem(from_email)}.",
                         "One mailbox, e.g. 'Shop <hello@news.example.com>'."))
    reply_to = definition.get("reply_to")
    addresses = [reply_to] if isinstance(reply_to, str) else reply_to
    if reply_to is not None and not (
        isinstance(addresses, (list, tuple))
        and all(isinstance(a, str) and not address_problem(a) for a in addresses)
    ):
        problems.append((f"{key!r}: 'reply_to' is {reply_to!r}; it must be a list of "
                         "addresses.", "For example ['help@example.com']."))
    if not isinstance(definition.get("esp_extra") or {}, Mapping):
        problems.append((f"{key!r}: 'esp_extra' must be a dict (Anymail's esp_extra).",
                         "For example {'MessageStream': 'broadcast'} for Postmark."))
    connection = definition.get("connection")
    if connection is not None and not (
        (isinstance(connection, str) and connection)
        or (isinstance(connection, Mapping) and all(isinstance(n, str) for n in connection))
    ):
        problems.append((f"{key!r}: 'connection' must be None, an email backend's dotted "
                         "path, or a dict of its options.",
                         "For example {'api_key': '…'} or "
                         "{'backend': 'anymail.backends.amazon_ses.EmailBackend'}."))
    if not isinstance(definition.get("description") or "", str):
        problems.append((f"{key!r}: 'description' must be a string.",
                         "It is shown on the preferences page."))
    return problems


def _address_problem(value: Any) -> str:
    return address_problem(value) if isinstance(value, str) else "not a string"
