"""Operator alerts: the state of each alert kind, kept by the ``check_alerts`` beat task."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AlertKind(models.TextChoices):
    COMPLAINT_RATE = "complaint_rate", _("complaint rate")
    BOUNCE_RATE = "bounce_rate", _("bounce rate")
    VOLUME_DROP = "volume_drop", _("volume drop")
    VOLUME_SPIKE = "volume_spike", _("volume spike")
    OUTBOX_STUCK = "outbox_stuck", _("outbox stuck")


class AlertSeverity(models.TextChoices):
    WARNING = "warning", _("warning")
    CRITICAL = "critical", _("critical")


class Alert(models.Model):
    """One alert kind: active while ``resolved_at`` is empty.

    One row per kind, reused by each episode, so the table stays a handful of rows the
    admin banner reads cheaply; ``notified_at`` rate-limits the mails to ``ADMINS``.
    """

    kind = models.CharField(_("kind"), max_length=30, choices=AlertKind.choices, unique=True)
    severity = models.CharField(_("severity"), max_length=10, choices=AlertSeverity.choices)
    message = models.TextField(_("message"))
    value = models.FloatField(_("measured value"))
    threshold = models.FloatField(_("threshold crossed"))
    raised_at = models.DateTimeField(_("raised at"), help_text=_(
        "The first check of this episode that found the condition."))
    checked_at = models.DateTimeField(_("checked at"), help_text=_(
        "The last check that found the condition (or resolved it)."))
    notified_at = models.DateTimeField(_("notified at"), null=True, blank=True)
    notified_severity = models.CharField(
        _("notified severity"), max_length=10, choices=AlertSeverity.choices, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["kind"]

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.message}"

    @property
    def is_active(self) -> bool:
        return self.resolved_at is None
