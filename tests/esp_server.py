"""A local HTTP server that plays Postmark's email API, and Postmark-shaped webhooks.

Anymail's real Postmark backend posts to it (``ANYMAIL["POSTMARK_API_URL"]``), so tests
exercise the real HTTP path: requests, JSON, status codes, timeouts.

By default every ``POST /email`` (and ``/email/batch``) is accepted the way Postmark
accepts it. A test scripts other answers in order::

    esp.add_response(500)                                   # then the default 200
    esp.add_response(429, headers={"Retry-After": "1"})
    esp.add_response(422, {"ErrorCode": 300, "Message": "Invalid 'To' address: 'x@y'."})
    esp.add_response(200, delay=30)                         # answer (too) late

and reads what arrived with ``esp.requests`` / ``esp.requests_for(email_id)``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WEBHOOK_URL = "/anymail/postmark/tracking/"
WEBHOOK_SECRET = "hook:secret"

#: Postmark's answer to an invalid recipient (HTTP 422).
INVALID_TO = {"ErrorCode": 300, "Message": "Invalid 'To' address: '{address}'."}
#: Postmark's answer when every recipient is inactive (HTTP 422).
INACTIVE_RECIPIENT = {
    "ErrorCode": 406,
    "Message": (
        "You tried to send to a recipient that has been marked as inactive.\n"
        "Found inactive addresses: {address}.\n"
        "Inactive recipients are ones that have generated a hard bounce or a spam "
        "complaint. "
    ),
}


@dataclass
class ScriptedResponse:
    """One answer the server gives instead of the default acceptance."""

    status: int = 200
    body: Any = None  # None -> Postmark's success (200) or a generic error body
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (timeouts, killed workers)
    to: str | None = None  # only for a request to this address (None: the next request)


@dataclass
class RecordedRequest:
    """One API call the server received."""

    path: str
    headers: dict[str, str]
    json: Any
    received_at: float
    status: int | None = None  # None while the answer is pending
    response: Any = None
    answered: bool = False  # the answer was written to the socket

    @property
    def messages(self) -> list[dict]:
        return self.json if isinstance(self.json, list) else [self.json]

    @property
    def email_ids(self) -> list[str]:
        return [
            str((message.get("Metadata") or {}).get("transactional_mail_id"))
            for message in self.messages
        ]

    @property
    def accepted(self) -> bool:
        """The ESP accepted the message (a 200 with ErrorCode 0 was sent back)."""
        if self.status != 200:
            return False
        answers = self.response if isinstance(self.response, list) else [self.response]
        return all(answer.get("ErrorCode", 0) == 0 for answer in answers)


class FakePostmark:
    """A threaded HTTP server speaking enough of Postmark's API for Anymail's backend."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._script: deque[ScriptedResponse] = deque()
        self._release = threading.Event()  # set on reset: cut pending delays short
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> FakePostmark:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-postmark", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Forget requests and scripted answers; answer pending delayed requests now."""
        with self._lock:
            self._release.set()
            self._release = threading.Event()
            self._requests.clear()
            self._script.clear()

    # --- scripting --------------------------------------------------------------------

    def add_response(
        self,
        status: int = 200,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        to: str | None = None,
    ) -> None:
        """Queue one answer; unscripted requests get Postmark's 200 acceptance."""
        with self._lock:
            self._script.append(ScriptedResponse(status, body, headers or {}, delay, to))

    def _next_response(self, payload: Any) -> ScriptedResponse | None:
        recipients = _recipients(payload)
        with self._lock:
            for scripted in self._script:
                if scripted.to is None or scripted.to.lower() in recipients:
                    self._script.remove(scripted)
                    return scripted
        return None

    # --- reading ----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, email_id: Any) -> list[RecordedRequest]:
        """Requests carrying this email's ``transactional_mail_id`` metadata."""
        return [request for request in self.requests if str(email_id) in request.email_ids]

    def accepted_for(self, email_id: Any) -> list[RecordedRequest]:
        """Requests for this email that the ESP accepted (each one is a delivery)."""
        return [request for request in self.requests_for(email_id) if request.accepted]

    def accepted_counts(self) -> dict[str, int]:
        """How many times the ESP accepted each ``transactional_mail_id``."""
        counts: dict[str, int] = {}
        for request in self.requests:
            if request.accepted:
                for email_id in request.email_ids:
                    counts[email_id] = counts.get(email_id, 0) + 1
        return counts

    # --- the HTTP side ----------------------------------------------------------------

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw or b"null")
                except ValueError:
                    payload = None
                record = RecordedRequest(
                    path=self.path,
                    headers=dict(self.headers.items()),
                    json=payload,
                    received_at=time.monotonic(),
                )
                with fake._lock:
                    fake._requests.append(record)
                    release = fake._release

                if self.path.rstrip("/") not in ("/email", "/email/batch"):
                    self._answer(record, 404, {"ErrorCode": 404, "Message": "Not found"}, {})
                    return
                if self.headers.get("X-Postmark-Server-Token") != "test-token":
                    body = {"ErrorCode": 10, "Message": "Bad or missing Server API token."}
                    self._answer(record, 401, body, {})
                    return

                scripted = fake._next_response(payload)
                if scripted is None:
                    status, body, headers = 200, None, {}
                else:
                    if scripted.delay:
                        release.wait(scripted.delay)
                    status, body, headers = scripted.status, scripted.body, scripted.headers
                if body is None:
                    body = _accepted(payload) if status == 200 else _error_body(status)
                self._answer(record, status, body, headers)

            def _answer(self, record, status, body, headers):
                data = json.dumps(body).encode()
                record.status, record.response = status, body
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                    record.answered = True
                except OSError:  # the client gave up (timeout) or was killed
                    self.close_connection = True

        return Handler


