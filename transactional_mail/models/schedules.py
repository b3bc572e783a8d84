"""The record of each run of a periodic email (``TRANSACTIONAL_MAIL["SCHEDULES"]``)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ScheduleRunStatus(models.TextChoices):
    RUNNING = "running", _("running")
    DONE = "done", _("done")


class ScheduleRun(models.Model):
    """One period of one schedule: who holds it, how far it got, what it queued.

    Unique per (schedule, period), so a period has one record whoever starts it (beat, a
    redelivered task, ``manage.py run_schedule``). Each batch of emails commits with the
    new ``cursor``: a run that stopped half-way resumes after its last committed batch.
    """

    schedule_key = models.CharField(_("schedule"), max_length=100)
    period = models.CharField(
        _("period"), max_length=40,
        help_text=_("When the run was due, ISO 8601 in the schedule's time zone."),
    )
    status = models.CharField(
        _("status"), max_length=10, choices=ScheduleRunStatus.choices,
        default=ScheduleRunStatus.RUNNING,
    )
    # Text, not a varchar: a primary key may be any length, and one the column could not
    # hold would fail the batch's commit at every retry.
    cursor = models.TextField(
        _("cursor"), blank=True, default="",
        help_text=_("Where the next batch starts: the last primary key done (a queryset), "
                    "or how many recipients were done (a callable)."),
    )
    recipients_done = models.PositiveIntegerField(_("recipients done"), default=0)
    emails_queued = models.PositiveIntegerField(
        _("emails queued"), default=0,
        help_text=_("Rows this run wrote; recipients already queued for the period are "
                    "not counted again."),
    )
    recipients_skipped = models.PositiveIntegerField(
        _("recipients skipped"), default=0,
        help_text=_("Recipients whose email could not be built (a malformed address, a "
                    "context that is not JSON); the last reason is below."),
    )
    last_error = models.TextField(_("last error"), blank=True, default="")
    lease_token = models.UUIDField(_("lease token"), null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("schedule run")
        verbose_name_plural = _("schedule runs")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(fields=["schedule_key", "period"],
                                    name="transactional_mail_schedulerun_period_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "schedule_key"], name="tmail_schedulerun_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_key} @ {self.period}"
