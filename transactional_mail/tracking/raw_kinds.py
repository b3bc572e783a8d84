"""Raw kinds: what kind of event an ESP's raw webhook payload is, read per ESP.

Anymail normalises every event to a few types; the raw payload tells more (a soft from a
hard bounce, an address the ESP refuses). ``raw_kinds()`` reads it into keys of
``outcomes.RAW_OUTCOMES``, most specific first; a payload of another shape reads as none.
"""

from __future__ import annotations

from collections.abc import Callable


def raw_kinds(esp_name: str, raw) -> list[str]:
    """The raw kinds of an ESP event, most specific first (keys of ``RAW_OUTCOMES``).

    An event read as ``["failed", "permanent", "bounce"]`` has the kinds
    ``failed/permanent/bounce``, ``failed/permanent/*``, ``failed/permanent``,
    ``failed/*`` and ``failed``.
    """
    reader = _RAW_KIND_READERS.get(esp_name)
    if reader is None or not hasattr(raw, "get"):
        return []
    try:
        parts = []
        for part in reader(raw):
            if part is None or part == "" or not isinstance(part, (str, int)):
                break  # a missing level: the kinds stop above it
            parts.append(str(part))
    except (AttributeError, TypeError, KeyError, IndexError, ValueError):
        return []  # a payload of an unexpected shape: Anymail's normalised type decides
    kinds = []
    for n in range(len(parts), 0, -1):
        kinds.append("/".join(parts[:n]))
        if n > 1:
            kinds.append("/".join(parts[: n - 1]) + "/*")
    return kinds


# --- raw kind readers, one per ESP: the parts of a raw kind, most general first ---------


def nested_value(data, *path):
    """``data[path[0]][path[1]]...``, or None where the payload has another shape."""
    for key in path:
        if not hasattr(data, "get"):
            return None
        data = data.get(key)
    return data


def _amazon_ses(raw) -> list:
    kind = raw.get("eventType") or raw.get("notificationType")
    if kind == "Bounce":
        return [kind, nested_value(raw, "bounce", "bounceType")]
    return [kind]


def _brevo(raw) -> list:
    return [raw.get("event")]


def _mailersend(raw) -> list:
    return [nested_value(raw, "data", "type")]


def _mailgun(raw) -> list:
    data = raw.get("event-data")
    if not hasattr(data, "get"):
        return []  # a legacy (pre-2018) form-encoded event: Anymail's type decides
    if data.get("event") == "failed":
        return ["failed", data.get("severity"), data.get("reason")]
    return [data.get("event")]


def _mailjet(raw) -> list:
    kind = raw.get("event")
    if kind == "bounce":
        return [kind, "hard" if raw.get("hard_bounce") is True else "soft"]
    if kind == "blocked":
        return [kind, raw.get("error")]
    return [kind]


def _mailtrap(raw) -> list:
    return [raw.get("event")]


def _mandrill(raw) -> list:
    kind = raw.get("event") or raw.get("type")
    if kind in ("blacklist", "whitelist"):
        return [kind, raw.get("action"), nested_value(raw, "reject", "reason")]
    return [kind]


def _postal(raw) -> list:
    return [raw.get("event"), nested_value(raw, "payload", "status")]


def _postmark(raw) -> list:
    record = raw.get("RecordType")
    if record == "Bounce":
        if raw.get("Inactive") is True:
            return [record, "Inactive"]
        return [record, raw.get("Type")]
    if record == "SubscriptionChange":
        if raw.get("SuppressSending") is False:
            return [record, "reactivated"]
        return [record, raw.get("SuppressionReason")]
    return [record]


def _resend(raw) -> list:
    kind = raw.get("type")
    if kind == "email.bounced":
        return [kind, nested_value(raw, "data", "bounce", "type")]
    return [kind]


def _sendgrid(raw) -> list:
    kind = raw.get("event")
    if kind == "bounce":
        return [kind, raw.get("type") or "bounce"]
    if kind == "dropped":
        return [kind, raw.get("reason") or raw.get("type")]
    return [kind]


def _sparkpost(raw) -> list:
    msys = raw.get("msys")
    if not hasattr(msys, "values") or len(msys) != 1:
        return []
    event = next(iter(msys.values()))
    kind = event.get("type")
    if kind in ("bounce", "out_of_band"):
        return ["bounce", event.get("bounce_class")]
    if kind == "policy_rejection":
        reason = f"{event.get('raw_reason', '')} {event.get('reason', '')}".lower()
        return [kind, "suppressed" if "suppress" in reason else "other"]
    return [kind]


def _unisender_go(raw) -> list:
    kind = raw.get("status")
    if kind == "hard_bounced":
        return [kind, nested_value(raw, "delivery_info", "delivery_status")]
    return [kind]


_RAW_KIND_READERS: dict[str, Callable[[dict], list]] = {
    "Amazon SES": _amazon_ses,
    "Brevo": _brevo,
    "SendinBlue": _brevo,
    "MailerSend": _mailersend,
    "Mailgun": _mailgun,
    "Mailjet": _mailjet,
    "Mailtrap": _mailtrap,
    "Mandrill": _mandrill,
    "Postal": _postal,
    "Postmark": _postmark,
    "Resend": _resend,
    "SendGrid": _sendgrid,
    "SparkPost": _sparkpost,
    "Unisender Go": _unisender_go,
}
