"""Personal data in the send log: erase one address, export one address, redact old rows.

What each keeps and why is in ``docs/privacy.md``. In short: an erasure or a redaction
removes what was said to a person (recipients, bodies, context, errors, raw events) and
keeps what happened (each row's status, category, template and times), so the counts
of the log and its statistics stay true. The events waiting in digest windows and the
frequency-cap counts are personal data too: an erasure deletes them, an export lists
them, and closed windows are pruned after ``DIGEST_RETENTION_DAYS``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
from collections.abc import Iterator
from typing import Any

from django.apps import apps
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Replace
from django.utils import timezone

from .conf import get_setting
from .exceptions import TransactionalMailError
from .models import (
    CapCount,
    DigestItem,
    DigestWindow,
    Email,
    EmailAttempt,
    EmailEvent,
    EmailStatus,
    Suppression,
    SuppressionHistory,
)
from .models.log import CLAIMABLE_STATUSES
from .models.suppression import hash_address, normalize_address
from .signals import address_forgotten

logger = logging.getLogger(__name__)

#: What an erased recipient, note or log entry reads as.
ERASED = "[erased]"

#: Rows one statement of an erasure or a redaction touches.
BATCH_SIZE = 500

#: Statuses of emails still to be rendered (or being rendered): the retention leaves them,
#: since their context is what they will be rendered from.
_UNFINISHED = (*CLAIMABLE_STATUSES, EmailStatus.SENDING)

#: What an erasure or a redaction writes on an Email: no body, no context, no files.
_REDACTED_COPIES = {"html_compressed": b"", "text_compressed": b"", "context": {},
                    "attachments": [], "secret_keys": []}


class InvalidAddress(TransactionalMailError, ValueError):
    """The address given to erase or export is not an email address."""


class AddressBusy(TransactionalMailError, RuntimeError):
    """An email to the address is being sent right now: erasing it would race the
    worker, which writes the rendered bodies back when the ESP answers."""


@dataclasses.dataclass(frozen=True)
class Erasure:
    """What ``forget_address`` did: rows it erased or cancelled, suppressions it kept."""

    emails: int = 0
    email_ids: tuple[int, ...] = ()
    cancelled: int = 0
    attempts: int = 0
    events: int = 0
    suppressions: int = 0
    hashed: bool = False
    digest_windows: int = 0
    digest_items: int = 0
    cap_counts: int = 0


def clean_address(address: str) -> str:
    """``address`` normalised, or ``InvalidAddress`` saying what is wrong with it."""
    normalized = normalize_address(address or "")
    control = any(ord(char) < 32 or ord(char) == 127 for char in address or "")
    if control or "@" not in normalized or any(char.isspace() for char in normalized):
        raise InvalidAddress(f"{address!r} is not an email address: give one address, "
                             "e.g. ann@example.com.")
    return normalized


def _is(entry: Any, address: str) -> bool:
    return isinstance(entry, str) and normalize_address(entry) == address


def email_ids_of(address: str) -> list[int]:
    """The ids of the emails that name ``address`` (normalised) in To, Cc, Bcc or Reply-To.

    A case-insensitive text match on the JSON lists finds the candidates (a scan of the
    table: an erasure is rare, and no index covers every list), then each is confirmed
    entry by entry, so "joann@example.com" is not taken for "ann@example.com".
    """
    # The address as written, and as JSON escapes it where the database stores the text
    # of the JSON (SQLite): "ü" is "\\u00fc" there.
    forms = {address, json.dumps(address)[1:-1]}
    query = Q()
    for form in forms:
        for name in ("to", "cc", "bcc", "reply_to"):
            query |= Q(**{f"{name}__icontains": form})
    candidates = Email.objects.filter(query).only("pk", "to", "cc", "bcc", "reply_to")
    return sorted(email.pk for email in candidates.iterator(chunk_size=2000)
                  if any(_is(entry, address)
                         for entry in [*email.to, *email.cc, *email.bcc, *email.reply_to]))


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    """``ids`` in slices small enough for one ``IN (...)`` on every database."""
    for start in range(0, len(ids), BATCH_SIZE):
        yield ids[start:start + BATCH_SIZE]


def event_ids_of(address: str, email_ids: list[int]) -> list[int]:
    """The ids of the events of ``email_ids`` and of every event whose recipient is
    ``address``."""
    found = set(EmailEvent.objects.filter(recipient__iexact=address)
                .values_list("pk", flat=True))
    for chunk in _chunks(email_ids):
        found.update(EmailEvent.objects.filter(email_id__in=chunk).values_list("pk", flat=True))
    return sorted(found)


def digest_window_ids_of(address: str) -> list[int]:
    """The ids of the digest windows, open or closed, whose recipient is ``address``.

    A window's recipient is the address as its trigger gave it (display name included);
    its digest key starts with the normalised address. Either finds a candidate (a text
    match is case-insensitive for ASCII only on SQLite), and each is confirmed on its
    recipient, as ``email_ids_of`` does, so "joann@example.com" is not "ann@example.com".
    """
    query = (Q(recipient__icontains=address) | Q(digest_key=address)
             | Q(digest_key__startswith=f"{address}|"))
    candidates = DigestWindow.objects.filter(query).only("pk", "recipient")
    return sorted(window.pk for window in candidates.iterator(chunk_size=2000)
                  if _is(window.recipient, address))


def cap_counts_of(address: str) -> QuerySet[CapCount]:
    """The frequency-cap counts of ``address`` (kept under the normalised address)."""
    return CapCount.objects.filter(recipient_key__iexact=address)


def is_forgotten_recipient(email: Email | None, recipient: str) -> bool:
    """Whether an event for ``recipient`` of ``email`` arrives after the address was
    erased from it (a late open or click): the event must not store it again."""
    if email is None or email.redacted_at is None or ERASED not in email.recipients:
        return False
    return not any(_is(entry, normalize_address(recipient)) for entry in email.recipients)


def forget_address(address: str, *, hash_suppressions: bool = False) -> Erasure:
    """Erase everything the log holds about ``address``, in one transaction.

    Emails naming it keep their status, category, template, language, sender, tags,
    ESP message id and times; they lose the address (each entry naming it becomes
    ``[erased]``), the subject, bodies, context, headers, metadata, attachments, errors,
    idempotency key and source id. Emails not yet claimed are cancelled first (they
    would be sent with an empty context); one a worker is sending right now raises
    ``AddressBusy`` and nothing is erased. Events of those emails and every event naming
    the address lose their raw payload, texts and clicked URL; the address itself is
    blanked where it is the event's recipient. Attempts lose their error text.

    A suppression of the address is kept (it is what stops mail to it); with
    ``hash_suppressions`` it, and its history, keep only a keyed hash of the address,
    which still blocks sends. The history of a suppression no longer there (reactivated)
    is reduced to the hash either way. ``address_forgotten`` is sent inside the
    transaction, so a receiver that erases its own data fails or succeeds with the rest.

    The address's digest windows are deleted with their events, open ones too: nothing
    collected for it is sent afterwards. Its frequency-cap counts are deleted.
    """
    address = clean_address(address)
    now = timezone.now()
    with transaction.atomic():
        # Digests first: a sweep closing one of the windows right now is waited for, so
        # the digest email it queues is committed before the emails are looked up below
        # (each statement sees what was committed before it, on PostgreSQL), and cancelled.
        digest_windows, digest_items = _erase_digests(address)
        email_ids = email_ids_of(address)
        cancelled = 0
        for chunk in _chunks(email_ids):
            # The same conditional UPDATE as the admin's cancel: a worker's claim wins.
            cancelled += Email.objects.filter(pk__in=chunk, status__in=CLAIMABLE_STATUSES).update(
                status=EmailStatus.CANCELLED, status_changed_at=now)
        busy = sum(Email.objects.filter(pk__in=chunk, status=EmailStatus.SENDING).count()
                   for chunk in _chunks(email_ids))
        if busy:
            raise AddressBusy(f"{busy} email(s) to this address are being sent right now; "
                              "nothing was erased. Run it again in a minute.")
        for chunk in _chunks(email_ids):
            _erase_emails(chunk, address, now)
        attempts = sum(EmailAttempt.objects.filter(email_id__in=chunk).exclude(error="")
                       .update(error="") for chunk in _chunks(email_ids))
        events = _erase_events(address, email_ids)
        suppressions = _keep_suppressions(address, hash_suppressions)
        _erase_admin_log(address, email_ids, hash_suppressions)
        cap_counts, _ = cap_counts_of(address).delete()
        erasure = Erasure(emails=len(email_ids), email_ids=tuple(email_ids),
                          cancelled=cancelled, attempts=attempts, events=events,
                          suppressions=suppressions, hashed=hash_suppressions,
                          digest_windows=digest_windows, digest_items=digest_items,
                          cap_counts=cap_counts)
        address_forgotten.send(sender=Email, address=address, erasure=erasure)
    logger.info("Forgot an address: %d emails, %d events erased; %d digest windows, %d cap "
                "counts deleted; %d suppressions kept%s.", erasure.emails, erasure.events,
                erasure.digest_windows, erasure.cap_counts, erasure.suppressions,
                " (hashed)" if hash_suppressions else "")
    return erasure


def _erase_digests(address: str) -> tuple[int, int]:
    """Delete the address's digest windows and their items; return how many of each.

    Each window is locked first (waiting for a sweep closing it, or a request adding to
    it, to commit); deleted, an open window is never closed, so its events are not sent.
    """
    windows = items = 0
    for chunk in _chunks(digest_window_ids_of(address)):
        locked = list(DigestWindow.objects.select_for_update().filter(pk__in=chunk)
                      .values_list("pk", flat=True))
        deleted = _delete_windows(locked)
        windows += deleted.get(DigestWindow._meta.label, 0)
        items += deleted.get(DigestItem._meta.label, 0)
    return windows, items


def _delete_windows(window_ids: list[int]) -> dict[str, int]:
    """Delete these digest windows with their items; the rows deleted, per model label."""
    if not window_ids:
        return {}
    return DigestWindow.objects.filter(pk__in=window_ids).delete()[1]


def _erase_emails(email_ids: list[int], address: str, now: datetime.datetime) -> None:
    emails = list(Email.objects.filter(pk__in=email_ids)
                  .only("pk", "to", "cc", "bcc", "reply_to"))
    for email in emails:
        for name in ("to", "cc", "bcc", "reply_to"):
            setattr(email, name, [ERASED if _is(entry, address) else entry
                                  for entry in getattr(email, name)])
    Email.objects.bulk_update(emails, ["to", "cc", "bcc", "reply_to"])
    Email.objects.filter(pk__in=email_ids).update(
        **_REDACTED_COPIES, subject="", headers={}, metadata={}, last_error="",
        idempotency_key=None, source_object_id="", redacted_at=now,
    )


def _erase_events(address: str, email_ids: list[int]) -> int:
    erased = 0
    for chunk in _chunks(event_ids_of(address, email_ids)):
        erased += EmailEvent.objects.filter(pk__in=chunk).update(
            raw=None, raw_pruned=True, description="", mta_response="", click_url="")
        # The recipient is kept where it is someone else (the other recipients of an
        # email the address shared): their data is not this erasure's to remove.
        EmailEvent.objects.filter(pk__in=chunk, recipient__iexact=address).update(recipient="")
    return erased


def _keep_suppressions(address: str, hash_suppressions: bool) -> int:
    """Keep the address's suppressions, as a keyed hash when asked; return how many."""
    suppressions = Suppression.objects.filter(address=address)
    digest = hash_address(address)
    if not hash_suppressions:
        kept = suppressions.count()
        if not kept:
            # No suppression to explain any more (staff reactivated it): its history keeps
            # the audit trail under the hash, not the address.
            SuppressionHistory.objects.filter(address=address).update(
                address=digest, note=Replace("note", Value(address), Value(ERASED)))
        return kept
    kept = 0
    for suppression in suppressions:
        if Suppression.objects.filter(address=digest, category=suppression.category).exists():
            suppression.delete()  # already kept as a hash (forgotten before, then re-added)
        else:
            Suppression.objects.filter(pk=suppression.pk).update(address=digest)
        kept += 1
    SuppressionHistory.objects.filter(address=address).update(
        address=digest, note=Replace("note", Value(address), Value(ERASED)))
    return kept