def _recipients(payload: Any) -> set[str]:
    from email.utils import getaddresses

    messages = payload if isinstance(payload, list) else [payload or {}]
    fields = [m.get(name) or "" for m in messages for name in ("To", "Cc", "Bcc")]
    return {address.lower() for _name, address in getaddresses(fields) if address}


def _submitted_at() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _accepted(payload: Any) -> Any:
    """Postmark's success answer: one object for /email, a list for /email/batch."""

    def one(message: dict) -> dict:
        return {
            "To": message.get("To", ""),
            "SubmittedAt": _submitted_at(),
            "MessageID": str(uuid.uuid4()),
            "ErrorCode": 0,
            "Message": "OK",
        }

    if isinstance(payload, list):
        return [one(message) for message in payload]
    return one(payload or {})


def _error_body(status: int) -> dict:
    if status == 429:
        return {"ErrorCode": 429, "Message": "Rate limit exceeded."}
    if status >= 500:
        return {"ErrorCode": status, "Message": "Internal server error."}
    return {"ErrorCode": status, "Message": f"HTTP {status}."}


def refused(template: dict, address: str) -> dict:
    """Fill in the address of one of Postmark's 422 answers (INVALID_TO, INACTIVE_RECIPIENT)."""
    return {**template, "Message": template["Message"].format(address=address)}


# --- Webhooks ---------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _common(email, message_id: str | None, metadata: dict | None) -> dict:
    meta = {"transactional_mail_id": str(email.pk)} if email is not None else {}
    meta.update(metadata or {})
    return {
        "MessageStream": "outbound",
        "ServerID": 23,
        "MessageID": message_id if message_id is not None else email.esp_message_id,
        "Metadata": meta,
        "Tag": "",
    }


def delivery_event(email, *, recipient=None, message_id=None, metadata=None, at=None) -> dict:
    """Postmark's Delivery webhook (it carries no event ID)."""
    return {
        "RecordType": "Delivery",
        **_common(email, message_id, metadata),
        "Recipient": recipient or email.to[0],
        "DeliveredAt": at or _now(),
        "Details": "smtp;250 2.0.0 OK",
    }


