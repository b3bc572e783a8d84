"""The only module that sends: claim an Email, render it, hand it to the email backend.

``deliver_batch(email_ids, limit)`` is safe to run any number of times, by any number of
workers: the claim is a conditional UPDATE (``queued``/``scheduled`` -> ``sending``), only
the worker whose UPDATE changed a row sends it, and it writes each result only while it
still holds that claim (see :mod:`transactional_mail.claims`).

A batch pays once for what its emails share: the claim, the suppressions of all its
recipients (one query), the published revision of each template key, and one open backend
connection (one HTTP session for Anymail). Template and layout revisions are immutable,
so each worker process keeps them by id. Each result is still written (and committed) as
soon as its email is sent, so a worker killed mid-batch leaves at most the email it was
sending in doubt.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from django.core.mail import get_connection
from django.db import router, transaction
from django.db.models import F
from django.utils import timezone

from . import claims, pacing, results, send_checks, signals, stats, subscriptions
from .categories import Category, get_category
from .conf import email_backend, get_setting
from .exceptions import InvalidEmailOption, RenderError
from .failures import Failure, classify_error, describe
from .metadata import (
    METADATA_CATEGORY_KEY,
    METADATA_ID_KEY,
    METADATA_TEMPLATE_KEY,
    METADATA_TRIGGER_KEY,
)
from .models import (
    AttemptOutcome,
    Email,
    EmailAttempt,
    EmailStatus,
    EmailTemplate,
    LayoutRevision,
    Suppression,
    SuppressionReason,
    TemplateRevision,
)
from .models.attempts import ERROR_MAX_LENGTH
from .models.log import CLAIMABLE_STATUSES, redact_final
from .models.suppression import address_keys, normalize_address
from .redaction import redact_context, redact_text
from .rendering import RenderedEmail, render_email
from .rendering.secret_use import parts_problems
from .retries import attempts_exhausted, retry_delay
from .subject_variants import choose_variant, with_subject

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What one call of ``deliver`` did, for the task to act on."""

    status: str | None  # the email's status afterwards; None when it was not claimed
    retry_in: float | None = None  # seconds until the next attempt, when one is due


def deliver(email_id: int) -> Outcome:
    """Claim, render and send this one email; record the result on its row.

    Not claimed (``Outcome(status=None)``): another worker has it, it was already sent or
    cancelled, or it is not due yet.
    """
    return deliver_batch(email_id, 1).get(email_id, Outcome(status=None))


def deliver_batch(email_ids: int | list[int] | None, limit: int) -> dict[int, Outcome]:
    """Claim ``email_ids`` (a task's own) and other due emails, up to ``limit`` in all (or
    as many as ``email_ids``); send each; return the outcomes.

    The outcomes are keyed by email id, for the emails this call claimed.
    """
    with claims.claim(email_ids, limit) as claim:
        if not claim.email_ids:
            return {}
        batch = _Batch(claim)
        try:
            return {email.pk: _deliver_claimed(email, batch) for email in batch.emails()}
        finally:
            batch.close()


