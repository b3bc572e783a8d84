"""Delivery attempts: one row per attempt a worker made at sending an Email.

``Email.attempts`` only counts; this is what each attempt did (a first attempt that got
an HTTP 500 and a second that was sent are two rows). ``delivery`` writes one row where
it writes the attempt's result, with one INSERT. Rows are never updated or deleted by the
app.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

#: The longest error text an attempt row keeps (the ESP's answer may be a whole page).
ERROR_MAX_LENGTH = 4000


class AttemptOutcome(models.TextChoices):
    SENT = "sent", _("sent")
    TRANSIENT = "transient", _("transient error (retried)")
    PERMANENT = "permanent", _("permanent error")
    AMBIGUOUS = "ambiguous", _("outcome unknown")
    SUPPRESSED = "suppressed", _("suppressed")
    CANCELLED = "cancelled", _("cancelled")
    LOST_CLAIM = "lost_claim", _("claim lost (result not recorded on the email)")


class EmailAttempt(models.Model):
    """What one delivery attempt of an Email did."""

    email = models.ForeignKey(
        "transactional_mail.Email",
        on_delete=models.PROTECT,
        related_name="attempt_log",
        verbose_name=_("email"),
    )
    number = models.PositiveIntegerField(
        _("number"), help_text=_("The email's attempt counter; a resend starts it again.")
    )
    claim_token = models.UUIDField(
        _("claim token"),
        null=True,
        blank=True,
        help_text=_("The claim the attempt ran under: one row per claim, at most."),
    )
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"))
    outcome = models.CharField(_("outcome"), max_length=20, choices=AttemptOutcome.choices)
    error = models.TextField(_("error"), blank=True)
    esp_message_id = models.CharField(_("ESP message id"), max_length=255, blank=True)
    esp_status_code = models.PositiveSmallIntegerField(
        _("ESP response status"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("delivery attempt")
        verbose_name_plural = _("delivery attempts")
        ordering = ["email", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["email", "claim_token"], name="transactional_mail_attempt_claim_unique"
            )
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of email {self.email_id}: {self.outcome}"
