"""How a failed send is classified: transient (retry), permanent (give up) or ambiguous.

Ambiguous means the ESP may have accepted the email (a timeout after the request went
out, a 502 or 504 from a proxy in front of it): the attempt is retried, flagged
``outcome_uncertain``, and the email's id travels in the ESP metadata so that a webhook can
reconcile it (docs/statuses-and-outbox.md, "Failures: transient, permanent, ambiguous").
"""

from __future__ import annotations

import enum
import smtplib
import socket
import traceback
from email.utils import parsedate_to_datetime

from django.utils import timezone


class Failure(enum.Enum):
    """How a failed attempt is treated."""

    TRANSIENT = "transient"  # not sent; retry with backoff
    PERMANENT = "permanent"  # will never work; fail now, no retry
    AMBIGUOUS = "ambiguous"  # the ESP may have accepted it; retry, flagged uncertain


def describe(err: BaseException, kind: Failure) -> str:
    """The error as the log shows it: its class of failure, its type and its text (a
    traceback for an unforeseen transient error)."""
    text = str(err).strip() or repr(err)
    if kind is Failure.TRANSIENT and not _is_known(err):
        text = "".join(traceback.format_exception(err)).strip()
    return f"[{kind.value}] {type(err).__name__}: {text}"


def _is_known(err: BaseException) -> bool:
    try:
        from anymail.exceptions import AnymailError
    except ImportError:  # pragma: no cover - anymail is a dependency
        return isinstance(err, (smtplib.SMTPException, OSError))
    return isinstance(err, (AnymailError, smtplib.SMTPException, OSError))


def classify_error(err: BaseException) -> tuple[Failure, float | None]:
    """Classify a send error, with the ESP's Retry-After in seconds when it gave one."""
    from anymail.exceptions import (
        AnymailAPIError,
        AnymailInvalidAddress,
        AnymailRecipientsRefused,
        AnymailSerializationError,
        AnymailUnsupportedFeature,
    )
    from django.core.exceptions import ImproperlyConfigured

    if isinstance(err, (AnymailRecipientsRefused, AnymailInvalidAddress,
                        AnymailSerializationError, AnymailUnsupportedFeature,
                        ImproperlyConfigured)):
        return Failure.PERMANENT, None
    if isinstance(err, AnymailAPIError):
        return _classify_http(err)
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        return Failure.PERMANENT, None
    if isinstance(err, smtplib.SMTPResponseException):
        return (Failure.PERMANENT if 500 <= err.smtp_code < 600 else Failure.TRANSIENT), None
    if isinstance(err, (TimeoutError, socket.timeout)):
        return Failure.AMBIGUOUS, None
    if isinstance(err, ValueError) and "address" in str(err).lower():
        return Failure.PERMANENT, None  # Django's sanitize_address on a malformed address
    # Connection refused, DNS, a lost SMTP connection, or an unexpected bug: retrying
    # cannot duplicate what was never accepted, and gives the operator time to fix it.
    return Failure.TRANSIENT, None


def _classify_http(err) -> tuple[Failure, float | None]:
    import requests

    code = err.status_code
    if code is None:
        if isinstance(err, requests.ConnectTimeout):
            return Failure.TRANSIENT, None
        if isinstance(err, requests.Timeout):
            return Failure.AMBIGUOUS, None  # the request went out; the answer did not come
        if isinstance(err, requests.ConnectionError) and not _connection_refused(err):
            return Failure.AMBIGUOUS, None  # dropped after the request was sent
        return Failure.TRANSIENT, None
    if code == 429:
        return Failure.TRANSIENT, _retry_after(err.response)
    if code in (502, 504):
        return Failure.AMBIGUOUS, _retry_after(err.response)
    if code >= 500 or code == 408:
        return Failure.TRANSIENT, _retry_after(err.response)
    if 400 <= code < 500:
        return Failure.PERMANENT, None
    return Failure.AMBIGUOUS, None  # a 2xx we could not parse: it may well have been sent


def _connection_refused(err: BaseException) -> bool:
    """True when no connection was made (so nothing can have been sent)."""
    seen = set()
    pending = [err]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        name = type(current).__name__
        if isinstance(current, (ConnectionRefusedError, socket.gaierror)) or name in (
            "NewConnectionError", "NameResolutionError", "ConnectTimeoutError"
        ):
            return True
        pending.extend(
            arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)
        )
        for attr in ("__cause__", "__context__", "reason"):
            nested = getattr(current, attr, None)
            if isinstance(nested, BaseException):
                pending.append(nested)
    return False


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - timezone.now()).total_seconds())
    except (TypeError, ValueError):
        return None