class _Batch:
    """What the emails of one claim share: suppressions, revisions, categories, backend
    connections (one per distinct connection the categories ask for)."""

    def __init__(self, claim: claims.Claim) -> None:
        self.claim = claim
        self._connections: dict[tuple[str, str], object] = {}
        self._categories: dict[str, Category] = {}
        self._published_revisions: dict[tuple[str, str], tuple[int, int | None] | None] = {}
        self._suppressions: dict[str, list[Suppression]] = {}

    def emails(self) -> list[Email]:
        """The claimed rows, in claim order (a task's own email first)."""
        rows = {email.pk: email for email in self.claim.rows()}
        emails = [rows[pk] for pk in self.claim.email_ids if pk in rows]
        recipients = [address for email in emails for address in email.recipients]
        categories = {email.category for email in emails}
        for suppression in Suppression.objects.blocking(recipients, *categories):
            self._suppressions.setdefault(suppression.address, []).append(suppression)
        for email in emails:
            _attach_revisions(email)
        return emails

    def category(self, key: str) -> Category:
        if key not in self._categories:
            self._categories[key] = get_category(key)
        return self._categories[key]

    def suppressions(self, email: Email) -> list[Suppression]:
        """The suppressions that stop ``email`` (its category's, and every category's);
        an unsubscribe never stops essential mail."""
        essential = self.category(email.category).essential
        return [
            suppression
            for address in {normalize_address(address) for address in email.recipients}
            for key in address_keys(address)  # the address, or its hash once forgotten
            for suppression in self._suppressions.get(key, ())
            if suppression.category in ("", email.category)
            and not (essential and suppression.reason == SuppressionReason.UNSUBSCRIBE)
        ]

    def published_revisions(self, key: str, language: str) -> tuple[int, int | None] | None:
        if (key, language) not in self._published_revisions:
            self._published_revisions[key, language] = (
                EmailTemplate.objects.published_revisions(key, language)
            )
        return self._published_revisions[key, language]

    def connection(self, category: Category):
        """The batch's open backend connection for ``category``'s mail (one HTTP session
        or SMTP connection per distinct backend and options)."""
        backend, options = category.connection_arguments(email_backend())
        key = (backend, repr(sorted(options.items())))
        if key not in self._connections:
            connection = get_connection(backend, **options)
            connection.open()
            self._connections[key] = connection
        return self._connections[key]

    def close(self) -> None:
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            try:
                connection.close()
            except Exception:  # a broken connection may fail to close; it is dropped anyway
                logger.debug("Closing the email backend connection failed", exc_info=True)


# Revisions are immutable: each worker process keeps the ones it used, by id.
_revisions: OrderedDict[tuple[type, int], object] = OrderedDict()
_revisions_lock = threading.Lock()


def _revision(model: type, pk: int | None):
    if pk is None:
        return None
    key = (model, pk)
    with _revisions_lock:
        revision = _revisions.get(key)
        if revision is not None:
            _revisions.move_to_end(key)
            return revision
    revision = model.objects.get(pk=pk)
    size = max(get_setting("INLINE_CACHE_SIZE") or 0, 1) * 2
    with _revisions_lock:
        _revisions[key] = revision
        while len(_revisions) > size:
            _revisions.popitem(last=False)
    return revision


def clear_revision_cache() -> None:
    """Forget this process's cached revisions (for tests)."""
    with _revisions_lock:
        _revisions.clear()


def _attach_revisions(email: Email) -> None:
    """Give ``email`` its revisions from the process cache (no query when cached)."""
    if email.template_revision_id is not None:
        email.template_revision = _revision(TemplateRevision, email.template_revision_id)
    if email.layout_revision_id is not None:
        email.layout_revision = _revision(LayoutRevision, email.layout_revision_id)


def _deliver_claimed(email: Email, batch: _Batch) -> Outcome:
    try:
        return _render_and_send(email, batch)
    except Exception as err:
        # Anything unforeseen before the ESP call: fail this attempt (retried, within the
        # attempt budget) rather than leave the row in "sending" for the sweep.
        logger.exception("Email %s: delivery attempt failed unexpectedly", email.pk)
        return _fail(email, Failure.TRANSIENT, err)


