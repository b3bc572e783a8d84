"""Frequency-cap counts: one row per non-essential email counted against its recipient's cap.

``pacing.frequency_cap_reason`` writes a row when a worker is about to send an email of a
capped category, and counts the rows of the recipient and category in the cap's period,
under a lock, so concurrent workers cannot both take the last slot.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CapCount(models.Model):
    """One email counted against a (recipient, category) frequency cap."""

    recipient_key = models.CharField(_("recipient"), max_length=320)
    category = models.CharField(_("category"), max_length=50)
    counted_at = models.DateTimeField(_("counted at"))
    email = models.OneToOneField(
        "transactional_mail.Email", on_delete=models.CASCADE, related_name="+",
        verbose_name=_("email"),
    )

    class Meta:
        verbose_name = _("frequency cap count")
        verbose_name_plural = _("frequency cap counts")
        indexes = [
            models.Index(fields=["recipient_key", "category", "counted_at"],
                         name="tmail_cap_count_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.recipient_key} / {self.category} at {self.counted_at}"
