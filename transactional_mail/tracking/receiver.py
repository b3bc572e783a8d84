"""The only receiver of ``anymail.signals.tracking``: events stored, statuses moved, suppressions.

Each webhook event becomes one ``EmailEvent`` row per recipient (a retried webhook is
stored once), moves its email's status forward only, and suppresses the address when the
event says it must not be mailed again: a hard bounce, an address the ESP refuses, a
complaint, an unsubscribe (see ``outcomes``). Opens and clicks are engagement: stored,
never a status.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import stats
from ..metadata import METADATA_ID_KEY
from ..models import Email, EmailEvent, EmailStatus, Suppression, SuppressionReason
from ..models.log import redact_final
from ..models.suppression import normalize_address
from ..privacy import is_forgotten_recipient
from ..redaction import redact_url, redact_urls
from . import streaks
from .outcomes import DELIVERED, SOFT, classify
from .raw_kinds import nested_value
from .recipient_keys import recipient_key

logger = logging.getLogger(__name__)

#: The order in which an email's status may move: a webhook never moves it backwards, so
#: a late "delivered" cannot overwrite "bounced", whatever order the ESP sends them in.
STATUS_RANK = {
    EmailStatus.QUEUED: 0,
    EmailStatus.SCHEDULED: 0,
    EmailStatus.SENDING: 1,
    EmailStatus.FAILED: 1,
    EmailStatus.SUPPRESSED: 1,
    EmailStatus.CANCELLED: 1,
    EmailStatus.SENT: 2,
    EmailStatus.DEFERRED: 3,
    EmailStatus.DELIVERED: 4,
    EmailStatus.BOUNCED: 5,
    EmailStatus.COMPLAINED: 6,
}

#: Bounds on what one event may store (the webhook body itself is bounded by Django's
#: DATA_UPLOAD_MAX_MEMORY_SIZE). A raw event over RAW_MAX_BYTES is stored as a stub.
RAW_MAX_BYTES = 256 * 1024
TEXT_MAX_CHARS = 10_000

#: Longest address a Suppression can hold (RFC 5321's path limit).
ADDRESS_MAX_CHARS = 254

#: ESPs whose event names one recipient even when the email had several (Anymail's
#: Resend webhook reports the first To address for every recipient): their bounces and
#: complaints suppress only for an email with a single recipient.
UNRELIABLE_RECIPIENT_ESPS = {"Resend"}


def handle_tracking_event(sender, event, esp_name: str, **kwargs) -> None:
    """Receiver of ``anymail.signals.tracking``.

    The event row, the status and the suppression are written in one transaction: if any
    of them fails, nothing is stored and the webhook answers 500, so the ESP's retry
    applies the event again instead of being ignored as a duplicate.
    """
    raw, raw_bytes = _jsonable(event.esp_event)
    event_id = str(event.event_id or "") or _raw_hash(raw)
    recipient = str(event.recipient or "")
    outcome = classify(event, esp_name)
    with transaction.atomic():
        email = _find_email(event)
        click_url = _text(event.click_url)
        if email is None or email.secret_keys:
            # A click on an email with secrets may be the reset link itself: neither the
            # event nor its raw payload keeps a URL past its origin. An event matched to
            # no email may be of one with secrets (its ESP id never stored because the
            # send's outcome was uncertain): nothing tells, so it is cut too.
            click_url, raw = redact_url(click_url), redact_urls(raw)
        stored = (recipient, _text(event.description), _text(event.mta_response))
        if is_forgotten_recipient(email, recipient):
            # An event after the address was forgotten (a late open): what happened is
            # kept, nothing that names the person (docs/privacy.md).
            stored, click_url, raw, raw_bytes = ("", "", ""), "", None, 0
        try:
            with transaction.atomic():
                stored = EmailEvent.objects.create(
                    email=email,
                    esp_name=esp_name[:50],
                    event_id=event_id[:255],
                    recipient_key=recipient_key(esp_name, event_id, recipient),
                    event_type=str(event.event_type or "unknown")[:30],
                    timestamp=event.timestamp,
                    recipient=stored[0][:320],
                    esp_message_id=str(event.message_id or "")[:255],
                    hard_bounce=outcome.suppression == SuppressionReason.HARD_BOUNCE,
                    reject_reason=str(event.reject_reason or "")[:50],
                    description=stored[1],
                    mta_response=stored[2],
                    click_url=click_url,
                    raw=raw if raw_bytes <= RAW_MAX_BYTES else {"truncated": True,
                                                                "bytes": raw_bytes},
                )
        except IntegrityError:
            logger.debug("Duplicate %s event %s ignored", esp_name, event_id)
            return
        if email is not None:
            _apply_status(email, event, outcome.status)
            stats.record_event(email, outcome.status, stored.event_type,
                               stored.timestamp or stored.received_at)
        if outcome.suppression and _recipient_is_certain(email, event, esp_name):
            _suppress(email, recipient, esp_name, event_id, outcome.suppression)
        _follow_streak(email, event, esp_name, event_id, recipient, outcome)


def _follow_streak(email: Email | None, event, esp_name: str, event_id: str,
                   recipient: str, outcome) -> None:
    """Count a soft bounce towards the address's streak; end it on a delivery."""
    address = normalize_address(recipient)
    if not _is_address(address):
        return
    if outcome is DELIVERED:
        streaks.record_delivery(address)
    elif (outcome is SOFT and event.event_type == "bounced"
          and _recipient_is_certain(email, event, esp_name)):
        streaks.record_soft_bounce(address, email, f"{esp_name} event {event_id}")