def _render_and_send(email: Email, batch: _Batch) -> Outcome:
    if not email.to:
        return _finish(email, EmailStatus.FAILED,
                       error="[permanent] No recipient: the email has no 'to' address.")
    reason = send_checks.cancellation_reason(email)
    if reason:
        return _finish(email, EmailStatus.CANCELLED, error=reason)
    recipients, blocked = _unsuppressed_recipients(email, batch.suppressions(email))
    skipped = "; ".join(f"{address}: {reason}" for address, reason in blocked.items())
    if not recipients["to"]:
        return _finish(email, EmailStatus.SUPPRESSED, error=f"Suppressed ({skipped}).")
    held = pacing.hold(email)
    if held is not None and held.until is not None:
        return _defer(email, held)
    if held is not None:
        return _finish(email, held.status, error=held.reason)

    if email.template_revision_id is None and not _choose_revision(email, batch):
        error = EmailTemplate.objects.not_found_error(email.template_key, email.language)
        return _fail(email, Failure.PERMANENT, error)

    misuse = parts_problems(email.template_revision, email.secret_keys or ())
    if misuse:
        # The template would send a secret elsewhere than to the reader (an image URL...):
        # it never will, whatever the retry, so the email is not sent.
        return _fail(email, Failure.PERMANENT, RenderError(
            f"The template's {misuse[0].part} uses a secret where it could leave the "
            f"email: {misuse[0]}"))

    category = batch.category(email.category)
    links = subscriptions.links(email.pk, category)
    try:
        rendered = render_email(
            with_subject(email.template_revision, email.subject_variant),
            email.layout_revision,
            email.context,
            language=email.language or None,
            unsubscribe_url=links.unsubscribe_url,
            preferences_url=links.preferences_url,
        )
    except Exception as err:
        # A stored revision that does not render now will not render on a retry either.
        logger.exception("Email %s: template revision %s does not render", email.pk,
                         email.template_revision_id)
        return _fail(email, Failure.PERMANENT, RenderError(f"Rendering failed: {err}"))

    stored = _stored_copy(email, rendered)
    email.subject = stored.subject
    email.html_body = stored.html
    email.text_body = stored.text
    try:
        message = build_message(email, rendered, category=category, links=links,
                                **recipients)
    except InvalidEmailOption as err:
        # A stored value send() would refuse (a row written around it): never sendable.
        return _fail(email, Failure.PERMANENT, err)
    note = f"Not sent to suppressed addresses ({skipped})." if skipped else ""
    connection = batch.connection(category)
    if not batch.claim.holds(email):
        # The sweep took this worker for dead and another attempt owns the email now.
        logger.warning("Email %s: claim lost before sending; not sent by this attempt.",
                       email.pk)
        _record_attempt(email, AttemptOutcome.LOST_CLAIM,
                        "Claim lost before sending; not sent by this attempt.")
        return Outcome(status=None)
    try:
        connection.send_messages([message])
    except Exception as err:
        batch.close()  # after an error the next email starts on a fresh connection
        if _esp_accepted(message):
            # The ESP took the email: a later error (a raising post_send receiver, a
            # partial recipient refusal) must not make us send it again.
            logger.warning("Email %s accepted by the ESP, then: %r", email.pk, err)
            return _record_sent(email, message, connection,
                                note=f"{note} Accepted by the ESP, then: {err}".strip())
        kind, retry_after = classify_error(err)
        return _fail(email, kind, err, retry_after=retry_after,
                     detail=_esp_response_text(message, err),
                     status_code=_esp_status_code(message, err))
    return _record_sent(email, message, connection, note=note)


def _stored_copy(email: Email, rendered: RenderedEmail) -> RenderedEmail:
    """What the log keeps of the email: ``rendered`` itself, or, for an email with
    secrets, the email rendered again with each secret replaced by the marker.

    Rendering from the redacted context, rather than searching the sent copy for the
    secrets' spellings, keeps every form a template or the text converter can give them
    (``|upper``, ``|slice``, a number grouped by the locale, whitespace reflowed, CSS
    inlining's escaping) out of the log.
    """
    if not email.secret_keys:
        return rendered
    try:
        return render_email(email.template_revision, email.layout_revision,
                            redact_context(email.context, email.secret_keys),
                            language=email.language or None)
    except Exception:  # the marker where a template expected, say, a number
        logger.warning("Email %s: the copy without secrets does not render; the sent "
                       "copy is kept with its secrets' spellings replaced.", email.pk,
                       exc_info=True)
        secrets = email.secrets()
        return RenderedEmail(*(redact_text(part, secrets) for part in
                               (rendered.subject, rendered.html, rendered.text)))


def _defer(email: Email, held: pacing.Hold) -> Outcome:
    """Give the email back to the outbox until ``held.until`` (the end of quiet hours).

    Not an attempt: nothing was tried, so its counter goes back and no attempt row is
    written; ``last_error`` says why it waits.
    """
    now = timezone.now()
    updated = claims.fenced(email.pk, email.claim_token).filter(
        status=EmailStatus.SENDING).update(
        status=EmailStatus.SCHEDULED, status_changed_at=now, next_attempt_at=held.until,
        attempts=F("attempts") - 1, last_error=held.reason,
    )
    if not updated:
        return Outcome(status=None)  # the claim was lost: the attempt holding it decides
    return Outcome(status=EmailStatus.SCHEDULED,
                   retry_in=max((held.until - now).total_seconds(), 0.0))