def _erase_admin_log(address: str, email_ids: list[int], hashed: bool) -> None:
    """Blank what the admin's LogEntry kept of the address: an Email's text names its
    recipients; a Suppression's names its address (only erased when it is hashed: a
    plain suppression still shows the address anyway)."""
    if not apps.is_installed("django.contrib.admin"):
        return
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    for chunk in _chunks(email_ids):
        LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Email),
                                object_id__in=[str(pk) for pk in chunk]).update(
            object_repr=ERASED)
    if hashed:
        LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Suppression),
                                object_repr__icontains=address).update(object_repr=ERASED)


def export_address(address: str) -> dict[str, Any]:
    """Everything the log holds about ``address``, as JSON-ready data: each email naming
    it with its bodies, context, attempts and events, the events naming it that belong to
    no email of it, its suppressions and their history, its digest windows with the
    events they hold (what is waiting to be sent, and what was), and its frequency-cap
    counts."""
    address = clean_address(address)
    email_ids = email_ids_of(address)
    mine = set(email_ids)
    by_email: dict[int | None, list[dict]] = {}
    for chunk in _chunks(event_ids_of(address, email_ids)):
        for event in EmailEvent.objects.filter(pk__in=chunk).order_by("received_at", "pk"):
            by_email.setdefault(event.email_id if event.email_id in mine else None,
                                []).append(_event_data(event))
    attempts: dict[int, list[dict]] = {}
    emails = []
    for chunk in _chunks(email_ids):
        for attempt in EmailAttempt.objects.filter(email_id__in=chunk).order_by("pk"):
            attempts.setdefault(attempt.email_id, []).append(
                {"number": attempt.number, "started_at": attempt.started_at,
                 "finished_at": attempt.finished_at, "outcome": attempt.outcome,
                 "error": attempt.error, "esp_message_id": attempt.esp_message_id})
        emails.extend(Email.objects.filter(pk__in=chunk).order_by("pk"))
    return {
        "address": address,
        "exported_at": timezone.now(),
        "emails": [{**_email_data(email), "attempts": attempts.get(email.pk, []),
                    "events": by_email.get(email.pk, [])} for email in emails],
        "other_events": by_email.get(None, []),
        "suppressions": [
            {"address": s.address, "category": s.category, "reason": s.reason,
             "source": s.source, "created_at": s.created_at}
            for s in Suppression.objects.filter(address__in=[address, hash_address(address)])
        ],
        "suppression_history": [
            {"category": h.category, "change": h.change, "reason": h.suppression_reason,
             "note": h.note, "created_at": h.created_at}
            for h in SuppressionHistory.objects.filter(
                address__in=[address, hash_address(address)]).order_by("created_at", "pk")
        ],
        "digest_windows": _digest_data(digest_window_ids_of(address)),
        "cap_counts": [
            {"category": count.category, "counted_at": count.counted_at,
             "email": count.email_id}
            for count in cap_counts_of(address).order_by("counted_at", "pk")
        ],
    }


