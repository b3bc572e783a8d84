"""Send-time checks: whether a due email is still wanted, asked just before it is sent.

Delivery calls ``cancellation_reason(email)`` before it renders an email; each registered
check may answer with the reason to cancel it ("" to send it). The triggers register the
re-check of their ``when`` and ``cancel_when`` when the app is ready.

Why a registry rather than the decision's inputs stored on the row: the re-check is
about the world as it is when the email is due — the trigger's definition as settings
hold it then (a trigger removed meanwhile cancels nothing) and the source object as it
is then. A copy of the definition on the row would freeze it at queue time, change what
an old row does, and need a migration. With the registry, delivery keeps to its place in
the data flow (it never imports the trigger package, which imports ``send()``), and the
decision stays where the triggers are defined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Email

#: A check: ``check(email)`` -> why the email must not go out now, or "" to send it.
SendCheck = Callable[["Email"], str]

_checks: dict[str, SendCheck] = {}


def register(name: str, check: SendCheck) -> None:
    """Ask ``check`` about every due email; registering a ``name`` again replaces it."""
    _checks[name] = check


def cancellation_reason(email: Email) -> str:
    """The first reason a registered check gives to cancel ``email``; "" to send it."""
    for check in _checks.values():
        reason = check(email)
        if reason:
            return reason
    return ""
