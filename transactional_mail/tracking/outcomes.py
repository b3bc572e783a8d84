"""Outcomes: what a tracking event means, the status it sets and the suppression it adds.

What an event means is read from the raw ESP event wherever Anymail's normalised type
does not tell (Anymail calls a soft bounce ``bounced`` for several ESPs, and an address
the ESP has deactivated ``rejected``): see ``RAW_OUTCOMES``, which the table in
``docs/statuses-and-outbox.md`` mirrors.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import EmailStatus, SuppressionReason
from .raw_kinds import raw_kinds


@dataclass(frozen=True)
class Outcome:
    """What an event does: the status it moves its email to, the suppression it adds."""

    status: str | None
    suppression: str | None
    label: str

    def __str__(self) -> str:
        return self.label


SENT = Outcome(EmailStatus.SENT, None, "sent")
DELIVERED = Outcome(EmailStatus.DELIVERED, None, "delivered")
#: Temporary, or a soft bounce: the address is fine, a later email may get through.
SOFT = Outcome(EmailStatus.DEFERRED, None, "soft")
#: The address is undeliverable, or the ESP refuses to mail it (deactivated, on its
#: suppression list): nothing sent to it again can arrive.
HARD = Outcome(EmailStatus.BOUNCED, SuppressionReason.HARD_BOUNCE, "hard")
#: Not delivered for good, but not the address's fault (content, sender reputation,
#: policy, the ESP gave up or failed): the address stays mailable.
UNDELIVERED = Outcome(EmailStatus.BOUNCED, None, "undelivered")
COMPLAINT = Outcome(EmailStatus.COMPLAINED, SuppressionReason.COMPLAINT, "complaint")
#: The ESP dropped the email because the address complained before.
LISTED_COMPLAINT = Outcome(EmailStatus.BOUNCED, SuppressionReason.COMPLAINT, "listed complaint")
UNSUBSCRIBE = Outcome(None, SuppressionReason.UNSUBSCRIBE, "unsubscribe")
#: The ESP dropped the email because the address unsubscribed before.
LISTED_UNSUBSCRIBE = Outcome(
    EmailStatus.BOUNCED, SuppressionReason.UNSUBSCRIBE, "listed unsubscribe"
)
#: A notice that the ESP put the address on its suppression list (no email status).
ADDRESS_REFUSED = Outcome(None, SuppressionReason.HARD_BOUNCE, "address refused")
ADDRESS_COMPLAINED = Outcome(None, SuppressionReason.COMPLAINT, "address complained")
#: Engagement (opens, clicks), auto-replies and notices: stored, nothing else.
NOTHING = Outcome(None, None, "nothing")

#: What each raw ESP event means, keyed by Anymail's esp_name and by the raw kind that
#: ``raw_kinds()`` reads from the event (most specific first; "Type/*" rows are the
#: fallbacks of their type). Raw kinds not listed fall back to ``ANYMAIL_OUTCOMES``.
RAW_OUTCOMES: dict[str, dict[str, Outcome]] = {
    "Amazon SES": {
        "Send": SENT,
        "Delivery": DELIVERED,
        "DeliveryDelay": SOFT,
        "Bounce/Permanent": HARD,  # General, NoEmail, Suppressed, OnAccountSuppressionList
        "Bounce/Transient": SOFT,  # MailboxFull, MessageTooLarge, ContentRejected...
        "Bounce/Undetermined": UNDELIVERED,
        "Complaint": COMPLAINT,
        "Reject": UNDELIVERED,  # SES found a virus: the message, not the address
        "Rendering Failure": UNDELIVERED,
        "Open": NOTHING,
        "Click": NOTHING,
        "Subscription": NOTHING,
    },
    "Brevo": {
        "request": SENT,
        "delivered": DELIVERED,
        "deferred": SOFT,
        "hard_bounce": HARD,
        "soft_bounce": SOFT,
        "invalid_email": HARD,
        "blocked": HARD,  # Brevo refuses an address on its blocklist
        "spam": COMPLAINT,
        "complaint": COMPLAINT,
        "unsubscribe": UNSUBSCRIBE,
        "error": UNDELIVERED,
    },
    "MailerSend": {
        "sent": SENT,
        "delivered": DELIVERED,
        "hard_bounced": HARD,
        "soft_bounced": SOFT,
        "spam_complaint": COMPLAINT,
        "unsubscribed": UNSUBSCRIBE,
    },
    "Mailgun": {
        "accepted": SENT,
        "delivered": DELIVERED,
        "failed/temporary": SOFT,
        "failed/permanent/bounce": HARD,
        "failed/permanent/suppress-bounce": HARD,  # on Mailgun's bounce list
        "failed/permanent/suppress-complaint": LISTED_COMPLAINT,
        "failed/permanent/suppress-unsubscribe": LISTED_UNSUBSCRIBE,
        "failed/permanent/*": UNDELIVERED,  # generic, old, espblock...: not the address
        "complained": COMPLAINT,
        "unsubscribed": UNSUBSCRIBE,
    },
    "Mailjet": {
        "sent": DELIVERED,
        "bounce/hard": HARD,  # hard_bounce: true
        "bounce/soft": SOFT,  # hard_bounce: false
        "blocked/user unknown": HARD,
        "blocked/mailbox inactive": HARD,
        "blocked/invalid domain": HARD,
        "blocked/no mail host": HARD,
        "blocked/typofix": HARD,
        "blocked/blacklisted": HARD,  # on Mailjet's blocklist
        "blocked/preblocked": HARD,  # on Mailjet's list of known-bad addresses
        "blocked/spam reporter": LISTED_COMPLAINT,
        "blocked/*": UNDELIVERED,  # sender/content/policy blocked, duplicate, quota...
        "spam": COMPLAINT,
        "unsub": UNSUBSCRIBE,
    },
    "Mailtrap": {
        "delivery": DELIVERED,
        "bounce": HARD,
        "soft bounce": SOFT,
        "suspension": SOFT,
        "reject": HARD,  # Mailtrap refuses an address on its suppression list
        "spam": COMPLAINT,
        "unsubscribe": UNSUBSCRIBE,
    },
    "Mandrill": {
        "send": SENT,
        "deferral": SOFT,
        "hard_bounce": HARD,
        "soft_bounce": SOFT,
        # Mandrill's denylist may hold an address for a soft bounce, for a while: the
        # blacklist sync event below says why, a reject does not.
        "reject": UNDELIVERED,
        "spam": COMPLAINT,
        "unsub": UNSUBSCRIBE,
        "blacklist/add/soft-bounce": NOTHING,
        "blacklist/add/*": ADDRESS_REFUSED,
        "blacklist/*": NOTHING,
        "whitelist/*": NOTHING,
    },
    "Postal": {
        "MessageSent": DELIVERED,
        "MessageDelayed": SOFT,
        "MessageDeliveryFailed": HARD,  # HardFail: Postal suppresses the address too
        "MessageHeld": NOTHING,
        "MessageBounced": HARD,  # a bounce message came back; Postal says no more
        "MessageLoaded": NOTHING,
        "MessageLinkClicked": NOTHING,
    },
    "Postmark": {
        "Delivery": DELIVERED,
        "Bounce/HardBounce": HARD,
        "Bounce/BadEmailAddress": HARD,
        "Bounce/ManuallyDeactivated": HARD,
        "Bounce/Inactive": HARD,  # any Type with "Inactive": true: Postmark deactivated it
        "Bounce/SoftBounce": SOFT,
        "Bounce/Transient": SOFT,
        "Bounce/DnsError": SOFT,
        "Bounce/OpenRelayTest": SOFT,
        "Bounce/Blocked": UNDELIVERED,  # an ISP block of the sender or content
        "Bounce/DMARCPolicy": UNDELIVERED,
        "Bounce/SpamNotification": UNDELIVERED,
        "Bounce/VirusNotification": UNDELIVERED,
        "Bounce/Unconfirmed": UNDELIVERED,
        "Bounce/SMTPApiError": UNDELIVERED,
        "Bounce/TemplateRenderingFailed": UNDELIVERED,
        "Bounce/Unknown": UNDELIVERED,
        "Bounce/Unsubscribe": UNSUBSCRIBE,
        "Bounce/*": NOTHING,  # AutoResponder, AddressChange, Subscribe, ChallengeVerification
        "SpamComplaint": COMPLAINT,
        "SubscriptionChange/HardBounce": ADDRESS_REFUSED,
        "SubscriptionChange/SpamComplaint": ADDRESS_COMPLAINED,
        "SubscriptionChange/ManualSuppression": UNSUBSCRIBE,
        "SubscriptionChange/*": NOTHING,  # reactivated ("SuppressSending": false)
        "Open": NOTHING,
        "Click": NOTHING,
    },
    "Resend": {
        "email.sent": SENT,
        "email.delivered": DELIVERED,
        "email.delivery_delayed": SOFT,
        "email.bounced/Permanent": HARD,  # subType Suppressed too: Resend refuses it
        "email.bounced/Transient": SOFT,
        "email.bounced/Undetermined": UNDELIVERED,
        "email.complained": COMPLAINT,
    },
    "SendGrid": {
        "processed": SENT,
        "delivered": DELIVERED,
        "deferred": SOFT,
        "bounce/bounce": HARD,
        "bounce/blocked": SOFT,  # SendGrid: a block of the sender, not the address
        "dropped/Bounced Address": HARD,  # on SendGrid's bounce list
        "dropped/Invalid": HARD,
        "dropped/Spam Reporting Address": LISTED_COMPLAINT,
        "dropped/Unsubscribed Address": LISTED_UNSUBSCRIBE,
        "dropped/*": UNDELIVERED,  # invalid SMTPAPI header, spam content, expired...
        "spamreport": COMPLAINT,
        "unsubscribe": UNSUBSCRIBE,
        "group_unsubscribe": UNSUBSCRIBE,
    },
    "SparkPost": {
        "injection": SENT,
        "delivery": DELIVERED,
        "delay": SOFT,
        # bounce and out_of_band by bounce_class: SparkPost's Hard classes (10 Invalid
        # Recipient, 30 No RCPT) are suppressed, its Soft ones are not, its Block classes
        # (50-54) and Undetermined (1) are the sender's or the content's problem.
        "bounce/10": HARD,
        "bounce/30": HARD,
        "bounce/90": UNSUBSCRIBE,
        "bounce/1": UNDELIVERED,
        "bounce/25": UNDELIVERED,
        "bounce/50": UNDELIVERED,
        "bounce/51": UNDELIVERED,
        "bounce/52": UNDELIVERED,
        "bounce/53": UNDELIVERED,
        "bounce/54": UNDELIVERED,
        "bounce/60": NOTHING,
        "bounce/80": NOTHING,
        "bounce/100": NOTHING,
        "bounce/*": SOFT,  # 20-24, 40, 70
        "policy_rejection/suppressed": HARD,  # "recipient address suppressed" by SparkPost
        "policy_rejection/*": UNDELIVERED,
        "generation_failure": UNDELIVERED,
        "generation_rejection": UNDELIVERED,
        "spam_complaint": COMPLAINT,
        "list_unsubscribe": UNSUBSCRIBE,
        "link_unsubscribe": UNSUBSCRIBE,
    },
    "Unisender Go": {
        "sent": SENT,
        "delivered": DELIVERED,
        "soft_bounced": SOFT,
        "hard_bounced/err_user_unknown": HARD,
        "hard_bounced/err_user_inactive": HARD,
        "hard_bounced/err_mailbox_discarded": HARD,
        "hard_bounced/err_domain_inactive": HARD,
        "hard_bounced/err_blacklisted": HARD,  # on Unisender Go's blocklist
        "hard_bounced/err_unsubscribed": LISTED_UNSUBSCRIBE,
        "hard_bounced/*": UNDELIVERED,  # mailbox full, too large, spam rejected, lost...
        "spam": COMPLAINT,
        "unsubscribed": UNSUBSCRIBE,
    },
}
RAW_OUTCOMES["SendinBlue"] = RAW_OUTCOMES["Brevo"]  # Anymail's old name for Brevo

#: What an event means when its raw kind is not in RAW_OUTCOMES (an ESP Anymail adds
#: later, a raw type an ESP adds later): by Anymail's normalised type. A bounce nobody
#: classified counts as hard, so that no hard bounce is lost.
ANYMAIL_OUTCOMES = {
    "queued": SENT,
    "sent": SENT,
    "deferred": SOFT,
    "delivered": DELIVERED,
    "bounced": HARD,
    "complained": COMPLAINT,
    "unsubscribed": UNSUBSCRIBE,
}
#: Anymail's normalised reject reasons that make a ``rejected`` event hard.
HARD_REJECT_REASONS = {"invalid", "bounced"}


def classify(event, esp_name: str) -> Outcome:
    """What ``event`` means: its email's new status, and the suppression it adds.

    Looks the raw ESP event up in ``RAW_OUTCOMES``, else falls back on Anymail's
    normalised event type (``ANYMAIL_OUTCOMES``).
    """
    table = RAW_OUTCOMES.get(esp_name, {})
    raw = event.esp_event
    for kind in raw_kinds(esp_name, raw):
        if kind in table:
            return table[kind]
    if event.event_type == "rejected":
        return HARD if event.reject_reason in HARD_REJECT_REASONS else UNDELIVERED
    return ANYMAIL_OUTCOMES.get(event.event_type, NOTHING)


def is_hard_bounce(event, esp_name: str) -> bool:
    """Whether the event says the address is undeliverable or refused by the ESP."""
    return classify(event, esp_name).suppression == SuppressionReason.HARD_BOUNCE