def _digest_data(window_ids: list[int]) -> list[dict[str, Any]]:
    """The digest windows ``window_ids``, each with its items (open windows first)."""
    items: dict[int, list[dict]] = {}
    windows = []
    for chunk in _chunks(window_ids):
        for item in DigestItem.objects.filter(window_id__in=chunk).order_by("created_at", "pk"):
            items.setdefault(item.window_id, []).append(
                {"created_at": item.created_at, "context": item.context,
                 "email": item.email_id})
        windows.extend(DigestWindow.objects.filter(pk__in=chunk))
    windows.sort(key=lambda window: (window.closed_at is not None, window.opened_at, window.pk))
    return [
        {"trigger_key": window.trigger_key, "recipient": window.recipient,
         "digest_key": window.digest_key, "template_key": window.template_key,
         "category": window.category, "language": window.language,
         "options": window.options, "opened_at": window.opened_at,
         "closes_at": window.closes_at, "closed_at": window.closed_at,
         "email": window.email_id, "items": items.get(window.pk, [])}
        for window in windows
    ]


def _email_data(email: Email) -> dict[str, Any]:
    return {
        "id": email.pk, "status": email.status, "template_key": email.template_key,
        "trigger_key": email.trigger_key, "category": email.category,
        "language": email.language, "from_email": email.from_email, "to": email.to,
        "cc": email.cc, "bcc": email.bcc, "reply_to": email.reply_to,
        "headers": email.headers, "subject": email.subject, "context": email.context,
        "html_body": email.html_body, "text_body": email.text_body,
        "attachments": email.attachments, "metadata": email.metadata, "tags": email.tags,
        "esp_name": email.esp_name, "esp_message_id": email.esp_message_id,
        "last_error": email.last_error, "created_at": email.created_at,
        "sent_at": email.sent_at, "status_changed_at": email.status_changed_at,
        "redacted_at": email.redacted_at,
    }


