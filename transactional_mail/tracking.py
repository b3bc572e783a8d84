"""The only receiver of ``anymail.signals.tracking``.

Each webhook event becomes one ``EmailEvent`` row (a retried webhook is stored once), moves
its email's status forward only, and suppresses the address on a hard bounce, a complaint
or an unsubscribe. Opens and clicks are engagement: stored, never a status.
"""

from __future__ import annotations

import hashlib
import json
import logging

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from .delivery import METADATA_ID_KEY
from .models import Email, EmailEvent, EmailStatus, Suppression, SuppressionReason
from .models.suppression import normalize_address

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

#: Raw Postmark bounce types that are permanent; every other one (SoftBounce, Transient,
#: DnsError...) is not, although Anymail normalises SoftBounce to "bounced" too.
POSTMARK_HARD_BOUNCE_TYPES = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}


def handle_tracking_event(sender, event, esp_name: str, **kwargs) -> None:
    """Receiver of ``anymail.signals.tracking``."""
    raw = _jsonable(event.esp_event)
    event_id = str(event.event_id or "") or _raw_hash(raw)
    email = _find_email(event)
    hard = is_hard_bounce(event, esp_name)
    try:
        with transaction.atomic():
            EmailEvent.objects.create(
                email=email,
                esp_name=esp_name,
                event_id=event_id[:255],
                event_type=event.event_type or "unknown",
                timestamp=event.timestamp,
                recipient=(event.recipient or "")[:320],
                esp_message_id=str(event.message_id or "")[:255],
                hard_bounce=hard,
                reject_reason=event.reject_reason or "",
                description=event.description or "",
                mta_response=event.mta_response or "",
                click_url=event.click_url or "",
                raw=raw,
            )
    except IntegrityError:
        logger.debug("Duplicate %s event %s ignored", esp_name, event_id)
        return
    if email is not None:
        _apply_status(email, event, hard)
    _suppress(email, event, esp_name, event_id, hard)


def is_hard_bounce(event, esp_name: str) -> bool:
    """Whether the event says the address is permanently undeliverable.

    Read from the raw ESP event where Anymail's normalised type does not tell hard and
    soft bounces apart.
    """
    if event.event_type == "rejected":
        return event.reject_reason in ("invalid", "bounced")
    if event.event_type != "bounced":
        return False
    raw = event.esp_event if isinstance(event.esp_event, dict) else {}
    esp = esp_name.lower().replace(" ", "")
    if esp == "postmark" and "Type" in raw:
        return raw["Type"] in POSTMARK_HARD_BOUNCE_TYPES
    if esp == "amazonses":
        bounce = raw.get("bounce") or {}
        if "bounceType" in bounce:
            return bounce["bounceType"] == "Permanent"
    if esp == "mailgun":
        severity = (raw.get("event-data") or {}).get("severity")
        if severity:
            return severity == "permanent"
    # SendGrid reports a temporary block as a "bounce" of type "blocked".
    return not (esp == "sendgrid" and raw.get("type") == "blocked")


def _apply_status(email: Email, event, hard: bool) -> None:
    new_status = _status_for(event, hard)
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
            return
    if fields:
        Email.objects.filter(pk=email.pk).update(**fields)


def _status_for(event, hard: bool) -> str | None:
    event_type = event.event_type
    if event_type in ("queued", "sent"):
        return EmailStatus.SENT
    if event_type == "deferred":
        return EmailStatus.DEFERRED
    if event_type == "delivered":
        return EmailStatus.DELIVERED
    if event_type == "bounced":
        return EmailStatus.BOUNCED if hard else EmailStatus.DEFERRED
    if event_type == "rejected":
        return EmailStatus.BOUNCED
    if event_type == "complained":
        return EmailStatus.COMPLAINED
    return None  # opened, clicked, unsubscribed, unknown...: not a delivery status


def _suppress(email: Email | None, event, esp_name: str, event_id: str, hard: bool) -> None:
    if event.event_type == "complained":
        reason, category = SuppressionReason.COMPLAINT, ""
    elif hard:
        reason, category = SuppressionReason.HARD_BOUNCE, ""
    elif event.event_type == "unsubscribed":
        reason, category = SuppressionReason.UNSUBSCRIBE, email.category if email else ""
    else:
        return
    address = normalize_address(event.recipient or "")
    if not address:
        return
    try:
        with transaction.atomic():
            Suppression.objects.get_or_create(
                address=address,
                category=category,
                defaults={"reason": reason, "source": f"{esp_name} event {event_id}"[:255],
                          "email": email},
            )
    except IntegrityError:
        pass  # a concurrent webhook added it


def _find_email(event) -> Email | None:
    metadata = event.metadata or {}
    email_id = metadata.get(METADATA_ID_KEY)
    if email_id is not None:
        try:
            return Email.objects.filter(pk=int(email_id)).first()
        except (TypeError, ValueError):
            pass
    if event.message_id:
        return Email.objects.filter(esp_message_id=str(event.message_id)).first()
    return None


def _jsonable(raw):
    """The raw event as JSON data (some ESPs hand Anymail other objects)."""
    try:
        return json.loads(json.dumps(raw, cls=DjangoJSONEncoder))
    except (TypeError, ValueError):
        return {"repr": repr(raw)}


def _raw_hash(raw) -> str:
    """An event id for ESPs that send none (Postmark delivery events): the raw event's hash."""
    canonical = json.dumps(raw, sort_keys=True, cls=DjangoJSONEncoder)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