def _choose_revision(email: Email, batch: _Batch) -> bool:
    """Pick the template's published revision (and its layout's), and the subject variant
    of an A/B test, for the first attempt.

    Retries and resends keep them, so they render exactly as the first attempt did.
    """
    revisions = batch.published_revisions(email.template_key, email.language)
    if revisions is None:
        return False
    template_revision_id, layout_revision_id = revisions
    email.template_revision = _revision(TemplateRevision, template_revision_id)
    email.layout_revision = _revision(LayoutRevision, layout_revision_id)
    email.subject_variant = choose_variant(email.pk, email.template_revision)
    return True


def build_message(email: Email, rendered, *, to=None, cc=None, bcc=None,
                  category: Category | None = None,
                  links: subscriptions.Links | None = None):
    """The message for ``email``: an AnymailMessage, which any Django backend can send.

    ``category`` (the email's, by default) gives the message its ESP options
    (``esp_extra``) and, unless it is essential, its List-Unsubscribe headers with
    ``links``; every message gets List-Help when set, its tags (its own, else its
    category, else its template key) and metadata naming the email, its template, trigger
    and category.

    Defence in depth for rows stored before ``send()`` checked their header values, or
    written around it: the subject, header values, tags and attachment names are made one
    line (``headers.one_line``), and an address that is not one line or names several
    mailboxes raises ``InvalidEmailOption`` rather than reach the backend.
    """
    from anymail.message import AnymailMessage

    from .headers import check_address, one_line

    def addresses(option, values):
        return [check_address(option, address) for address in values]

    message = AnymailMessage(
        subject=one_line(rendered.subject),
        body=rendered.text,
        from_email=check_address("from_email", email.from_email),
        to=addresses("to", email.to if to is None else to),
        cc=addresses("cc", email.cc if cc is None else cc),
        bcc=addresses("bcc", email.bcc if bcc is None else bcc),
        reply_to=addresses("reply_to", email.reply_to),
        headers={name: one_line(str(value)) for name, value in email.headers.items()},
        tags=[one_line(str(tag)) for tag in email.tags or [email.category or email.template_key]],
        metadata={**email.metadata, **_tracking_metadata(email)},
    )
    if category is None:
        category = get_category(email.category)
    if links is None:
        links = subscriptions.links(email.pk, category)
    # The app's list headers replace a caller's of the same name: only the app's link
    # is signed for this email.
    message.extra_headers.update({
        name: one_line(value)  # settings are not checked at run time: one line, always
        for name, value in subscriptions.list_headers(email.pk, category, links).items()
    })
    if category.esp_extra:
        message.esp_extra = dict(category.esp_extra)
    message.attach_alternative(rendered.html, "text/html")
    for attachment in email.attachments:
        message.attach(
            one_line(attachment["filename"]),
            base64.b64decode(attachment["content"]),
            one_line(attachment["mimetype"]),
        )
    return message


def _tracking_metadata(email: Email) -> dict[str, str]:
    """What every message tells the ESP about its email (blank values left out)."""
    metadata = {METADATA_ID_KEY: str(email.pk), METADATA_TEMPLATE_KEY: email.template_key,
                METADATA_TRIGGER_KEY: email.trigger_key, METADATA_CATEGORY_KEY: email.category}
    return {key: value for key, value in metadata.items() if value}


