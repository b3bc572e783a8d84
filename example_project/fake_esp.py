#!/usr/bin/env python
"""A tiny local ESP for the demo: it answers like Postmark's email API.

Anymail's real Postmark backend sends to it (``ANYMAIL["POSTMARK_API_URL"]``), so the demo
exercises the real HTTP path. It keeps the messages it accepts in a JSON file, shows them
at ``/`` (an inbox page), and plays the ESP's tracking webhooks back to the site
(Postmark's JSON, with the basic-auth secret of Anymail's ``WEBHOOK_SECRET``).

Standard library only. Run ``python fake_esp.py --help`` for its options.

API (the parts of Postmark's that Anymail's Postmark backend uses):
  POST /email          one message; answers {"To", "SubmittedAt", "MessageID", "ErrorCode": 0, ...}
  POST /email/batch    a list of messages; answers a list of those
Pages and helpers:
  GET  /                       the inbox
  GET  /messages/<id>          one message: headers, HTML (in an iframe) and text
  GET  /messages/<id>/html     the HTML body as received
  GET  /messages.json          every message as JSON (for scripts and tests)
  POST /messages/<id>/events   form field "type": deliver, open, click, bounce,
                               softbounce, complain or unsubscribe: sends that webhook
  POST /reset                  empty the inbox

Behaviour chosen by a word in a recipient's local part (e.g. flaky@example.com):
  flaky       the first attempt of each message gets HTTP 500, the next one is accepted
  refused     HTTP 422, ErrorCode 406 (inactive recipient): Anymail raises
              AnymailRecipientsRefused, a permanent failure
  bounce      accepted, then a HardBounce webhook instead of a Delivery one
  softbounce  accepted, then a SoftBounce webhook
  complain    accepted, then Delivery and SpamComplaint webhooks
  anything else: accepted, then a Delivery webhook
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SERVER_ID = 4242


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(message: str) -> None:
    print(f"fake-esp: {message}", file=sys.stderr, flush=True)


class Store:
    """The accepted messages, kept in memory and in a JSON file when one is given."""

    def __init__(self, path: Path | None):
        self.path = path
        self.lock = threading.Lock()
        self.messages: list[dict] = []
        self.failed_once: set[str] = set()
        if path is not None and path.exists():
            try:
                self.messages = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                log(f"could not read {path}; starting with an empty inbox")

    def _save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.messages, indent=1), "utf-8")
            tmp.replace(self.path)

    def add(self, message: dict) -> None:
        with self.lock:
            self.messages.append(message)
            self._save()

    def get(self, message_id: str) -> dict | None:
        with self.lock:
            return next((m for m in self.messages if m["MessageID"] == message_id), None)

    def add_event(self, message_id: str, event: dict) -> None:
        with self.lock:
            for message in self.messages:
                if message["MessageID"] == message_id:
                    message["events"].append(event)
            self._save()

    def all(self) -> list[dict]:
        with self.lock:
            return json.loads(json.dumps(self.messages))

    def reset(self) -> None:
        with self.lock:
            self.messages = []
            self.failed_once = set()
            self._save()

    def first_failure(self, key: str) -> bool:
        """True the first time ``key`` is seen (the "flaky" behaviour)."""
        with self.lock:
            if key in self.failed_once:
                return False
            self.failed_once.add(key)
            return True


def addresses(field: str | None) -> list[str]:
    """Bare addresses from a Postmark address field ("Ann <a@x.com>, b@y.com")."""
    from email.utils import getaddresses

    return [addr for _name, addr in getaddresses([field or ""]) if addr]


def behaviour(message: dict) -> str:
    for address in addresses(message.get("To")):
        local = address.split("@")[0].lower()
        for word in ("softbounce", "bounce", "refused", "flaky", "complain"):
            if word in local:
                return word
    return "deliver"


class WebhookSender:
    """Posts Postmark-style tracking webhooks to the site, as Postmark would."""

    def __init__(self, url: str | None, secret: str | None, delay: float):
        self.url = url
        self.delay = delay
        # Anymail checks WEBHOOK_SECRET as HTTP basic auth, which Postmark sends when the
        # webhook URL holds credentials (https://user:password@host/...).
        self.auth = "Basic " + base64.b64encode(secret.encode()).decode() if secret else None

    def payload(self, kind: str, message: dict, recipient: str) -> dict:
        common = {
            "MessageID": message["MessageID"],
            "MessageStream": message.get("MessageStream") or "outbound",
            "ServerID": SERVER_ID,
            "Tag": message.get("Tag") or "",
            "Metadata": message.get("Metadata") or {},
        }
        if kind == "deliver":
            return {
                "RecordType": "Delivery",
                **common,
                "Recipient": recipient,
                "DeliveredAt": now_iso(),
                "Details": "smtp;250 2.0.0 OK (fake ESP)",
            }
        if kind in ("bounce", "softbounce", "complain"):
            bounce_type, code, name, description = {
                "bounce": (
                    "HardBounce",
                    1,
                    "Hard bounce",
                    "The server was unable to deliver your message "
                    "(ex: unknown user, mailbox not found).",
                ),
                "softbounce": (
                    "SoftBounce",
                    4096,
                    "Soft bounce/Undeliverable",
                    "Unable to temporarily deliver this email.",
                ),
                "complain": (
                    "SpamComplaint",
                    512,
                    "Spam complaint",
                    "The subscriber explicitly marked this message as spam.",
                ),
            }[kind]
            return {
                "RecordType": "SpamComplaint" if kind == "complain" else "Bounce",
                **common,
                "ID": random.randint(10**9, 10**10),
                "Type": bounce_type,
                "TypeCode": code,
                "Name": name,
                "Description": description,
                "Details": f"fake ESP {name.lower()}",
                "Email": recipient,
                "From": message.get("From", ""),
                "BouncedAt": now_iso(),
                "DumpAvailable": False,
                "Inactive": kind != "softbounce",
                "CanActivate": True,
                "Subject": message.get("Subject", ""),
            }
        if kind == "open":
            return {
                "RecordType": "Open",
                **common,
                "Recipient": recipient,
                "ReceivedAt": now_iso(),
                "FirstOpen": True,
                "Platform": "WebMail",
                "UserAgent": "Mozilla/5.0 (fake ESP)",
                "ReadSeconds": 5,
                "Client": {"Name": "Fake Mail", "Company": "", "Family": ""},
                "OS": {"Name": "", "Company": "", "Family": ""},
                "Geo": {},
            }
        if kind == "click":
            return {
                "RecordType": "Click",
                **common,
                "Recipient": recipient,
                "ReceivedAt": now_iso(),
                "ClickLocation": "HTML",
                "Platform": "WebMail",
                "OriginalLink": "https://example.com/",
                "UserAgent": "Mozilla/5.0 (fake ESP)",
                "Client": {"Name": "Fake Mail", "Company": "", "Family": ""},
                "OS": {"Name": "", "Company": "", "Family": ""},
                "Geo": {},
            }
        if kind == "unsubscribe":
            return {
                "RecordType": "SubscriptionChange",
                **common,
                "Recipient": recipient,
                "ChangedAt": now_iso(),
                "Origin": "Recipient",
                "SuppressSending": True,
                "SuppressionReason": "ManualSuppression",
            }
        raise ValueError(f"unknown event type {kind!r}")

    def send(self, kind: str, message: dict, store: Store) -> str:
        """Post one webhook per To recipient; return a short result for the log."""
        if not self.url:
            return "no webhook URL configured"
        results = []
        for recipient in addresses(message.get("To")):
            body = json.dumps(self.payload(kind, message, recipient)).encode()
            request = urllib.request.Request(
                self.url,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    **({"Authorization": self.auth} if self.auth else {}),
                },
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    result = f"{kind} -> HTTP {response.status}"
            except urllib.error.HTTPError as err:
                result = f"{kind} -> HTTP {err.code}"
            except OSError as err:
                result = f"{kind} -> {err}"
            store.add_event(
                message["MessageID"],
                {"type": kind, "at": now_iso(), "recipient": recipient, "result": result},
            )
            results.append(result)
            log(f"webhook {message['MessageID']} {recipient}: {result}")
        return "; ".join(results)

    def later(self, kinds: list[str], message: dict, store: Store) -> None:
        def run():
            for kind in kinds:
                time.sleep(self.delay)
                self.send(kind, message, store)

        threading.Thread(target=run, daemon=True).start()


PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{title}</title><style>
body {{ font-family: system-ui, sans-serif; margin: 0; background: #f4f4f5; color: #1f2937; }}
header {{ background: #374151; color: #fff; padding: 1rem 2rem; }} header a {{ color: #fff; }}
main {{ max-width: 70rem; margin: 0 auto; padding: 1rem 2rem; }}
table {{ border-collapse: collapse; width: 100%; background: #fff; font-size: .9rem; }}
th, td {{ text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e5e7eb;
  vertical-align: top; }}
form {{ display: inline; }} button {{ font-size: .75rem; }}
iframe {{ width: 100%; height: 36rem; border: 1px solid #d1d5db; background: #fff; }}
pre {{ background: #fff; padding: 1rem; white-space: pre-wrap; }}
small {{ color: #6b7280; }}
</style></head><body><header><strong>Fake ESP</strong> (plays Postmark) ·
<a href="/">inbox</a> · <a href="/messages.json">messages.json</a>{extra}</header>
<main>{body}</main></body></html>"""

