"""Tracking webhooks of every ESP Anymail supports, in the shapes of Anymail's own tests.

Each builder returns a ``Webhook`` (the URL of Anymail's tracking view, the body, the
headers); ``post()`` sends it through Django's test client with the ESP's authentication
computed the way Anymail's tests compute it (basic auth, plus Mailgun's, MailerSend's,
Mandrill's, Mailtrap's, Postal's and Unisender Go's signatures). ``webhook_settings()`` is
the ``ANYMAIL`` settings those signatures need.

Builders take the ``message_id`` the ESP reports and the ``metadata`` it echoes, so that
an event is matched to an ``Email`` row the way a real one is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlencode

from tests.esp_server import WEBHOOK_SECRET

MAILGUN_SIGNING_KEY = "mailgun-signing-key"
MAILERSEND_SECRET = "mailersend-signing-secret"
MANDRILL_KEY = "mandrill-webhook-key"
MAILTRAP_SECRET = "mailtrap-tracking-secret"
UNISENDER_GO_API_KEY = "unisender-go-api-key"

_ids = itertools.count(1)
TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z


def next_id(prefix: str = "") -> str:
    return f"{prefix}{next(_ids):08d}"


@dataclass
class Webhook:
    esp: str
    path: str
    body: Any  # JSON data, or a dict of form fields (Mandrill)
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json"
    sign: str = ""  # which signature post() adds

    def encoded(self) -> bytes:
        return json.dumps(self.body).encode()


@cache
def _postal_private_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def postal_public_key() -> str:
    from cryptography.hazmat.primitives import serialization

    pem = _postal_private_key().public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return b"\n".join(pem.splitlines()[1:-1]).decode()


def webhook_settings(base: dict) -> dict:
    """``ANYMAIL`` settings with every ESP's webhook keys (``base`` keeps WEBHOOK_SECRET)."""
    return {
        **base,
        "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
        "MAILERSEND_SIGNING_SECRET": MAILERSEND_SECRET,
        "MANDRILL_WEBHOOK_KEY": MANDRILL_KEY,
        "MAILTRAP_TRACKING_SECRET": MAILTRAP_SECRET,
        "POSTAL_WEBHOOK_KEY": postal_public_key(),
        "UNISENDER_GO_API_KEY": UNISENDER_GO_API_KEY,
    }


def post(client, webhook: Webhook, *, secret: str | None = WEBHOOK_SECRET):
    """POST ``webhook`` to Anymail's view, authenticated as the ESP would be."""
    headers = dict(webhook.headers)
    if secret is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
    if webhook.sign == "mandrill":
        events = json.dumps(webhook.body)
        auth = f"{secret}@" if secret else ""
        signed = f"http://{auth}testserver{webhook.path}mandrill_events{events}"
        headers["X-Mandrill-Signature"] = base64.b64encode(
            hmac.new(MANDRILL_KEY.encode(), signed.encode(), hashlib.sha1).digest()
        ).decode()
        return client.post(
            webhook.path, data=urlencode({"mandrill_events": events}),
            content_type="application/x-www-form-urlencoded", headers=headers,
        )
    if webhook.sign == "unisender_go":
        placeholder = "__SIGNATURE__"
        body = dict(webhook.body, auth=placeholder)
        text = json.dumps(body, separators=(",", ":"))
        signature = hashlib.md5(text.replace(placeholder, UNISENDER_GO_API_KEY).encode())
        data = text.replace(placeholder, signature.hexdigest()).encode()
    else:
        data = webhook.encoded()
    if webhook.sign == "mailersend":
        headers["Signature"] = hmac.new(MAILERSEND_SECRET.encode(), data,
                                        hashlib.sha256).hexdigest()
    elif webhook.sign == "mailtrap":
        headers["Mailtrap-Signature"] = hmac.new(MAILTRAP_SECRET.encode(), data,
                                                 hashlib.sha256).hexdigest()
    elif webhook.sign == "postal":
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        signature = _postal_private_key().sign(data, padding.PKCS1v15(), hashes.SHA1())
        headers["X-Postal-Signature"] = base64.b64encode(signature).decode()
    return client.post(webhook.path, data=data, content_type=webhook.content_type,
                       headers=headers)