def _event_data(event: EmailEvent) -> dict[str, Any]:
    return {
        "esp_name": event.esp_name, "event_id": event.event_id,
        "event_type": event.event_type, "timestamp": event.timestamp,
        "recipient": event.recipient, "description": event.description,
        "mta_response": event.mta_response, "click_url": event.click_url,
        "raw": event.raw, "received_at": event.received_at,
    }


def redact_expired(days: int | None = None, *, batch_size: int = 1000,
                   max_batches: int | None = None) -> int:
    """Remove the bodies, context and attachments of finished emails older than ``days``
    (``RETENTION_DAYS`` by default; None keeps them); return how many rows it redacted.

    Works oldest first, ``batch_size`` rows per UPDATE, each its own transaction, over a
    partial index that holds only unredacted rows: stopped anywhere (``max_batches``, a
    killed worker), the next run carries on where it was, and two runs at once only
    write the same values twice.
    """
    days = get_setting("RETENTION_DAYS") if days is None else days
    if days is None:
        return 0
    cutoff = timezone.now() - datetime.timedelta(days=days)
    pending = (Email.objects.filter(redacted_at__isnull=True, created_at__lt=cutoff)
               .exclude(status__in=_UNFINISHED).order_by("created_at", "pk"))
    redacted = batches = 0
    while max_batches is None or batches < max_batches:
        ids = list(pending.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        redacted += Email.objects.filter(pk__in=ids, redacted_at__isnull=True).update(
            **_REDACTED_COPIES, redacted_at=timezone.now())
        batches += 1
    return redacted


def digest_retention_days() -> int | None:
    """Days a closed digest window is kept: ``DIGEST_RETENTION_DAYS``, or
    ``RETENTION_DAYS`` when that is shorter (a window's items are contexts, kept no longer
    than the emails' own); None when both are None."""
    days = [value for value in (get_setting("DIGEST_RETENTION_DAYS"),
                                get_setting("RETENTION_DAYS")) if value is not None]
    return min(days) if days else None


def prune_digest_windows(days: int | None = None, *, batch_size: int = 1000,
                         max_batches: int | None = None) -> int:
    """Delete the digest windows closed more than ``days`` ago, with their items (the
    events' contexts); return how many windows. ``days`` defaults to
    ``digest_retention_days()``; None keeps them.

    An open window is never deleted, nor a closed one while an email carrying its events
    (the digest, or a first event sent at once) is still queued, scheduled or sending:
    held back by a frequency cap, that email's events are folded into the next window
    from these items. The digest emails themselves stay in the send log, under its rules.

    Oldest first, ``batch_size`` windows per transaction; a window another transaction
    holds is left for the next run. Stopped anywhere, the next run carries on.
    """
    days = digest_retention_days() if days is None else days
    if days is None:
        return 0
    cutoff = timezone.now() - datetime.timedelta(days=days)
    # Each item points at the email that carried it (the digest, or the first event's
    # email sent at once), so the items tell whether an email of the window is to go.
    unfinished = Email.objects.filter(status__in=_UNFINISHED)
    expired = (
        DigestWindow.objects.filter(closed_at__lt=cutoff)
        .exclude(Exists(DigestItem.objects.filter(window_id=OuterRef("pk"),
                                                  email__in=unfinished)))
        .order_by("closed_at", "pk")
    )
    pruned = batches = 0
    while max_batches is None or batches < max_batches:
        ids = list(expired.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        with transaction.atomic():
            # Locked and checked again: an email of the window may have been resent
            # (queued again) since the ids were read.
            locked = list(expired.filter(pk__in=ids).select_for_update(skip_locked=True)
                          .values_list("pk", flat=True))
            deleted = _delete_windows(locked).get(DigestWindow._meta.label, 0)
        pruned += deleted
        batches += 1
        if not deleted:
            break  # every window of the batch is held elsewhere: the next run takes them
    if pruned:
        logger.info("Pruned %d closed digest windows (older than %d days).", pruned, days)
    return pruned
