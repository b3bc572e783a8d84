"""The only receiver of ``anymail.signals.tracking``.

Each webhook event becomes one ``EmailEvent`` row per recipient (a retried webhook is
stored once), moves its email's status forward only, and suppresses the address when the
event says it must not be mailed again: a hard bounce, an address the ESP refuses, a
complaint, an unsubscribe. Opens and clicks are engagement: stored, never a status.

What an event means is read from the raw ESP event wherever Anymail's normalised type
does not tell (Anymail calls a soft bounce ``bounced`` for several ESPs, and an address
the ESP has deactivated ``rejected``): see ``RAW_OUTCOMES``, which the table in
``docs/statuses-and-outbox.md`` mirrors.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from ..metadata import METADATA_ID_KEY
from ..models import Email, EmailEvent, EmailStatus, Suppression, SuppressionReason
from ..models.suppression import normalize_address

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

#: The salt of the key (derived from SECRET_KEY) that hashes an event's recipient.
RECIPIENT_KEY_SALT = "transactional_mail.tracking.recipient_key"

#: Bounds on what one event may store (the webhook body itself is bounded by Django's
#: DATA_UPLOAD_MAX_MEMORY_SIZE). A raw event over RAW_MAX_BYTES is stored as a stub.
RAW_MAX_BYTES = 256 * 1024
TEXT_MAX_CHARS = 10_000
#: Longest address a Suppression can hold (RFC 5321's path limit).
ADDRESS_MAX_CHARS = 254


@dataclass(frozen=True)
class Outcome:
    """What an event does: the status it moves its email to, the suppression it adds."""

    status: str | None
    suppression: str | None
    label: str

    def __str__(self) -> str:
        return self.label


SENT = Outcome(EmailStatus.SENT, None, "sent")
DELIVERED = Outcome(EmailStatus.DELIVERED, None, "delivered")
#: Temporary, or a soft bounce: the address is fine, a later email may get through.
SOFT = Outcome(EmailStatus.DEFERRED, None, "soft")
#: The address is undeliverable, or the ESP refuses to mail it (deactivated, on its
#: suppression list): nothing sent to it again can arrive.
HARD = Outcome(EmailStatus.BOUNCED, SuppressionReason.HARD_BOUNCE, "hard")
#: Not delivered for good, but not the address's fault (content, sender reputation,
#: policy, the ESP gave up or failed): the address stays mailable.
UNDELIVERED = Outcome(EmailStatus.BOUNCED, None, "undelivered")
COMPLAINT = Outcome(EmailStatus.COMPLAINED, SuppressionReason.COMPLAINT, "complaint")
#: The ESP dropped the email because the address complained before.
LISTED_COMPLAINT = Outcome(EmailStatus.BOUNCED, SuppressionReason.COMPLAINT, "listed complaint")
UNSUBSCRIBE = Outcome(None, SuppressionReason.UNSUBSCRIBE, "unsubscribe")
#: The ESP dropped the email because the address unsubscribed before.
LISTED_UNSUBSCRIBE = Outcome(
    EmailStatus.BOUNCED, SuppressionReason.UNSUBSCRIBE, "listed unsubscribe"
)
#: A notice that the ESP put the address on its suppression list (no email status).
ADDRESS_REFUSED = Outcome(None, SuppressionReason.HARD_BOUNCE, "address refused")
ADDRESS_COMPLAINED = Outcome(None, SuppressionReason.COMPLAINT, "address complained")
#: Engagement (opens, clicks), auto-replies and notices: stored, nothing else.
NOTHING = Outcome(None, None, "nothing")

#: What each raw ESP event means, keyed by Anymail's esp_name and by the raw kind that
#: ``raw_kinds()`` reads from the event (most specific first; "Type/*" rows are the
#: fallbacks of their type). Raw kinds not listed fall back to ``ANYMAIL_OUTCOMES``.
RAW_OUTCOMES: dict[str, dict[str, Outcome]] = {
    "Amazon SES": {
        "Send": SENT,
        "Delivery": DELIVERED,
        "DeliveryDelay": SOFT,
        "Bounce/Permanent": HARD,  # General, NoEmail, Suppressed, OnAccountSuppressionList
        "Bounce/Transient": SOFT,  # MailboxFull, MessageTooLarge, ContentRejected...
        "Bounce/Undetermined": UNDELIVERED,
        "Complaint": COMPLAINT,
        "Reject": UNDELIVERED,  # SES found a virus: the message, not the address
        "Rendering Failure": UNDELIVERED,
        "Open": NOTHING,
        "Click": NOTHING,
        "Subscription": NOTHING,
    },
    "Brevo": {
        "request": SENT,
        "delivered": DELIVERED,
        "deferred": SOFT,
        "hard_bounce": HARD,
        "soft_bounce": SOFT,
        "invalid_email": HARD,
        "blocked": HARD,  # Brevo refuses an address on its blocklist
        "spam": COMPLAINT,
        "complaint": COMPLAINT,
        "unsubscribe": UNSUBSCRIBE,
        "error": UNDELIVERED,
    },
    "MailerSend": {
        "sent": SENT,
        "delivered": DELIVERED,
        "hard_bounced": HARD,
        "soft_bounced": SOFT,
        "spam_complaint": COMPLAINT,
        "unsubscribed": UNSUBSCRIBE,
    },
    "Mailgun": {
        "accepted": SENT,
        "delivered": DELIVERED,
        "failed/temporary": SOFT,
        "failed/permanent/bounce": HARD,
        "failed/permanent/suppress-bounce": HARD,  # on Mailgun's bounce list
        "failed/permanent/suppress-complaint": LISTED_COMPLAINT,
        "failed/permanent/suppress-unsubscribe": LISTED_UNSUBSCRIBE,
        "failed/permanent/*": UNDELIVERED,  # generic, old, espblock...: not the address
        "complained": COMPLAINT,
        "unsubscribed": UNSUBSCRIBE,
    },
    "Mailjet": {
        "sent": DELIVERED,
        "bounce/hard": HARD,  # hard_bounce: true
        "bounce/soft": SOFT,  # hard_bounce: false
        "blocked/user unknown": HARD,
        "blocked/mailbox inactive": HARD,
        "blocked/invalid domain": HARD,
        "blocked/no mail host": HARD,
        "blocked/typofix": HARD,
        "blocked/blacklisted": HARD,  # on Mailjet's blocklist
        "blocked/preblocked": HARD,  # on Mailjet's list of known-bad addresses
        "blocked/spam reporter": LISTED_COMPLAINT,
        "blocked/*": UNDELIVERED,  # sender/content/policy blocked, duplicate, quota...
        "spam": COMPLAINT,
        "unsub": UNSUBSCRIBE,
    },
    "Mailtrap": {
        "delivery": DELIVERED,
        "bounce": HARD,
        "soft bounce": SOFT,
        "suspension": SOFT,
        "reject": HARD,  # Mailtrap refuses an address on its suppression list
        "spam": COMPLAINT,
        "unsubscribe": UNSUBSCRIBE,
    },
    "Mandrill": {
        "send": SENT,
        "deferral": SOFT,
        "hard_bounce": HARD,
        "soft_bounce": SOFT,
        # Mandrill's denylist may hold an address for a soft bounce, for a while: the
        # blacklist sync event below says why, a reject does not.
        "reject": UNDELIVERED,
        "spam": COMPLAINT,
        "unsub": UNSUBSCRIBE,
        "blacklist/add/soft-bounce": NOTHING,
        "blacklist/add/*": ADDRESS_REFUSED,
        "blacklist/*": NOTHING,
        "whitelist/*": NOTHING,
    },
    "Postal": {
        "MessageSent": DELIVERED,
        "MessageDelayed": SOFT,
        "MessageDeliveryFailed": HARD,  # HardFail: Postal suppresses the address too
        "MessageHeld": NOTHING,
        "MessageBounced": HARD,  # a bounce message came back; Postal says no more
        "MessageLoaded": NOTHING,
        "MessageLinkClicked": NOTHING,
    },
    "Postmark": {
        "Delivery": DELIVERED,
        "Bounce/HardBounce": HARD,
        "Bounce/BadEmailAddress": HARD,
        "Bounce/ManuallyDeactivated": HARD,
        "Bounce/Inactive": HARD,  # any Type with "Inactive": true: Postmark deactivated it
        "Bounce/SoftBounce": SOFT,
        "Bounce/Transient": SOFT,
        "Bounce/DnsError": SOFT,
        "Bounce/OpenRelayTest": SOFT,
        "Bounce/Blocked": UNDELIVERED,  # an ISP block of the sender or content
        "Bounce/DMARCPolicy": UNDELIVERED,
        "Bounce/SpamNotification": UNDELIVERED,
        "Bounce/VirusNotification": UNDELIVERED,
        "Bounce/Unconfirmed": UNDELIVERED,
        "Bounce/SMTPApiError": UNDELIVERED,
        "Bounce/TemplateRenderingFailed": UNDELIVERED,
        "Bounce/Unknown": UNDELIVERED,
        "Bounce/Unsubscribe": UNSUBSCRIBE,
        "Bounce/*": NOTHING,  # AutoResponder, AddressChange, Subscribe, ChallengeVerification
        "SpamComplaint": COMPLAINT,
        "SubscriptionChange/HardBounce": ADDRESS_REFUSED,
        "SubscriptionChange/SpamComplaint": ADDRESS_COMPLAINED,
        "SubscriptionChange/ManualSuppression": UNSUBSCRIBE,
        "SubscriptionChange/*": NOTHING,  # reactivated ("SuppressSending": false)
        "Open": NOTHING,
        "Click": NOTHING,
    },
    "Resend": {
        "email.sent": SENT,
        "email.delivered": DELIVERED,
        "email.delivery_delayed": SOFT,
        "email.bounced/Permanent": HARD,  # subType Suppressed too: Resend refuses it
        "email.bounced/Transient": SOFT,
        "email.bounced/Undetermined": UNDELIVERED,
        "email.complained": COMPLAINT,
    },
    "SendGrid": {
        "processed": SENT,
        "delivered": DELIVERED,
        "deferred": SOFT,
        "bounce/bounce": HARD,
        "bounce/blocked": SOFT,  # SendGrid: a block of the sender, not the address
        "dropped/Bounced Address": HARD,  # on SendGrid's bounce list
        "dropped/Invalid": HARD,
        "dropped/Spam Reporting Address": LISTED_COMPLAINT,
        "dropped/Unsubscribed Address": LISTED_UNSUBSCRIBE,
        "dropped/*": UNDELIVERED,  # invalid SMTPAPI header, spam content, expired...
        "spamreport": COMPLAINT,
        "unsubscribe": UNSUBSCRIBE,
        "group_unsubscribe": UNSUBSCRIBE,
    },
    "SparkPost": {
        "injection": SENT,
        "delivery": DELIVERED,
        "delay": SOFT,
        # bounce and out_of_band by bounce_class: SparkPost's Hard classes (10 Invalid
        # Recipient, 30 No RCPT) are suppressed, its Soft ones are not, its Block classes
        # (50-54) and Undetermined (1) are the sender's or the content's problem.
        "bounce/10": HARD,
        "bounce/30": HARD,
        "bounce/90": UNSUBSCRIBE,
        "bounce/1": UNDELIVERED,
        "bounce/25": UNDELIVERED,
        "bounce/50": UNDELIVERED,
        "bounce/51": UNDELIVERED,
        "bounce/52": UNDELIVERED,
        "bounce/53": UNDELIVERED,
        "bounce/54": UNDELIVERED,
        "bounce/60": NOTHING,
        "bounce/80": NOTHING,
        "bounce/100": NOTHING,
        "bounce/*": SOFT,  # 20-24, 40, 70
        "policy_rejection/suppressed": HARD,  # "recipient address suppressed" by SparkPost
        "policy_rejection/*": UNDELIVERED,
        "generation_failure": UNDELIVERED,
        "generation_rejection": UNDELIVERED,
        "spam_complaint": COMPLAINT,
        "list_unsubscribe": UNSUBSCRIBE,
        "link_unsubscribe": UNSUBSCRIBE,
    },
    "Unisender Go": {
        "sent": SENT,
        "delivered": DELIVERED,
        "soft_bounced": SOFT,
        "hard_bounced/err_user_unknown": HARD,
        "hard_bounced/err_user_inactive": HARD,
        "hard_bounced/err_mailbox_discarded": HARD,
        "hard_bounced/err_domain_inactive": HARD,
        "hard_bounced/err_blacklisted": HARD,  # on Unisender Go's blocklist
        "hard_bounced/err_unsubscribed": LISTED_UNSUBSCRIBE,
        "hard_bounced/*": UNDELIVERED,  # mailbox full, too large, spam rejected, lost...
        "spam": COMPLAINT,
        "unsubscribed": UNSUBSCRIBE,
    },
}
RAW_OUTCOMES["SendinBlue"] = RAW_OUTCOMES["Brevo"]  # Anymail's old name for Brevo

#: What an event means when its raw kind is not in RAW_OUTCOMES (an ESP Anymail adds
#: later, a raw type an ESP adds later): by Anymail's normalised type. A bounce nobody
#: classified counts as hard, so that no hard bounce is lost.
ANYMAIL_OUTCOMES = {
    "queued": SENT,
    "sent": SENT,
    "deferred": SOFT,
    "delivered": DELIVERED,
    "bounced": HARD,
    "complained": COMPLAINT,
    "unsubscribed": UNSUBSCRIBE,
}
#: Anymail's normalised reject reasons that make a ``rejected`` event hard.
HARD_REJECT_REASONS = {"invalid", "bounced"}

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
        try:
            with transaction.atomic():
                EmailEvent.objects.create(
                    email=email,
                    esp_name=esp_name[:50],
                    event_id=event_id[:255],
                    recipient_key=recipient_key(esp_name, event_id, recipient),
                    event_type=str(event.event_type or "unknown")[:30],
                    timestamp=event.timestamp,
                    recipient=recipient[:320],
                    esp_message_id=str(event.message_id or "")[:255],
                    hard_bounce=outcome.suppression == SuppressionReason.HARD_BOUNCE,
                    reject_reason=str(event.reject_reason or "")[:50],
                    description=_text(event.description),
                    mta_response=_text(event.mta_response),
                    click_url=_text(event.click_url),
                    raw=raw if raw_bytes <= RAW_MAX_BYTES else {"truncated": True,
                                                                "bytes": raw_bytes},
                )
        except IntegrityError:
            logger.debug("Duplicate %s event %s ignored", esp_name, event_id)
            return
        if email is not None:
            _apply_status(email, event, outcome.status)
        if outcome.suppression and _recipient_is_certain(email, event, esp_name):
            _suppress(email, recipient, esp_name, event_id, outcome.suppression)


def classify(event, esp_name: str) -> Outcome:
    """What ``event`` means: its email's new status, and the suppression it adds.

    Looks the raw ESP event up in ``RAW_OUTCOMES``, else falls back on Anymail's
    normalised event type (``ANYMAIL_OUTCOMES``).
    """
    table = RAW_OUTCOMES.get(esp_name, {})
    raw = event.esp_event
    for kind in raw_kinds(esp_name, raw):
        if kind in table:
            return table[kind]
    if event.event_type == "rejected":
        return HARD if event.reject_reason in HARD_REJECT_REASONS else UNDELIVERED
    return ANYMAIL_OUTCOMES.get(event.event_type, NOTHING)


def is_hard_bounce(event, esp_name: str) -> bool:
    """Whether the event says the address is undeliverable or refused by the ESP."""
    return classify(event, esp_name).suppression == SuppressionReason.HARD_BOUNCE


def raw_kinds(esp_name: str, raw) -> list[str]:
    """The raw kinds of an ESP event, most specific first (keys of ``RAW_OUTCOMES``).

    An event read as ``["failed", "permanent", "bounce"]`` has the kinds
    ``failed/permanent/bounce``, ``failed/permanent/*``, ``failed/permanent``,
    ``failed/*`` and ``failed``.
    """
    reader = _RAW_KIND_READERS.get(esp_name)
    if reader is None or not hasattr(raw, "get"):
        return []
    try:
        parts = []
        for part in reader(raw):
            if part is None or part == "" or not isinstance(part, (str, int)):
                break  # a missing level: the kinds stop above it
            parts.append(str(part))
    except (AttributeError, TypeError, KeyError, IndexError, ValueError):
        return []  # a payload of an unexpected shape: Anymail's normalised type decides
    kinds = []
    for n in range(len(parts), 0, -1):
        kinds.append("/".join(parts[:n]))
        if n > 1:
            kinds.append("/".join(parts[: n - 1]) + "/*")
    return kinds


def recipient_key(esp_name: str, event_id: str, recipient: str) -> str:
    """The dedup key of one recipient of one event: an HMAC that does not hold the address.

    Keyed with a key derived from SECRET_KEY and bound to the event, so the column can
    neither be reversed nor used to link one address's events once the address is erased.
    """
    address = normalize_address(recipient) if recipient else ""
    if not address:
        return ""
    value = "\x00".join([esp_name, event_id, address])
    return salted_hmac(RECIPIENT_KEY_SALT, value, algorithm="sha256").hexdigest()


# --- raw kind readers, one per ESP: the parts of a raw kind, most general first ---------


def _get(data, *path):
    """``data[path[0]][path[1]]...``, or None where the payload has another shape."""
    for key in path:
        if not hasattr(data, "get"):
            return None
        data = data.get(key)
    return data


def _amazon_ses(raw) -> list:
    kind = raw.get("eventType") or raw.get("notificationType")
    if kind == "Bounce":
        return [kind, _get(raw, "bounce", "bounceType")]
    return [kind]


def _brevo(raw) -> list:
    return [raw.get("event")]


def _mailersend(raw) -> list:
    return [_get(raw, "data", "type")]


def _mailgun(raw) -> list:
    data = raw.get("event-data")
    if not hasattr(data, "get"):
        return []  # a legacy (pre-2018) form-encoded event: Anymail's type decides
    if data.get("event") == "failed":
        return ["failed", data.get("severity"), data.get("reason")]
    return [data.get("event")]


def _mailjet(raw) -> list:
    kind = raw.get("event")
    if kind == "bounce":
        return [kind, "hard" if raw.get("hard_bounce") is True else "soft"]
    if kind == "blocked":
        return [kind, raw.get("error")]
    return [kind]


def _mailtrap(raw) -> list:
    return [raw.get("event")]


def _mandrill(raw) -> list:
    kind = raw.get("event") or raw.get("type")
    if kind in ("blacklist", "whitelist"):
        return [kind, raw.get("action"), _get(raw, "reject", "reason")]
    return [kind]


def _postal(raw) -> list:
    return [raw.get("event"), _get(raw, "payload", "status")]


def _postmark(raw) -> list:
    record = raw.get("RecordType")
    if record == "Bounce":
        if raw.get("Inactive") is True:
            return [record, "Inactive"]
        return [record, raw.get("Type")]
    if record == "SubscriptionChange":
        if raw.get("SuppressSending") is False:
            return [record, "reactivated"]
        return [record, raw.get("SuppressionReason")]
    return [record]


def _resend(raw) -> list:
    kind = raw.get("type")
    if kind == "email.bounced":
        return [kind, _get(raw, "data", "bounce", "type")]
    return [kind]


def _sendgrid(raw) -> list:
    kind = raw.get("event")
    if kind == "bounce":
        return [kind, raw.get("type") or "bounce"]
    if kind == "dropped":
        return [kind, raw.get("reason") or raw.get("type")]
    return [kind]


def _sparkpost(raw) -> list:
    msys = raw.get("msys")
    if not hasattr(msys, "values") or len(msys) != 1:
        return []
    event = next(iter(msys.values()))
    kind = event.get("type")
    if kind in ("bounce", "out_of_band"):
        return ["bounce", event.get("bounce_class")]
    if kind == "policy_rejection":
        reason = f"{event.get('raw_reason', '')} {event.get('reason', '')}".lower()
        return [kind, "suppressed" if "suppress" in reason else "other"]
    return [kind]


def _unisender_go(raw) -> list:
    kind = raw.get("status")
    if kind == "hard_bounced":
        return [kind, _get(raw, "delivery_info", "delivery_status")]
    return [kind]


_RAW_KIND_READERS: dict[str, Callable[[dict], list]] = {
    "Amazon SES": _amazon_ses,
    "Brevo": _brevo,
    "SendinBlue": _brevo,
    "MailerSend": _mailersend,
    "Mailgun": _mailgun,
    "Mailjet": _mailjet,
    "Mailtrap": _mailtrap,
    "Mandrill": _mandrill,
    "Postal": _postal,
    "Postmark": _postmark,
    "Resend": _resend,
    "SendGrid": _sendgrid,
    "SparkPost": _sparkpost,
    "Unisender Go": _unisender_go,
}


# --- writing --------------------------------------------------------------------------


def _apply_status(email: Email, event, new_status: str | None) -> None:
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


def _recipient_is_certain(email: Email | None, event, esp_name: str) -> bool:
    """Whether the event's recipient is the address the event is about (see
    ``UNRELIABLE_RECIPIENT_ESPS``)."""
    if esp_name not in UNRELIABLE_RECIPIENT_ESPS:
        return True
    to = _get(event.esp_event, "data", "to")
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
    if not address or len(address) > ADDRESS_MAX_CHARS or "@" not in address:
        if address:
            logger.warning("%s event %s: not suppressing %r, not an address",
                           esp_name, event_id, address[:100])
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