# --- Amazon SES (an SNS notification; SNS signatures are not verified by Anymail) -------


def ses_notification(ses_event: dict, *, sns_id: str | None = None) -> Webhook:
    sns_id = sns_id or next_id("sns-")
    message = {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:SES_Events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event) + "\n",
        "Timestamp": "2026-01-01T00:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE-SIGNATURE==",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
    return Webhook(
        "Amazon SES", "/anymail/amazon_ses/tracking/", message,
        headers={"x-amz-sns-message-id": sns_id, "x-amz-sns-message-type": "Notification"},
        content_type="text/plain; charset=UTF-8",
    )


def _ses_mail(message_id: str, destination: list[str], metadata: dict | None) -> dict:
    headers = [{"name": "From", "value": "shop@example.com"},
               {"name": "To", "value": ", ".join(destination)}]
    if metadata:
        headers.append({"name": "X-Metadata", "value": json.dumps(metadata)})
    return {
        "timestamp": "2026-01-01T00:00:00.000Z",
        "source": "shop@example.com",
        "messageId": message_id,
        "destination": destination,
        "headersTruncated": False,
        "headers": headers,
    }


def ses_event(kind: str, *, message_id: str, recipients: list[str], metadata=None,
              bounce_type: str = "Permanent", bounce_sub_type: str = "General",
              sns_id: str | None = None) -> Webhook:
    """An SES event of ``kind`` (eventType) naming ``recipients``."""
    event: dict[str, Any] = {"eventType": kind,
                             "mail": _ses_mail(message_id, recipients, metadata)}
    if kind == "Bounce":
        event["bounce"] = {
            "bounceType": bounce_type,
            "bounceSubType": bounce_sub_type,
            "bouncedRecipients": [
                {"emailAddress": r, "action": "failed", "status": "5.1.1",
                 "diagnosticCode": f"smtp; 550 5.1.1 <{r}>... User unknown"}
                for r in recipients
            ],
            "timestamp": "2026-01-01T00:00:01.000Z",
            "feedbackId": next_id("feedback-"),
            "reportingMTA": "dns; email.example.com",
        }
    elif kind == "Complaint":
        event["complaint"] = {
            "complainedRecipients": [{"emailAddress": r} for r in recipients],
            "timestamp": "2026-01-01T00:00:01.000Z",
            "feedbackId": next_id("feedback-"),
            "complaintFeedbackType": "abuse",
        }
    elif kind == "Delivery":
        event["delivery"] = {"timestamp": "2026-01-01T00:00:01.000Z",
                             "recipients": recipients, "smtpResponse": "250 ok"}
    elif kind == "Reject":
        event["reject"] = {"reason": "Bad content"}
    elif kind == "DeliveryDelay":
        event["deliveryDelay"] = {
            "delayType": "MailboxFull",
            "delayedRecipients": [{"emailAddress": r, "status": "4.2.2"} for r in recipients],
        }
    elif kind == "Open":
        event["open"] = {"userAgent": "Mozilla/5.0", "ipAddress": "192.0.2.1"}
    return ses_notification(event, sns_id=sns_id)


# --- Postmark (basic auth) ---------------------------------------------------------------


def postmark_bounce(type_: str, *, message_id: str, recipient: str, metadata=None,
                    inactive: bool = False, record_type: str = "Bounce") -> Webhook:
    return Webhook("Postmark", "/anymail/postmark/tracking/", {
        "RecordType": record_type,
        "ID": int(next_id()),
        "Type": type_,
        "TypeCode": 0,
        "Name": type_,
        "MessageID": message_id,
        "MessageStream": "outbound",
        "Metadata": metadata or {},
        "Description": f"A {type_} bounce.",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": recipient,
        "From": "shop@example.com",
        "BouncedAt": "2026-01-01T00:00:01Z",
        "DumpAvailable": False,
        "Inactive": inactive,
        "CanActivate": True,
        "Subject": "Order confirmed",
        "Content": "",
    })