_bounce_ids = iter(range(4_323_372_036_854_775_000, 4_323_372_036_854_999_999))


def bounce_event(
    email,
    *,
    type="HardBounce",
    recipient=None,
    message_id=None,
    metadata=None,
    event_id=None,
    at=None,
) -> dict:
    """Postmark's Bounce webhook: ``type`` HardBounce, SoftBounce, Transient, ..."""
    type_codes = {"HardBounce": 1, "Transient": 2, "SoftBounce": 4096, "SpamComplaint": 512}
    hard = type == "HardBounce"
    return {
        "RecordType": "Bounce",
        "ID": event_id if event_id is not None else next(_bounce_ids),
        "Type": type,
        "TypeCode": type_codes.get(type, 0),
        "Name": "Hard bounce" if hard else "Soft bounce",
        **_common(email, message_id, metadata),
        "Description": (
            "The server was unable to deliver your message (ex: unknown user, mailbox not found)."
            if hard
            else "The server could not temporarily deliver your message (ex: mailbox full)."
        ),
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist."
        if hard
        else "smtp;452 4.2.2 Mailbox full",
        "Email": recipient or email.to[0],
        "From": "shop@example.com",
        "BouncedAt": at or _now(),
        "DumpAvailable": False,
        "Inactive": hard,
        "CanActivate": True,
        "Subject": getattr(email, "subject", ""),
        "Content": "",
    }


def spam_complaint_event(email, *, recipient=None, message_id=None, event_id=None) -> dict:
    """Postmark's SpamComplaint webhook."""
    return {
        "RecordType": "SpamComplaint",
        "ID": event_id if event_id is not None else next(_bounce_ids),
        "Type": "SpamComplaint",
        "TypeCode": 512,
        "Name": "Spam complaint",
        **_common(email, message_id, None),
        "Description": "The subscriber explicitly marked this message as spam.",
        "Details": "Test spam complaint details",
        "Email": recipient or email.to[0],
        "From": "shop@example.com",
        "BouncedAt": _now(),
        "DumpAvailable": False,
        "Inactive": True,
        "CanActivate": False,
        "Subject": getattr(email, "subject", ""),
        "Content": "",
    }


def _engagement(email, record_type: str, recipient, message_id) -> dict:
    return {
        "RecordType": record_type,
        **_common(email, message_id, None),
        "Recipient": recipient or email.to[0],
        "ReceivedAt": _now(),
        "Platform": "WebMail",
        "UserAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
        "Client": {"Name": "Chrome 120", "Company": "Google", "Family": "Chrome"},
        "OS": {"Name": "Linux", "Company": "-", "Family": "Linux"},
        "Geo": {"CountryISOCode": "FR", "Country": "France", "City": "Paris"},
    }


def open_event(email, *, recipient=None, message_id=None, first_open=True) -> dict:
    """Postmark's Open webhook."""
    return {
        **_engagement(email, "Open", recipient, message_id),
        "FirstOpen": first_open,
        "ReadSeconds": 5,
    }


def click_event(email, *, url="https://example.com/orders/1", recipient=None, message_id=None):
    """Postmark's Click webhook."""
    return {
        **_engagement(email, "Click", recipient, message_id),
        "ClickLocation": "HTML",
        "OriginalLink": url,
    }


def post_webhook(client, payload: dict, *, secret: str | None = WEBHOOK_SECRET):
    """POST a Postmark tracking webhook to Anymail's view, with basic auth ``secret``."""
    extra = {}
    if secret is not None:
        token = base64.b64encode(secret.encode()).decode()
        extra["HTTP_AUTHORIZATION"] = f"Basic {token}"
    return client.post(
        WEBHOOK_URL, data=json.dumps(payload), content_type="application/json", **extra
    )
