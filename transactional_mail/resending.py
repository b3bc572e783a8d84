"""Sending an email again, for the management command and the admin's actions."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .models import Email, EmailStatus
from .tasks import enqueue_delivery

#: Statuses from which an email may be queued again without risking a duplicate the
#: operator did not ask for: it was never accepted by the ESP, or it was lost to it.
RESENDABLE_STATUSES = (EmailStatus.FAILED, EmailStatus.CANCELLED, EmailStatus.SUPPRESSED)

#: Emails on their way: never requeued, even with ``force`` (one in "sending" would go
#: out twice; queued and scheduled ones will go out anyway).
IN_PROGRESS_STATUSES = (EmailStatus.QUEUED, EmailStatus.SCHEDULED, EmailStatus.SENDING)


def skip_reason(status: str, *, force: bool = False, secret_keys: list[str] | None = None) -> str:
    """Why ``resend()`` leaves an email in ``status`` alone; "" when it queues it.

    ``secret_keys``: the email's; one that held secrets is never resent, ``force`` or not.
    """
    if secret_keys:
        return secrets_reason(secret_keys)
    if status in IN_PROGRESS_STATUSES:
        return "already on its way"
    if not force and status not in RESENDABLE_STATUSES:
        return "the ESP accepted it; --force sends it again"
    return ""


def secrets_reason(secret_keys: list[str]) -> str:
    """Why an email that held secrets is not resent: their values are not kept (a reset
    link must not outlive its email in the log), and an old link should not be sent
    again anyway."""
    return (f"it held secrets ({', '.join(secret_keys)}), which are not kept; "
            "issue a new one")


def with_secrets(emails: QuerySet[Email]) -> QuerySet[Email]:
    """The emails of ``emails`` that held secrets: never resent."""
    return emails.exclude(secret_keys=[])


def resend(emails: QuerySet[Email], *, force: bool = False) -> int:
    """Queue ``emails`` for delivery again; return how many were queued.

    Only failed, cancelled and suppressed emails are resent unless ``force`` is given
    (which also resends emails the ESP accepted: the operator's explicit choice). Emails
    still queued, scheduled or sending are never touched, nor are emails that held
    secrets (``secrets_reason``). The
    attempt counter restarts so the retry budget applies afresh; the log keeps the last
    error until the next attempt replaces it.
    """
    return len(resend_ids(emails, force=force))


def resend_ids(emails: QuerySet[Email], *, force: bool = False) -> list[int]:
    """``resend()``, returning the ids of the emails it queued.

    The rows are locked and re-checked in one transaction, so two concurrent calls (an
    operator's double click) queue each email once: the second finds it in ``queued``.
    """
    # A redacted email (RETENTION_DAYS, a forgotten address) has no context to render.
    emails = emails.filter(secret_keys=[], redacted_at__isnull=True)
    if force:
        emails = emails.exclude(status__in=IN_PROGRESS_STATUSES)
    else:
        emails = emails.filter(status__in=RESENDABLE_STATUSES)
    now = timezone.now()
    with transaction.atomic():
        ids = list(emails.select_for_update().values_list("pk", flat=True))
        Email.objects.filter(pk__in=ids).update(
            status=EmailStatus.QUEUED, next_attempt_at=now, attempts=0, claimed_at=None,
            status_changed_at=now,
        )
        transaction.on_commit(lambda: enqueue_delivery(ids))
    return ids
