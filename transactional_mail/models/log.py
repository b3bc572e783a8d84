"""The send log: one Email row per outgoing email, with its delivery events.

The app never deletes these rows. An Email keeps copies of everything that was sent, so
it outlives the template, layout and object it came from.
"""

from __future__ import annotations

import zlib

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..redaction import redact_context, redact_data, redact_error, redact_text, secret_values


class EmailStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    SCHEDULED = "scheduled", _("scheduled")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    DELIVERED = "delivered", _("delivered")
    DEFERRED = "deferred", _("deferred")
    BOUNCED = "bounced", _("bounced")
    COMPLAINED = "complained", _("complained")
    FAILED = "failed", _("failed")
    SUPPRESSED = "suppressed", _("suppressed")
    CANCELLED = "cancelled", _("cancelled")


#: Statuses a worker may claim for delivery.
CLAIMABLE_STATUSES = (EmailStatus.QUEUED, EmailStatus.SCHEDULED)


def compress(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), 6) if text else b""


def decompress(data: bytes | memoryview | None) -> str:
    return zlib.decompress(bytes(data)).decode("utf-8") if data else ""


class Email(models.Model):
    """One outgoing email: the outbox row, then its permanent log entry."""

    status = models.CharField(
        _("status"),
        max_length=20,
        choices=EmailStatus.choices,
        default=EmailStatus.QUEUED,
    )
    template_key = models.CharField(_("template key"), max_length=100)
    template_revision = models.ForeignKey(
        "transactional_mail.TemplateRevision",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="emails",
        verbose_name=_("template revision"),
        help_text=_("The revision rendered: the current one when the email is first "
                    "attempted, kept for every retry and resend."),
    )
    layout_revision = models.ForeignKey(
        "transactional_mail.LayoutRevision",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,  # only read when a layout revision is deleted, which is rare
        related_name="emails",
        verbose_name=_("layout revision"),
    )
    trigger_key = models.CharField(_("trigger"), max_length=100, blank=True)
    category = models.CharField(_("category"), max_length=50, blank=True)
    language = models.CharField(_("language"), max_length=15, blank=True)

    from_email = models.CharField(_("from"), max_length=320)
    to = models.JSONField(_("to"), default=list)
    cc = models.JSONField(_("cc"), default=list, blank=True)
    bcc = models.JSONField(_("bcc"), default=list, blank=True)
    reply_to = models.JSONField(_("reply to"), default=list, blank=True)
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    is_test = models.BooleanField(
        _("test email"),
        default=False,
        help_text=_("Sent by staff as a test (send(..., is_test=True)), not to a customer."),
    )
    attachments = models.JSONField(
        _("attachments"),
        default=list,
        blank=True,
        help_text=_("Filename, MIME type and base64 content of each attachment."),
    )
    context = models.JSONField(_("context"), default=dict, encoder=DjangoJSONEncoder)
    secret_keys = models.JSONField(
        _("secret context keys"),
        default=list,
        blank=True,
        help_text=_("Top-level context keys holding secrets (a reset link, a sign-in code): "
                    "rendered into the message, never stored in its copies, and removed "
                    "from the context once the email will not be rendered again."),
    )
    # NULL, not "": only emails given a key take part in the unique constraint.
    idempotency_key = models.CharField(  # noqa: DJ001
        _("idempotency key"), max_length=255, null=True, blank=True
    )

    subject = models.TextField(_("subject"), blank=True)
    subject_variant = models.PositiveSmallIntegerField(
        _("subject variant"),
        default=0,
        editable=False,
        help_text=_("The subject variant of an A/B test this email got (1 to 4), chosen "
                    "from its id on the first attempt; 0 when its template had none."),
    )
    stat_flags = models.PositiveSmallIntegerField(
        _("counted as"),
        default=0,
        editable=False,
        help_text=_("What the daily statistics have counted this email for (a bit set of "
                    "StatFlag), so that each counter counts it once."),
    )
    html_compressed = models.BinaryField(_("HTML body (compressed)"), blank=True, default=b"")
    text_compressed = models.BinaryField(_("text body (compressed)"), blank=True, default=b"")

    esp_name = models.CharField(_("ESP"), max_length=50, blank=True)
    esp_message_id = models.CharField(_("ESP message id"), max_length=255, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    outcome_uncertain = models.BooleanField(
        _("outcome uncertain"),
        default=False,
        help_text=_(
            "An attempt ended without knowing whether the ESP accepted the email "
            "(timeout, 502, 504, worker killed). The email's id travels in the ESP "
            "metadata so a webhook can reconcile it."
        ),
    )

    source_content_type = models.ForeignKey(
        ContentType,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        db_index=False,  # the (type, id) index below leads with it
        related_name="+",
        verbose_name=_("source type"),
    )
    source_object_id = models.CharField(_("source id"), max_length=255, blank=True)

    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    next_attempt_at = models.DateTimeField(
        _("next attempt at"),
        help_text=_("When the email is due: its send time, or the time of its next retry."),
    )
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    claim_token = models.UUIDField(
        _("claim token"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Written by each claim; a worker records its result only while the "
                    "email still carries the token of its own claim."),
    )
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    status_changed_at = models.DateTimeField(_("status changed at"), auto_now_add=True)
    redacted_at = models.DateTimeField(
        _("redacted at"),
        null=True,
        blank=True,
        help_text=_("When its bodies, context and attachments were removed (RETENTION_DAYS, "
                    "or its address forgotten); status, template and times stay."),
    )

    class Meta:
        verbose_name = _("email")
        verbose_name_plural = _("emails")
        ordering = ["-created_at"]
        permissions = [
            ("resend_email", _("Can resend emails and retry failed ones")),
            ("cancel_email", _("Can cancel scheduled or queued emails")),
            ("forget_address", _("Can erase the personal data of an address")),
        ]
        constraints = [
            # Several NULLs are allowed: only emails given a key are deduplicated.
            models.UniqueConstraint(
                fields=["idempotency_key"], name="transactional_mail_email_idempotency_unique"
            )
        ]
        # Explicit indexes, not db_index: on PostgreSQL, db_index on a CharField adds a
        # second "_like" index nobody queries, and every index is write cost on the
        # request path (each send() inserts a row).
        indexes = [
            models.Index(
                fields=["status", "next_attempt_at"], name="tmail_email_outbox_idx"
            ),
            models.Index(fields=["esp_message_id"], name="tmail_email_esp_id_idx"),
            models.Index(fields=["template_key", "created_at"],
                         name="tmail_email_template_idx"),
            models.Index(fields=["trigger_key", "status"], name="tmail_email_trigger_idx"),
            models.Index(fields=["created_at"], name="tmail_email_created_idx"),
            # The send log's filters, each newest first (the admin's order). Recipient
            # search uses a GIN index on "to", PostgreSQL only: see migration 0004.
            models.Index(fields=["status", "created_at"], name="tmail_email_status_idx"),
            models.Index(fields=["trigger_key", "created_at"],
                         name="tmail_email_trigger_date_idx"),
            models.Index(fields=["category", "created_at"], name="tmail_email_category_idx"),
            models.Index(fields=["created_at"], condition=models.Q(is_test=True),
                         name="tmail_email_test_idx"),
            models.Index(
                fields=["source_content_type", "source_object_id"],
                name="tmail_email_source_idx",
            ),
            # The retention task's walk, oldest first: only rows not yet redacted are in
            # it, so a run resumes where the last one stopped instead of re-reading them.
            models.Index(fields=["created_at"], condition=models.Q(redacted_at__isnull=True),
                         name="tmail_email_unredacted_idx"),
            # The emails of one scheduled run (the schedule runs admin links to them): a
            # prefix of the key. The pattern operator class lets PostgreSQL answer
            # LIKE 'prefix%' whatever the database's collation; only scheduled emails are
            # in it, so send() pays nothing for it.
            models.Index(fields=["idempotency_key"], opclasses=["varchar_pattern_ops"],
                         condition=models.Q(idempotency_key__startswith="schedule:"),
                         name="tmail_email_schedule_key_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.template_key} to {', '.join(self.to)} ({self.status})"

    @property
    def html_body(self) -> str:
        return decompress(self.html_compressed)

    @html_body.setter
    def html_body(self, value: str) -> None:
        self.html_compressed = compress(value)

    @property
    def text_body(self) -> str:
        return decompress(self.text_compressed)

    @text_body.setter
    def text_body(self, value: str) -> None:
        self.text_compressed = compress(value)

    @property
    def recipients(self) -> list[str]:
        return [*self.to, *self.cc, *self.bcc]

    def secrets(self) -> list[str]:
        """The secret values of the context (none once they have been redacted)."""
        return secret_values(self.context, self.secret_keys) if self.secret_keys else []

    def without_secrets(self, text: str, secrets: list[str] | None = None) -> str:
        """``text`` (an error) with this email's secrets (or ``secrets``) replaced by the
        marker, and its long base64 runs dropped (``redaction.redact_error``)."""
        return redact_error(text, self.secrets() if secrets is None else secrets)

    def redact_copies(self, *, context: bool) -> None:
        """Replace, in memory, this email's secrets in its subject, bodies and last error,
        and in its context, headers and metadata too when ``context`` (it will not be
        rendered again; the headers and metadata went out with it); the caller writes the
        fields. Nothing to do for an email without secrets."""
        secrets = self.secrets()
        if not secrets:
            return
        self.subject = redact_text(self.subject, secrets)
        self.html_body = redact_text(self.html_body, secrets)
        self.text_body = redact_text(self.text_body, secrets)
        self.last_error = redact_error(self.last_error, secrets)
        if context:
            self.context = redact_context(self.context, self.secret_keys)
            self.headers = redact_data(self.headers, secrets)
            self.metadata = redact_data(self.metadata, secrets)


#: The fields ``redact_copies`` may change.
REDACTED_FIELDS = ("subject", "html_compressed", "text_compressed", "last_error", "context",
                   "headers", "metadata")


def redact_final(emails: models.QuerySet) -> int:
    """Redact the secrets of ``emails`` that hold some, for a writer that moved them to a
    final status with an UPDATE (the sweep giving up, the admin's cancel); run it in the
    transaction of that UPDATE. Returns how many rows it rewrote."""
    rewritten = 0
    for email in emails.exclude(secret_keys=[]).only("pk", "secret_keys", *REDACTED_FIELDS):
        email.redact_copies(context=True)
        rewritten += Email.objects.filter(pk=email.pk).update(
            **{name: getattr(email, name) for name in REDACTED_FIELDS})
    return rewritten


class EmailEvent(models.Model):
    """One event from an ESP tracking webhook: the delivery timeline of an Email.

    Unique per (ESP, event id, recipient key), so a retried webhook is stored once, and
    each recipient of an event the ESP reports for several (Amazon SES gives all the
    recipients of one bounce the same id) is stored and applied once.
    """

    email = models.ForeignKey(
        Email,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
        verbose_name=_("email"),
    )
    esp_name = models.CharField(_("ESP"), max_length=50)
    event_id = models.CharField(
        _("event id"),
        max_length=255,
        help_text=_("The ESP's event id, or a hash of the raw event when the ESP sends none."),
    )
    event_type = models.CharField(_("event type"), max_length=30)
    timestamp = models.DateTimeField(_("timestamp"), null=True, blank=True)
    recipient = models.CharField(_("recipient"), max_length=320, blank=True)
    recipient_key = models.CharField(
        _("recipient key"),
        max_length=64,
        blank=True,
        default="",
        help_text=_(
            "Keyed hash (HMAC, with a key derived from SECRET_KEY) of the event id and the "
            "normalised recipient: tells recipients of one event apart without holding "
            "the address. Blank when the event names no recipient."
        ),
    )
    esp_message_id = models.CharField(_("ESP message id"), max_length=255, blank=True)
    hard_bounce = models.BooleanField(_("hard bounce"), default=False)
    reject_reason = models.CharField(_("reject reason"), max_length=50, blank=True)
    description = models.TextField(_("description"), blank=True)
    mta_response = models.TextField(_("MTA response"), blank=True)
    click_url = models.TextField(_("clicked URL"), blank=True)
    raw = models.JSONField(_("raw ESP event"), null=True, blank=True, encoder=DjangoJSONEncoder)
    raw_pruned = models.BooleanField(_("raw event pruned"), default=False)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        verbose_name = _("email event")
        verbose_name_plural = _("email events")
        ordering = ["received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["esp_name", "event_id", "recipient_key"],
                name="transactional_mail_emailevent_recipient_unique",
            )
        ]
        indexes = [
            models.Index(fields=["received_at"], name="tmail_event_received_idx"),
            # The per-recipient page: "did she get it?".
            models.Index(fields=["recipient", "received_at"], name="tmail_event_recipient_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} ({self.esp_name}) for {self.recipient or '?'}"
