"""Firing a trigger for one event: its plan, then its emails queued, or failed rows saying why.

A trigger only queues work: ``fire()`` evaluates the trigger's condition, resolves the
recipients and the context, and calls ``send()``, which writes one row and registers one
``on_commit`` callback. Nothing is rendered or sent on the request path, and nothing
raises into the save or signal that fired it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import timedelta
from typing import Any

from django.db import models

from .. import api
from ..exceptions import TransactionalMailError
from ..models import Trigger as TriggerSwitch
from ..models.suppression import normalize_address
from . import digests
from .definitions import Trigger
from .syntax import email_address_problem

logger = logging.getLogger(__name__)


class TriggerError(TransactionalMailError):
    """A trigger could not queue its email (recorded on the log, never raised at a save)."""


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
    #: A digest trigger's window: the event is collected, not sent on its own.
    digest_window: timedelta | None = None
    options: dict[str, Any] = dataclass_field(default_factory=dict)


def plan(trigger: Trigger, instance: Any, extra: Mapping[str, Any] | None = None) -> Plan:
    """Evaluate ``trigger`` for ``instance`` without writing anything."""
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
    result.digest_window = trigger.digest.window if trigger.digest is not None else None
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
        problem = email_address_problem(address)
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


def fire(trigger: Trigger, instance: Any, *, extra: Mapping[str, Any] | None = None,
         source: Any = _SOURCE) -> list:
    """Queue the trigger's emails for this event: one per recipient (a digest trigger
    collects the event into each recipient's window instead).

    Never raises into the save or signal that fired it: a failing callable, an unknown
    template or a bad recipient is recorded as a failed Email row with the reason, and
    logged, so it is seen in the send log and nothing is lost silently.
    """
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
            if trigger.digest is not None:
                email = digests.collect(trigger, address, result.context, instance=instance,
                                        extra=extra or {}, language=result.language,
                                        options=options, source=source)
                emails += [email] if email is not None else []
                continue
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
    valid: dict[str, str] = {}  # mailbox -> the address as first given
    invalid: dict[str, str] = {}
    for address in addresses:
        problem = email_address_problem(address)
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
    return (f"trigger:{trigger.key}:{source._meta.label_lower}:{source.pk}:"
            f"{normalize_address(address)}")[:255]