def postmark_subscription_change(reason: str | None, *, message_id: str, recipient: str,
                                 suppress: bool = True, metadata=None) -> Webhook:
    return Webhook("Postmark", "/anymail/postmark/tracking/", {
        "RecordType": "SubscriptionChange",
        "MessageID": message_id,
        "ServerID": 23,
        "MessageStream": "outbound",
        "ChangedAt": "2026-01-01T00:00:01Z",
        "Recipient": recipient,
        "Origin": "Recipient",
        "SuppressSending": suppress,
        "SuppressionReason": reason,
        "Tag": "",
        "Metadata": metadata or {},
    })


# --- Brevo (basic auth; no event id) -----------------------------------------------------


def brevo(event: str, *, message_id: str, recipient: str, metadata=None) -> Webhook:
    body = {
        "event": event,
        "email": recipient,
        "id": 1234,
        "date": "2026-01-01 01:00:00",
        "ts": TIMESTAMP,
        "ts_event": TIMESTAMP,
        "ts_epoch": TIMESTAMP * 1000,
        "message-id": message_id,
        "reason": f"{event}: 550 5.5.0 mailbox unavailable",
        "subject": "Order confirmed",
    }
    if metadata:
        body["X-Mailin-custom"] = json.dumps(metadata)
    return Webhook("Brevo", "/anymail/brevo/tracking/", body)


# --- MailerSend (basic auth and an HMAC signature) ---------------------------------------


def mailersend(activity: str, *, message_id: str, recipient: str, metadata=None) -> Webhook:
    return Webhook("MailerSend", "/anymail/mailersend/tracking/", {
        "type": f"activity.{activity}",
        "domain_id": "7z3m5jgrogdpyo6n",
        "created_at": "2026-01-01T00:00:01.000000Z",
        "webhook_id": "7z3m5jgrogdpyo6n",
        "url": "https://your.site/anymail/mailersend/tracking/",
        "data": {
            "object": "activity",
            "id": next_id("ms-"),
            "type": activity,
            "created_at": "2026-01-01T00:00:01.000000Z",
            "email": {
                "object": "email",
                "status": "rejected",
                "tags": None,
                "message": {"object": "message", "id": message_id},
                "recipient": {"object": "recipient", "email": recipient},
            },
            "morph": {"object": "recipient_bounce", "reason": "Host or domain name not found"},
        },
    }, sign="mailersend")


# --- Mailgun (basic auth and a signature block) ------------------------------------------


def mailgun(event: str, *, message_id: str, recipient: str, metadata=None,
            severity: str | None = None, reason: str | None = None) -> Webhook:
    token = next_id("token-").ljust(50, "0")
    timestamp = str(TIMESTAMP)
    data: dict[str, Any] = {
        "event": event,
        "id": next_id("mg-"),
        "timestamp": TIMESTAMP + 0.5,
        "log-level": "error",
        "recipient": recipient,
        "message": {"headers": {"to": recipient, "message-id": message_id,
                                "from": "shop@example.com", "subject": "Order"}},
        "user-variables": metadata or {},
        "delivery-status": {"code": 550, "message": "5.1.1 No such user",
                            "description": ""},
    }
    if severity:
        data["severity"] = severity
    if reason:
        data["reason"] = reason
    signature = hmac.new(MAILGUN_SIGNING_KEY.encode(), f"{timestamp}{token}".encode(),
                         hashlib.sha256).hexdigest()
    return Webhook("Mailgun", "/anymail/mailgun/tracking/", {
        "signature": {"token": token, "timestamp": timestamp, "signature": signature},
        "event-data": data,
    })


# --- Mailjet (basic auth; no event id; a batch is a JSON array) --------------------------


def mailjet(event: str, *, message_id: str, recipient: str, metadata=None,
            hard_bounce: bool | None = None, error: str | None = None,
            related_to: str = "recipient") -> Webhook:
    body: dict[str, Any] = {
        "event": event,
        "time": TIMESTAMP,
        "MessageID": int(message_id),
        "Message_GUID": next_id("guid-"),
        "email": recipient,
        "mj_campaign_id": 0,
        "mj_contact_id": 987654321,
        "customcampaign": "",
        "Payload": json.dumps(metadata or {}),
    }
    if hard_bounce is not None:
        body.update(blocked=False, hard_bounce=hard_bounce)
    if error is not None:
        body.update(error_related_to=related_to, error=error)
    return Webhook("Mailjet", "/anymail/mailjet/tracking/", [body])