def _unsuppressed_recipients(
    email: Email, suppressions: list[Suppression]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The email's to/cc/bcc without suppressed addresses, and those addresses' reasons.

    The row keeps every recipient it was queued for: the log says who was skipped and why.
    """
    reasons = {
        suppression.address: suppression.get_reason_display() for suppression in suppressions
    }
    # Keyed by the recipient's address, also where the suppression holds only its hash.
    blocked = {
        address: reasons[key]
        for address in {normalize_address(address) for address in email.recipients}
        for key in reversed(address_keys(address)) if key in reasons
    }
    recipients = {
        field: [address for address in getattr(email, field)
                if normalize_address(address) not in blocked]
        for field in ("to", "cc", "bcc")
    }
    return recipients, blocked


def _esp_response_text(message, err: BaseException) -> str:
    """The ESP's answer when the exception's own text does not already include it."""
    status = getattr(message, "anymail_status", None)
    text = getattr(getattr(status, "esp_response", None), "text", "") or ""
    return "" if text in str(err) else text[:2000]


def _esp_status_code(message, err: BaseException | None = None) -> int | None:
    """The HTTP status of the ESP's answer, when there was one (not for SMTP)."""
    code = getattr(err, "status_code", None)
    if code is None:
        status = getattr(message, "anymail_status", None)
        code = getattr(getattr(status, "esp_response", None), "status_code", None)
    return code if isinstance(code, int) and 0 <= code < 1000 else None


def _esp_accepted(message) -> bool:
    status = getattr(message, "anymail_status", None)
    return bool(status is not None and status.status and status.status & {"sent", "queued"})


def _record_sent(email: Email, message, connection, note: str = "") -> Outcome:
    status = getattr(message, "anymail_status", None)
    message_id = status.message_id if status is not None else None
    if isinstance(message_id, set):
        message_id = ",".join(sorted(str(value) for value in message_id if value))
    email.esp_name = getattr(connection, "esp_name", "") or type(connection).__module__
    email.esp_message_id = str(message_id or "")
    if email.outcome_uncertain and email.last_error and not note:
        # Keep why the flag is set: the ESP may hold an earlier copy of this email.
        note = f"Sent. An earlier attempt's outcome is unknown: {email.last_error}"
    return _finish(email, EmailStatus.SENT, error=note, sent=True,
                   status_code=_esp_status_code(message))


def _fail(email: Email, kind: Failure, err: BaseException, retry_after: float | None = None,
          detail: str = "", status_code: int | None = None) -> Outcome:
    error = describe(err, kind)
    if detail:
        error = f"{error}\nESP response: {detail}"
    if kind is Failure.AMBIGUOUS:
        email.outcome_uncertain = True
    if kind is Failure.PERMANENT or attempts_exhausted(email.attempts):
        if kind is not Failure.PERMANENT:
            error = f"Gave up after {email.attempts} attempts. {error}"
        outcome = _finish(email, EmailStatus.FAILED, error=error,
                          attempt=AttemptOutcome(kind.value), status_code=status_code)
        if outcome.status is not None:
            signals.email_failed.send_robust(sender=Email, email=email, error=err)
        return outcome
    delay = retry_delay(email.attempts, retry_after)
    email.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    outcome = _finish(email, EmailStatus.QUEUED, error=error,
                      attempt=AttemptOutcome(kind.value), status_code=status_code)
    if outcome.status is None:
        return outcome  # the claim was lost: the attempt that holds it now decides
    return Outcome(status=outcome.status, retry_in=delay)


#: The attempt outcome of a result written with no failure kind.
_ATTEMPT_OUTCOMES = {
    EmailStatus.SENT: AttemptOutcome.SENT,
    EmailStatus.CANCELLED: AttemptOutcome.CANCELLED,
    EmailStatus.SUPPRESSED: AttemptOutcome.SUPPRESSED,
    EmailStatus.FAILED: AttemptOutcome.PERMANENT,
}


def _finish(email: Email, status: str, *, error: str = "", sent: bool = False,
            attempt: AttemptOutcome | None = None, status_code: int | None = None) -> Outcome:
    """Write the attempt's result while its claim holds; keep a status a webhook set; add
    the attempt's row (``EmailAttempt``).

    The returned status is None when the claim was lost (the sweep recovered the email and
    another attempt claimed it): nothing is written on the email then, so a late worker
    cannot overwrite the result of the attempt that owns the email now; its attempt row
    is still written, as ``lost_claim`` with what it would have recorded, so the log
    shows why the ESP may hold a copy the email's row does not mention.
    """
    attempt = attempt or _ATTEMPT_OUTCOMES[status]
    now = timezone.now()
    if email.secret_keys:
        # Secrets never reach a stored copy; the context keeps them only while the email
        # may be rendered again (a retry). Redacted here, the result and the redaction
        # are one write.
        error = email.without_secrets(error)
        email.redact_copies(context=status != EmailStatus.QUEUED)
    fields = {
        "subject": email.subject,
        "html_compressed": email.html_compressed,
        "text_compressed": email.text_compressed,
        "template_revision_id": email.template_revision_id,
        "layout_revision_id": email.layout_revision_id,
        "subject_variant": email.subject_variant,
        "last_error": error,
        "outcome_uncertain": email.outcome_uncertain,
        "next_attempt_at": email.next_attempt_at,
    }
    if email.secret_keys:
        fields.update(context=email.context, headers=email.headers, metadata=email.metadata)
    if sent:
        fields.update(esp_name=email.esp_name, esp_message_id=email.esp_message_id, sent_at=now)
        email.sent_at = now
    mine = claims.fenced(email.pk, email.claim_token)
    # A row the sweep recovered (back in queued) that nobody claimed since is still ours:
    # recording this attempt's result keeps the re-queued task from sending it again. So
    # is one the sweep gave up on (failed) while this worker was slow, if it was sent.
    writable = (EmailStatus.SENDING, *CLAIMABLE_STATUSES, *([EmailStatus.FAILED] if sent else []))
    if results.supported() and results.write(
        email, status=status, now=now, fields=fields, writable=writable,
        attempt=_attempt_fields(email, attempt, error, status_code=status_code, now=now,
                                sent=sent),
        count_sent=sent and not email.is_test,
    ):
        # The common case in one statement; otherwise (the claim lost, a webhook first)
        # nothing was written and the general path below decides.
        if sent:
            signals.email_sent.send_robust(sender=Email, email=email)
        return Outcome(status=email.status)
    # The result and its attempt row in one transaction: one commit (one WAL flush on
    # PostgreSQL) for both, not two. savepoint=False: no SAVEPOINT round trips when a
    # caller (a test, an eager task) already holds a transaction.
    with transaction.atomic(using=router.db_for_write(Email), savepoint=False):
        updated = mine.filter(status__in=writable).update(
            status=status, status_changed_at=now, **fields
        )
        if updated:
            email.status = status
        elif mine.update(**fields):
            # A tracking webhook got there first (e.g. delivered); keep its status. It is
            # one the email is never rendered from, so a context kept for a retry goes.
            email.refresh_from_db(fields=["status"])
            if email.secret_keys and status == EmailStatus.QUEUED:
                redact_final(mine)
        else:
            logger.warning("Email %s: claim lost (recovered by the sweep and claimed "
                           "again); this attempt's result (%s) is not recorded.", email.pk,
                           status)
            _record_attempt(email, AttemptOutcome.LOST_CLAIM,
                            f"Claim lost; this attempt's result was: {attempt.label}. {error}",
                            status_code=status_code, now=now, sent=sent)
            return Outcome(status=None)
        _record_attempt(email, attempt, error, status_code=status_code, now=now, sent=sent)
        if sent:
            stats.record_sent(email)
    if sent:
        signals.email_sent.send_robust(sender=Email, email=email)
    return Outcome(status=email.status)


def _record_attempt(email: Email, outcome: AttemptOutcome, error: str, *,
                    status_code: int | None = None, now=None, sent: bool = False) -> None:
    """Add this attempt's row: one INSERT, at most one row per claim (a unique constraint
    on the email and the claim token; the code paths write it once)."""
    EmailAttempt.objects.create(email_id=email.pk, **_attempt_fields(
        email, outcome, error, status_code=status_code, now=now, sent=sent))


def _attempt_fields(email: Email, outcome: AttemptOutcome, error: str, *,
                    status_code: int | None = None, now=None, sent: bool = False) -> dict:
    """The ``EmailAttempt`` fields (but the email) of this attempt of ``email``."""
    return {
        "number": email.attempts,
        "claim_token": email.claim_token,
        "started_at": email.claimed_at,
        "finished_at": now or timezone.now(),
        "outcome": outcome,
        "error": error.strip()[:ERROR_MAX_LENGTH],
        "esp_message_id": email.esp_message_id if sent else "",
        "esp_status_code": status_code,
    }