def _apply_status(email: Email, event, new_status: str | None) -> None:
    """Move ``email`` to ``new_status`` if it is further on; store the ESP's message id
    of an email whose send outcome was uncertain."""
    fields = {}
    if event.message_id and not email.esp_message_id:
        # Reconciles an email whose send outcome was uncertain.
        fields["esp_message_id"] = str(event.message_id)[:255]
    if new_status is not None:
        lower = [status for status, rank in STATUS_RANK.items()
                 if rank < STATUS_RANK[new_status]]
        moved = Email.objects.filter(pk=email.pk, status__in=lower).update(
            status=new_status, status_changed_at=timezone.now(), **fields
        )
        if moved:
            # Every status a webhook writes is one the worker never claims again (an
            # email waiting for a retry the ESP took after all): its secrets go in this
            # transaction, as with any final status.
            redact_final(Email.objects.filter(pk=email.pk))
            return
    if fields:
        Email.objects.filter(pk=email.pk).update(**fields)


def _recipient_is_certain(email: Email | None, event, esp_name: str) -> bool:
    """Whether the event's recipient is the address the event is about (see
    ``UNRELIABLE_RECIPIENT_ESPS``)."""
    if esp_name not in UNRELIABLE_RECIPIENT_ESPS:
        return True
    to = nested_value(event.esp_event, "data", "to")
    several = (isinstance(to, list) and len(to) > 1) or (
        email is not None and len({normalize_address(a) for a in email.recipients}) > 1
    )
    if several:
        logger.warning(
            "%s event %s for an email with several recipients names none of them: "
            "not suppressing %s", esp_name, event.event_id, event.recipient,
        )
    return not several


def _suppress(email: Email | None, recipient: str, esp_name: str, event_id: str,
              reason: str) -> None:
    category = email.category if email and reason == SuppressionReason.UNSUBSCRIBE else ""
    address = normalize_address(recipient)
    if not _is_address(address):
        if address:
            logger.warning("%s event %s: not suppressing %r, not an address",
                           esp_name, event_id, address[:100])
        return
    try:
        with transaction.atomic():
            _suppression, created = Suppression.objects.get_or_create(
                address=address,
                category=category,
                defaults={"reason": reason, "source": f"{esp_name} event {event_id}"[:255],
                          "email": email},
            )
            if created and email is not None and reason == SuppressionReason.UNSUBSCRIBE:
                stats.record_unsubscribe(email)
    except IntegrityError:
        pass  # a concurrent webhook added it


def _is_address(address: str) -> bool:
    """Whether a normalised recipient can be a suppression's (or a streak's) address."""
    return bool(address) and len(address) <= ADDRESS_MAX_CHARS and "@" in address


def _find_email(event) -> Email | None:
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    email_id = metadata.get(METADATA_ID_KEY)
    if email_id is not None:
        try:
            pk = int(email_id)
        except (TypeError, ValueError):
            pk = None
        if pk is not None and 0 < pk < 2**63:
            email = Email.objects.filter(pk=pk).first()
            if email is not None:
                return email
    if event.message_id:
        return Email.objects.filter(esp_message_id=str(event.message_id)[:255]).first()
    return None


def _jsonable(raw) -> tuple[Any, int]:
    """The raw event as JSON data (some ESPs hand Anymail other objects), and its size in
    bytes as JSON: one over ``RAW_MAX_BYTES`` is stored as a stub."""
    try:
        text = json.dumps(raw, cls=DjangoJSONEncoder)
    except (TypeError, ValueError, RecursionError):
        fallback = {"repr": repr(raw)[:TEXT_MAX_CHARS]}
        return fallback, len(json.dumps(fallback).encode("utf-8"))
    return json.loads(text), len(text.encode("utf-8"))


def _text(value) -> str:
    return str(value or "")[:TEXT_MAX_CHARS]


def _raw_hash(raw) -> str:
    """An event id for ESPs that send none (Postmark delivery events): the raw event's hash."""
    canonical = json.dumps(raw, sort_keys=True, cls=DjangoJSONEncoder)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