# --- Mailtrap (basic auth and an HMAC signature) -----------------------------------------


def mailtrap(event: str, *, message_id: str, recipient: str, metadata=None) -> Webhook:
    body: dict[str, Any] = {
        "event": event,
        "message_id": message_id,
        "sending_stream": "transactional",
        "email": recipient,
        "timestamp": TIMESTAMP,
        "event_id": next_id("mt-"),
        "custom_variables": metadata or {},
    }
    if event in ("bounce", "soft bounce", "reject", "suspension"):
        body.update(reason="mailbox does not exist", response="550 5.1.1 No such user",
                    response_code=550, bounce_category="badmailbox")
    return Webhook("Mailtrap", "/anymail/mailtrap/tracking/", {"events": [body]},
                   sign="mailtrap")


# --- Mandrill (a form post signed over the URL) -----------------------------------------


def mandrill(event: str, *, message_id: str, recipient: str, metadata=None) -> Webhook:
    return Webhook("Mandrill", "/anymail/mandrill/", [{
        "event": event,
        "_id": message_id,
        "ts": TIMESTAMP,
        "msg": {
            "ts": TIMESTAMP,
            "_id": message_id,
            "state": "bounced" if "bounce" in event else "sent",
            "subject": "Order confirmed",
            "email": recipient,
            "sender": "shop@example.com",
            "tags": [],
            "metadata": metadata or {},
            "bounce_description": "bad_mailbox",
            "diag": "smtp;550 5.1.1 No such user",
        },
    }], sign="mandrill")


def mandrill_sync(type_: str, action: str, reason: str, *, recipient: str) -> Webhook:
    return Webhook("Mandrill", "/anymail/mandrill/", [{
        "type": type_,
        "action": action,
        "reject": {
            "reason": reason,
            "detail": f"{reason} for this address",
            "last_event_at": "2026-01-01 00:00:00",
            "email": recipient,
            "created_at": "2026-01-01 00:00:00",
            "expires_at": "2026-01-08 00:00:00",
            "expired": False,
        },
        "ts": TIMESTAMP,
    }], sign="mandrill")


# --- Postal (an RSA signature) -----------------------------------------------------------


def postal(event: str, *, message_id: str, recipient: str, metadata=None,
           status: str | None = None) -> Webhook:
    message = {"id": int(message_id), "token": "VJzsFA0S4wqs", "direction": "outgoing",
               "message_id": f"{message_id}@postal.example.com", "to": recipient,
               "from": "shop@example.com", "subject": "Order confirmed",
               "timestamp": TIMESTAMP, "spam_status": "NotChecked", "tag": None}
    if event == "MessageBounced":
        payload: dict[str, Any] = {
            "original_message": message,
            "bounce": {**message, "id": int(message_id) + 1, "to": "shop@example.com",
                       "from": "mailer-daemon@example.com"},
        }
    elif event == "MessageLinkClicked":
        payload = {"message": message, "url": "https://example.com/o/1",
                   "token": "abc", "ip_address": "192.0.2.1", "user_agent": "Mozilla"}
    else:
        payload = {"message": message, "status": status, "details": f"{status} delivery",
                   "output": "550 5.1.1 No such user", "sent_with_ssl": False,
                   "timestamp": TIMESTAMP, "time": 0.1}
    return Webhook("Postal", "/anymail/postal/tracking/", {
        "event": event, "timestamp": TIMESTAMP, "payload": payload,
        "uuid": next_id("postal-"),
    }, sign="postal")


# --- Resend (basic auth when no Svix signing secret is set) ------------------------------


