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
import json
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


#: What stands where an error text held a long run of encoded text (base64).
ENCODED_REMOVED = "[encoded text removed]"

#: A run of base64 long enough to hold a secret (40 characters: 30 bytes), with the lines
#: that continue it when it is cut into MIME lines (a line of base64 alone, as sent or as
#: a JSON body quotes it: not the first word of the text that follows); shorter runs are
#: ids and hashes.
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}"
                         r"(?:(?:\r?\n|\\r\\n|\\n)[A-Za-z0-9+/]+={0,2}(?=[\r\n\\\"'<,;)}\]]|$))*")

#: A quoted-printable soft line break, as sent or as a JSON body quotes it (``=\n``).
_QP_SOFT_BREAK = re.compile(r"=(?:\r?\n|\\r\\n|\\n)")


def _forms(value: str) -> list[str]:
    """The spellings a value takes in a rendered email or in an ESP's answer quoting it:
    as is, URL-encoded (fully, as a query value, and as the renderer normalises a link:
    ``iri_to_uri``, ``smart_urlquote``), and each of those HTML-escaped (also with the
    numeric quote entities premailer and other serialisers write), JSON-escaped (also
    with escaped slashes and ``<>&`` as ``\\u003c``...) and quoted-printable (``=3D``)."""
    encoded = {value, quote(value), quote(value, safe=""), quote_plus(value),
               iri_to_uri(value)}
    with contextlib.suppress(ValueError):
        encoded.add(smart_urlquote(value))
    forms = set()
    for form in encoded:
        escaped = escape(form)
        forms |= {form, escaped, escaped.replace("&#x27;", "&#39;"),
                  escaped.replace("&quot;", "&#34;")}
    for form in list(forms):
        forms |= _json_forms(form)
    forms |= {_quoted_printable(form) for form in encoded}
    return sorted(forms, key=len, reverse=True)


def _json_forms(form: str) -> set[str]:
    """``form`` as JSON encoders write it inside a string: Python's (non-ASCII as
    ``\\uXXXX``), with ``/`` escaped (PHP's), with ``<>&`` escaped too (Go's), and each
    of those escaped once more (JSON quoted in JSON)."""
    dumped = {json.dumps(form)[1:-1], json.dumps(form, ensure_ascii=False)[1:-1]}
    dumped |= {text.replace("/", "\\/") for text in dumped}
    dumped |= {text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
               for text in dumped}
    # An ESP's error body quoted in a JSON answer is JSON inside JSON: escaped twice.
    return dumped | {json.dumps(text)[1:-1] for text in dumped if "\\" in text}


def _quoted_printable(form: str) -> str:
    """``form`` quoted-printable encoded, without line breaks (they are joined first)."""
    return "".join(
        "".join(f"={byte:02X}" for byte in char.encode()) if char == "=" or ord(char) > 126
        else char for char in form)


def redact_text(text: str, values: Iterable[str]) -> str:
    """``text`` with every form of every value in ``values`` replaced by ``REDACTED``."""
    values = list(values)
    if not text or not values:
        return text
    forms = sorted({form for value in values for form in _forms(value)}, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(form) for form in forms))
    return pattern.sub(REDACTED, text)


def redact_error(text: str, values: Iterable[str]) -> str:
    """An error text (an ESP's answer may quote the message) free of ``values``: their
    spellings replaced as ``redact_text`` does once quoted-printable soft line breaks are
    joined, and every long base64 run dropped (``ENCODED_REMOVED``): a secret inside
    base64 takes one of three shifted spellings and may straddle MIME lines, so no
    search finds it reliably, and a run that long is a quoted message, not a reason."""
    values = list(values)
    if not text or not values:
        return text
    return _BASE64_RUN.sub(ENCODED_REMOVED, redact_text(_QP_SOFT_BREAK.sub("", text), values))


def redact_data(value: Any, values: Iterable[str]) -> Any:
    """``value`` (JSON data: headers, metadata, a context) with every string in it free
    of ``values``."""
    values = list(values)
    if isinstance(value, str):
        return redact_text(value, values)
    if isinstance(value, Mapping):
        return {name: redact_data(item, values) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(item, values) for item in value]
    return value


def redact_context(context: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """A copy of ``context`` whose secret keys hold ``REDACTED`` (whatever their value),
    and whose other values hold no secret either (a secret may be repeated elsewhere)."""
    keys = [key for key in keys if key in context]
    values = secret_values(context, keys)
    return {name: REDACTED if name in keys else redact_data(value, values)
            for name, value in context.items()}


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