EVENT_BUTTONS = ("deliver", "open", "click", "softbounce", "bounce", "complain", "unsubscribe")


def event_forms(message_id: str) -> str:
    return " ".join(
        f'<form method="post" action="/messages/{html.escape(message_id)}/events">'
        f'<input type="hidden" name="type" value="{kind}"><button>{kind}</button></form>'
        for kind in EVENT_BUTTONS
    )


class Handler(BaseHTTPRequestHandler):
    server_version = "FakeESP/1.0"
    store: Store
    webhooks: WebhookSender
    token: str | None
    site_url: str | None

    # -- helpers --------------------------------------------------------------------------
    def log_message(self, format, *args):
        log(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}")

    def reply(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def reply_json(self, status: int, data) -> None:
        self.reply(status, json.dumps(data).encode(), "application/json")

    def reply_page(self, title: str, body: str, status: int = 200) -> None:
        extra = f' · <a href="{html.escape(self.site_url)}">shop</a>' if self.site_url else ""
        page = PAGE.format(title=html.escape(title), body=body, extra=extra)
        self.reply(status, page.encode(), "text/html; charset=utf-8")

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    # -- Postmark API ---------------------------------------------------------------------
    def do_POST(self):
        path = urlsplit(self.path).path.rstrip("/")
        if path in ("/email", "/email/batch"):
            return self.api_send(batch=path == "/email/batch")
        if path == "/reset":
            self.read_body()
            self.store.reset()
            return self.redirect("/")
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "messages" and parts[2] == "events":
            return self.simulate_event(parts[1])
        return self.reply_json(404, {"ErrorCode": 404, "Message": "Not found"})

    def api_send(self, batch: bool) -> None:
        if self.token and self.headers.get("X-Postmark-Server-Token") != self.token:
            self.read_body()
            return self.reply_json(
                401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."}
            )
        try:
            data = json.loads(self.read_body() or b"null")
        except ValueError:
            return self.reply_json(
                400, {"ErrorCode": 402, "Message": "Received invalid JSON input."}
            )
        messages = data if batch else [data]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return self.reply_json(422, {"ErrorCode": 402, "Message": "Invalid message format."})
        results = []
        for message in messages:
            status, result = self.accept(message)
            if not batch and status != 200:
                return self.reply_json(status, result)
            results.append(result)
        return self.reply_json(200, results if batch else results[0])

    def accept(self, message: dict) -> tuple[int, dict]:
        kind = behaviour(message)
        key = str(
            (message.get("Metadata") or {}).get("transactional_mail_id")
            or (message.get("To"), message.get("Subject"))
        )
        if kind == "flaky" and self.store.first_failure(key):
            log(f"500 for {message.get('To')} (flaky: the next attempt is accepted)")
            return 500, {"ErrorCode": 500, "Message": "Internal server error (fake ESP, flaky)."}
        if kind == "refused":
            inactive = ", ".join(a.lower() for a in addresses(message.get("To")))
            return 422, {
                "ErrorCode": 406,
                "Message": "You tried to send to a recipient that has been marked as "
                f"inactive.\nFound inactive addresses: {inactive}.\nInactive recipients are "
                "ones that have generated a hard bounce or a spam complaint. ",
            }
        if not message.get("To") and not message.get("Cc") and not message.get("Bcc"):
            return 422, {"ErrorCode": 300, "Message": "Invalid 'To' address: ''."}
        message_id = str(uuid.uuid4())
        submitted = now_iso()
        stored = {
            "MessageID": message_id,
            "SubmittedAt": submitted,
            **{
                field: message.get(field)
                for field in (
                    "From",
                    "To",
                    "Cc",
                    "Bcc",
                    "ReplyTo",
                    "Subject",
                    "HtmlBody",
                    "TextBody",
                    "Tag",
                    "Metadata",
                    "Headers",
                    "MessageStream",
                    "TrackOpens",
                    "TrackLinks",
                )
            },
            "Attachments": [
                {
                    "Name": a.get("Name"),
                    "ContentType": a.get("ContentType"),
                    "Size": len(base64.b64decode(a.get("Content") or "")),
                }
                for a in message.get("Attachments") or []
            ],
            "events": [],
        }
        self.store.add(stored)
        log(f"accepted {message_id} to {message.get('To')}: {message.get('Subject')!r}")
        follow_up = {
            "bounce": ["bounce"],
            "softbounce": ["softbounce"],
            "complain": ["deliver", "complain"],
        }.get(kind, ["deliver"])
        self.webhooks.later(follow_up, stored, self.store)
        return 200, {
            "To": message.get("To") or "",
            "SubmittedAt": submitted,
            "MessageID": message_id,
            "ErrorCode": 0,
            "Message": "OK",
        }

    def simulate_event(self, message_id: str) -> None:
        form = parse_qs(self.read_body().decode())
        kind = (form.get("type") or ["deliver"])[0]
        message = self.store.get(message_id)
        if message is None:
            return self.reply_page("Not found", "<p>No such message.</p>", 404)
        if kind not in EVENT_BUTTONS:
            return self.reply_page("Bad event", f"<p>Unknown event {html.escape(kind)}.</p>", 400)
        self.webhooks.send(kind, message, self.store)
        return self.redirect(self.headers.get("Referer") or "/")

    def redirect(self, location: str) -> None:
        self.reply(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": location})

    # -- pages ----------------------------------------------------------------------------
    def do_GET(self):
        path = urlsplit(self.path).path.rstrip("/") or "/"
        if path == "/":
            return self.inbox()
        if path == "/messages.json":
            return self.reply_json(200, self.store.all())
        parts = path.strip("/").split("/")
        if parts[0] == "messages" and len(parts) in (2, 3):
            message = self.store.get(parts[1])
            if message is None:
                return self.reply_page("Not found", "<p>No such message.</p>", 404)
            if len(parts) == 3 and parts[2] == "html":
                body = (message.get("HtmlBody") or "").encode()
                return self.reply(
                    200,
                    body,
                    "text/html; charset=utf-8",
                    {"Content-Security-Policy": "script-src 'none'"},
                )
            if len(parts) == 2:
                return self.message_page(message)
        return self.reply_page("Not found", "<p>Not found.</p>", 404)

    def inbox(self) -> None:
        rows = []
        for message in reversed(self.store.all()):
            message_id = html.escape(message["MessageID"])
            events = ", ".join(html.escape(e["type"]) for e in message["events"]) or "—"
            attachments = ", ".join(html.escape(a["Name"] or "") for a in message["Attachments"])
            rows.append(
                f"<tr><td><small>{html.escape(message['SubmittedAt'])}</small></td>"
                f"<td>{html.escape(message.get('To') or '')}</td>"
                f'<td><a href="/messages/{message_id}">{html.escape(message.get("Subject") or "")}'
                f"</a>{'<br><small>📎 ' + attachments + '</small>' if attachments else ''}</td>"
                f"<td><small>{events}</small></td><td>{event_forms(message['MessageID'])}</td></tr>"
            )
        body = (
            "<p>Messages Anymail's Postmark backend sent here. The buttons send that tracking "
            "webhook to the site; watch the email's status change in the shop or the admin.</p>"
            '<form method="post" action="/reset"><button>Empty the inbox</button></form>'
            "<table><tr><th>Received</th><th>To</th><th>Subject</th><th>Webhooks sent</th>"
            "<th>Send a webhook</th></tr>"
            + ("".join(rows) or '<tr><td colspan="5">No message yet.</td></tr>')
            + "</table>"
        )
        self.reply_page("Fake ESP inbox", body)

    def message_page(self, message: dict) -> None:
        message_id = html.escape(message["MessageID"])
        fields = ("From", "To", "Cc", "Bcc", "ReplyTo", "Subject", "Tag", "MessageStream")
        rows = "".join(
            f"<tr><th>{name}</th><td>{html.escape(str(message.get(name) or ''))}</td></tr>"
            for name in fields
        )
        rows += (
            f"<tr><th>Metadata</th><td><code>{html.escape(json.dumps(message.get('Metadata')))}"
            f"</code></td></tr><tr><th>Headers</th><td><code>"
            f"{html.escape(json.dumps(message.get('Headers')))}</code></td></tr>"
            f"<tr><th>Attachments</th><td>{html.escape(json.dumps(message['Attachments']))}"
            f"</td></tr><tr><th>MessageID</th><td>{message_id}</td></tr>"
            f"<tr><th>Webhooks</th><td>{html.escape(json.dumps(message['events']))}</td></tr>"
        )
        body = (
            f"<h2>{html.escape(message.get('Subject') or '')}</h2><table>{rows}</table>"
            f"<p>{event_forms(message['MessageID'])}</p>"
            # sandbox: the email's HTML runs no script and cannot reach this page.
            f'<h3>HTML part</h3><iframe sandbox src="/messages/{message_id}/html"></iframe>'
            f"<h3>Text part</h3><pre>{html.escape(message.get('TextBody') or '')}</pre>"
        )
        self.reply_page(message.get("Subject") or "Message", body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--store", type=Path, help="JSON file keeping the inbox across restarts")
    parser.add_argument("--token", help="the X-Postmark-Server-Token to require (any if unset)")
    parser.add_argument(
        "--webhook-url",
        help="the site's tracking webhook, e.g. http://127.0.0.1:8000/anymail/postmark/tracking/",
    )
    parser.add_argument("--webhook-secret", help='Anymail WEBHOOK_SECRET, "user:password"')
    parser.add_argument(
        "--webhook-delay",
        type=float,
        default=1.0,
        help="seconds between accepting a message and its webhook",
    )
    parser.add_argument("--site-url", help="the shop's URL, linked from the inbox page")
    args = parser.parse_args(argv)

    Handler.store = Store(args.store)
    Handler.webhooks = WebhookSender(args.webhook_url, args.webhook_secret, args.webhook_delay)
    Handler.token = args.token
    Handler.site_url = args.site_url
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    log(f"listening on http://{args.host}:{args.port}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
