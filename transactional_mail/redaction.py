"""Secrets in a context: which values they are, and how text is made free of them.

An email queued with ``secret_keys`` (``send(..., secret_keys=["reset_url"])``, a
trigger's ``"secret_keys"``) holds values nobody with access to the send log may read: a
password reset link, a sign-in code. The worker renders them into the message; what is
stored never keeps them longer than delivery needs (see docs/accounts.md):

- the subject, the bodies, the last error and each attempt's error are stored with every
  secret replaced by ``REDACTED``, from the first write on;
- the context snapshot keeps the values while the email may still be rendered (queued,
  scheduled, sending, waiting for a retry), and loses them in the transaction that writes
  a status it will not be rendered from again (sent, failed, cancelled, suppressed).

Pure functions on data: no database, no settings.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from django.utils.encoding import iri_to_uri
from django.utils.html import escape, smart_urlquote

#: What stands where a secret was.
REDACTED = "[redacted]"


def secret_values(context: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """The secret strings of ``context``: every string or number under each key in
    ``keys`` (a nested value's leaves too), longest first, without the marker itself."""
    found: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                collect(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            if text.strip() and text != REDACTED:
                found.append(text)

    for key in keys:
        if isinstance(context, Mapping) and key in context:
            collect(context[key])
    return sorted(set(found), key=len, reverse=True)


def _forms(value: str) -> list[str]:
    """The spellings a value takes in a rendered email: as is, URL-encoded (fully, as a
    query value, and as the renderer normalises a link: ``iri_to_uri``,
    ``smart_urlquote``), and each of those HTML-escaped (also with the numeric quote
    entities premailer and other serialisers write)."""
    encoded = {value, quote(value), quote(value, safe=""), quote_plus(value),
               iri_to_uri(value)}
    with contextlib.suppress(ValueError):
        encoded.add(smart_urlquote(value))
    forms = set()
    for form in encoded:
        escaped = escape(form)
        forms |= {form, escaped, escaped.replace("&#x27;", "&#39;"),
                  escaped.replace("&quot;", "&#34;")}
    return sorted(forms, key=len, reverse=True)


def redact_text(text: str, values: Iterable[str]) -> str:
    """``text`` with every form of every value in ``values`` replaced by ``REDACTED``."""
    values = list(values)
    if not text or not values:
        return text
    forms = sorted({form for value in values for form in _forms(value)}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(form) for form in forms))
    return pattern.sub(REDACTED, text)


def redact_context(context: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """A copy of ``context`` whose secret keys hold ``REDACTED`` (whatever their value),
    and whose other values hold no secret either (a secret may be repeated elsewhere)."""
    keys = [key for key in keys if key in context]
    values = secret_values(context, keys)

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return redact_text(value, values)
        if isinstance(value, Mapping):
            return {name: scrub(item) for name, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [scrub(item) for item in value]
        return value

    return {name: REDACTED if name in keys else scrub(value) for name, value in context.items()}


def redact_url(url: str) -> str:
    """A URL an email with secrets led to (a click), cut to its origin: the path and
    query may be the secret itself (a reset link), and are not kept."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}/{REDACTED}"
    return REDACTED


def redact_urls(value: Any) -> Any:
    """``value`` (a raw webhook event, JSON data) with every URL in it cut to its origin."""
    if isinstance(value, str):
        return re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+",
                      lambda match: redact_url(match[0]), value)
    if isinstance(value, Mapping):
        return {name: redact_urls(item) for name, item in value.items()}
    if isinstance(value, list):
        return [redact_urls(item) for item in value]
    return value
