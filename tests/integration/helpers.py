"""Small helpers for the integration tests: poll the outbox rows the workers update."""

from __future__ import annotations

from tests.workers import wait_for
from transactional_mail.models import Email

#: TRANSACTIONAL_MAIL overrides for the worker subprocesses: short waits everywhere.
WORKER_MAIL_SETTINGS = {
    "MAX_ATTEMPTS": 4,
    "RETRY_BACKOFF": 1,
    "RETRY_BACKOFF_MAX": 2,
    "MAX_COUNTDOWN": 5,
    "SWEEP_INTERVAL": 1,
    "SWEEP_GRACE": 1,
    "SENDING_TIMEOUT": 3,
}
#: Anymail's REQUESTS_TIMEOUT in the workers (seconds); the read-timeout test waits longer.
WORKER_ESP_TIMEOUT = 3


def describe(email_id) -> str:
    email = Email.objects.filter(pk=email_id).first()
    if email is None:
        return f"email {email_id} does not exist"
    return (
        f"email {email.pk}: status={email.status} attempts={email.attempts} "
        f"uncertain={email.outcome_uncertain} next_attempt_at={email.next_attempt_at} "
        f"last_error={email.last_error!r}"
    )


def wait_for_status(email, *statuses: str, timeout: float = 30) -> Email:
    """Poll the row until its status is one of ``statuses``; return the fresh row."""
    email_id = email.pk

    def reached():
        row = Email.objects.filter(pk=email_id).first()
        return row if row is not None and row.status in statuses else None

    return wait_for(
        reached, timeout, message=lambda: f"status in {statuses}; now {describe(email_id)}"
    )


def send_committed(*args, **kwargs) -> Email:
    """``transactional_mail.send()`` in its own transaction: the task is queued at commit."""
    from django.db import transaction

    from transactional_mail import send

    with transaction.atomic():
        return send(*args, **kwargs)


def settle(seconds: float = 1.5) -> None:
    """Leave time for a wrongly re-queued task or retry to run before checking it did not.

    Only ever used before asserting that something did *not* happen; positive outcomes
    are polled with wait_for.
    """
    import time

    time.sleep(seconds)


#: The context every integration test sends with the welcome template.
CONTEXT = {"name": "Ann", "order": {"number": "A-1001"}}
