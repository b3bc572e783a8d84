"""Digest triggers: events collected into a recipient's window, closed into one email.

A trigger with ``"digest": {"window": "1h"}`` stores each event's context as a
``DigestItem`` of the open ``DigestWindow`` of (trigger, recipient[, key]); the first
event opens the window. ``close_due_windows`` sends one email per due window, its context
``{"items": [...], "count": n}`` plus what the digest's ``context`` callable adds. It
runs from the beat task ``close_digests`` (every ``SWEEP_INTERVAL``) and from a task
published for the window's end when it opens, so a window closes on time, and still
closes after any restart: the rows are the state.

Closing is safe to run twice (two sweeps, a redelivered task): the window row is locked
while it closes, and its email carries the idempotency key ``digest:<window id>``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from celery import shared_task
from django.db import models, transaction
from django.utils import timezone

from .. import api, publishing
from ..conf import get_setting
from ..models import DigestItem, DigestWindow, Email
from ..models.suppression import normalize_address
from ..tasks import broker_producer
from .definitions import Digest, Trigger, all_triggers

logger = logging.getLogger(__name__)

CLOSE_TASK = "transactional_mail.close_digests"

#: The send options of a trigger its digest emails keep (stored on the window as JSON).
_WINDOW_OPTIONS = ("from_email", "reply_to", "tags")


def collect(trigger: Trigger, address: str, context: Mapping[str, Any], *, instance: Any,
            extra: Mapping[str, Any], language: str | None, options: Mapping[str, Any],
            source: models.Model | None) -> Email | None:
    """Add this event to ``address``'s open window of ``trigger`` (opening one if none).

    Returns the email sent at once for a window's first event when the digest says
    ``first_at_once``; None otherwise. The item and the window are written in the
    caller's transaction: a rolled-back save collects nothing.
    """
    digest = trigger.digest
    digest_key = normalize_address(address)
    if digest.key is not None:
        digest_key = f"{digest_key}|{digest.key(instance, **extra)}"[:255]
    now = timezone.now()
    with transaction.atomic():
        window, opened = DigestWindow.objects.join(
            trigger_key=trigger.key, digest_key=digest_key, now=now,
            window_seconds=max(int(digest.window.total_seconds()), 1),
            recipient=address, template_key=trigger.template,
            category=options.get("category") or "", language=language or "",
            options={name: options[name] for name in _WINDOW_OPTIONS if name in options},
        )
        item = DigestItem.objects.create(window=window, context=dict(context), created_at=now)
        email = None
        if opened and digest.first_at_once:
            email = api.send(trigger.template, address,
                             _digest_context(digest, address, [item.context], 1),
                             language=language, source=source, trigger_key=trigger.key,
                             **options)
            item.email = email
            item.save(update_fields=["email"])
    if opened:
        transaction.on_commit(lambda: _close_on_time(window.closes_at))
    return email


def _digest_context(digest: Digest | None, recipient: str, items: list[dict], count: int
                    ) -> dict[str, Any]:
    """What a digest's template sees: the events' contexts and how many there were, with
    what the digest's ``context`` callable adds for the reader (it cannot replace them)."""
    context = {}
    if digest is not None and digest.context is not None:
        # A copy: a callable editing what it was given in place (popping the items it
        # summarised) would change what the email lists.
        extra = digest.context(recipient, copy.deepcopy(items), count)
        if not isinstance(extra, Mapping):
            raise TypeError(f"the digest context callable returned {type(extra).__name__}; "
                            "it must return a dict.")
        context.update(extra)
    context.update(items=items, count=count)
    return context


def close_due_windows(now: datetime | None = None) -> int:
    """Close every window due by ``now`` (one transaction each); return how many sent."""
    now = now or timezone.now()
    due = list(DigestWindow.objects.filter(closed_at__isnull=True, closes_at__lte=now)
               .order_by("closes_at").values_list("pk", flat=True)[:5000])
    return sum(1 for window_id in due if close_window(window_id, now) is not None)


def close_window(window_id: int, now: datetime | None = None) -> Email | None:
    """Close one due window into its digest email; None when it had nothing to send or
    was not (or no longer) due and open."""
    now = now or timezone.now()
    with transaction.atomic():
        # skip_locked: a window being joined (or closed by another sweep) is left for the
        # next run; its closing time has passed, so that run takes it.
        window = (DigestWindow.objects.select_for_update(skip_locked=True)
                  .filter(pk=window_id, closed_at__isnull=True, closes_at__lte=now).first())
        if window is None:
            return None
        pending = window.items.filter(email__isnull=True)
        count = pending.count()
        email = None
        if count:
            limit = get_setting("DIGEST_MAX_ITEMS")
            items = list(pending.values_list("context", flat=True)[:limit])
            email = _send_digest(window, items, count)
            pending.update(email=email)
        window.closed_at, window.email = now, email
        window.save(update_fields=["closed_at", "email"])
    return email


def _send_digest(window: DigestWindow, items: list[dict], count: int) -> Email:
    """The window's email, queued; a failed row saying why when it cannot be (the
    template was deleted, the digest's context callable failed), so the events are not
    lost silently."""
    trigger = all_triggers().get(window.trigger_key)
    try:
        context = _digest_context(trigger.digest if trigger is not None else None,
                                  window.recipient, items, count)
        # No category on the window: the template's, as for any email of the trigger.
        return api.send(window.template_key, window.recipient, context,
                        language=window.language or None, category=window.category or None,
                        trigger_key=window.trigger_key,
                        idempotency_key=f"digest:{window.pk}", **window.options)
    except Exception as err:
        logger.exception("Digest window %s could not queue its email", window.pk)
        return api.record_unsent(
            window.template_key, f"Digest of trigger {window.trigger_key!r} could not queue: "
            f"{type(err).__name__}: {err}", to=[window.recipient],
            trigger_key=window.trigger_key)


def _close_on_time(closes_at: datetime) -> None:
    """Publish a ``close_digests`` task for the window's end, when the wait fits a
    countdown (``MAX_COUNTDOWN``); otherwise, or with the broker down, the beat task
    closes it. Never raises: the window row is the state."""
    countdown = max(0.0, (closes_at - timezone.now()).total_seconds()) + 0.5
    if countdown > get_setting("MAX_COUNTDOWN"):
        return
    try:
        with broker_producer(close_digests.app) as producer:
            publishing.publish(close_digests, (), producer=producer, countdown=countdown,
                               queue=get_setting("QUEUE"))
    except Exception as err:
        logger.warning("Could not publish the digest closing task (%s: %s); the beat task "
                       "%s closes the window.", type(err).__name__, err, CLOSE_TASK)


@shared_task(name=CLOSE_TASK, ignore_result=True)
def close_digests() -> int:
    """Close the digest windows that are due; return how many digests were queued."""
    return close_due_windows()