def resend(type_: str, *, message_id: str, to: list[str], metadata=None,
           bounce_type: str | None = None, sub_type: str = "General",
           svix_id: str | None = None) -> Webhook:
    data: dict[str, Any] = {
        "created_at": "2026-01-01T00:00:00.000Z",
        "email_id": message_id,
        "from": "shop@example.com",
        "to": to,
        "subject": "Order confirmed",
        "headers": [{"name": "X-Metadata", "value": json.dumps(metadata or {})}],
    }
    if type_ == "email.bounced":
        data["bounce"] = {"message": "The recipient's email provider sent a bounce message.",
                          "type": bounce_type, "subType": sub_type}
    return Webhook("Resend", "/anymail/resend/tracking/", {
        "type": type_, "created_at": "2026-01-01T00:00:01.000Z", "data": data,
    }, headers={"svix-id": svix_id or next_id("msg_"), "svix-timestamp": str(TIMESTAMP)})


# --- SendGrid (basic auth; a batch is a JSON array) --------------------------------------


def sendgrid(event: str, *, message_id: str, recipient: str, metadata=None,
             type_: str | None = None, reason: str | None = None) -> Webhook:
    body: dict[str, Any] = {
        "email": recipient,
        "timestamp": TIMESTAMP,
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": event,
        "category": [],
        "sg_event_id": next_id("sg-"),
        "sg_message_id": f"{message_id}.filter0001",
        "anymail_id": message_id,
        **(metadata or {}),
    }
    if type_ is not None:
        body["type"] = type_
    if reason is not None:
        body["reason"] = reason
    if event in ("bounce", "dropped"):
        body.setdefault("reason", "500 unknown recipient")
        body["status"] = "5.0.0"
    return Webhook("SendGrid", "/anymail/sendgrid/tracking/", [body])


# --- SparkPost (basic auth; a batch is a JSON array) -------------------------------------


def sparkpost(type_: str, *, message_id: str, recipient: str, metadata=None,
              bounce_class: str | None = None, raw_reason: str = "") -> Webhook:
    event: dict[str, Any] = {
        "type": type_,
        "event_id": next_id("sp-"),
        "message_id": "0004e3724f57753a3561",
        "transmission_id": message_id,
        "raw_rcpt_to": recipient,
        "rcpt_to": recipient.lower(),
        "rcpt_meta": metadata or {},
        "timestamp": str(TIMESTAMP),
        "customer_id": "00000",
    }
    if bounce_class is not None:
        event.update(bounce_class=bounce_class, error_code="550",
                     raw_reason=raw_reason or "550 5.1.1 User unknown", reason="...")
    elif raw_reason:
        event.update(raw_reason=raw_reason, reason=raw_reason)
    event_class = {"policy_rejection": "message_event", "delivery": "message_event",
                   "generation_failure": "gen_event", "generation_rejection": "gen_event",
                   "list_unsubscribe": "unsubscribe_event",
                   "link_unsubscribe": "unsubscribe_event", "open": "track_event",
                   "click": "track_event"}.get(type_, "message_event")
    return Webhook("SparkPost", "/anymail/sparkpost/tracking/",
                   [{"msys": {event_class: event}, "cust": {"id": "00000"}}])


# --- Unisender Go (an MD5 signature in the body; no event id) ---------------------------


def unisender_go(status: str, *, message_id: str, recipient: str, metadata=None,
                 delivery_status: str | None = None) -> Webhook:
    event_data: dict[str, Any] = {
        "job_id": message_id,
        "metadata": metadata or {},
        "email": recipient,
        "status": status,
        "event_time": "2026-01-01 00:00:01",
    }
    if delivery_status is not None:
        event_data["delivery_info"] = {"delivery_status": delivery_status,
                                       "destination_response": "550 5.1.1 No such user",
                                       "user_agent": "", "ip": "192.0.2.1"}
    return Webhook("Unisender Go", "/anymail/unisender_go/tracking/", {
        "auth": "",
        "events_by_user": [{
            "user_id": 456,
            "project_id": "6432890213745872",
            "project_name": "Shop",
            "events": [{"event_name": "transactional_email_status",
                        "event_data": event_data}],
        }],
    }, sign="unisender_go")
