"""Digests: the events a digest trigger collected, in windows that close into one email.

A trigger with a ``"digest"`` option stores each event's context as a ``DigestItem`` in
the open ``DigestWindow`` of its (trigger, recipient, key) instead of queueing an email.
The window is closed by a due-time sweep (``triggers.digests.close_due_windows``): the
rows are the state, so a worker or beat restarted mid-window loses nothing.
"""

from __future__ import annotations

import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class DigestWindowManager(models.Manager):
    def join(self, *, trigger_key: str, digest_key: str, now: datetime.datetime,
             window_seconds: int, earliest_close: datetime.datetime | None = None,
             **fields) -> tuple[DigestWindow, bool]:
        """The open window of (``trigger_key``, ``digest_key``), locked for the caller's
        transaction, and whether this call opened it (closing ``window_seconds`` from
        ``now``, or at ``earliest_close`` if later).

        Locked (on PostgreSQL), the window cannot be closed by the sweep before the
        caller's items are in it; one the sweep closed meanwhile is not returned, and a
        new one opens. Two callers opening the same window race on the unique constraint;
        the loser joins the winner's window.
        """
        closes_at = now + datetime.timedelta(seconds=window_seconds)
        if earliest_close is not None:
            closes_at = max(closes_at, earliest_close)
        for attempt in range(2):
            window = (self.select_for_update()
                      .filter(trigger_key=trigger_key, digest_key=digest_key,
                              closed_at__isnull=True).first())
            if window is not None:
                return window, False
            try:
                with transaction.atomic(using=self.db):
                    return self.create(trigger_key=trigger_key, digest_key=digest_key,
                                       window_seconds=window_seconds, opened_at=now,
                                       closes_at=closes_at, **fields), True
            except IntegrityError:
                # Another transaction opened it first (our INSERT waited for its commit):
                # join that one. A second failure is something else: let it raise.
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


class DigestWindow(models.Model):
    """One collection window of a digest trigger for one recipient (and key)."""

    trigger_key = models.CharField(_("trigger"), max_length=100)
    digest_key = models.CharField(
        _("digest key"), max_length=255,
        help_text=_("What the window groups by: the recipient's address, and the value of "
                    "the trigger's digest 'key' when it names one."),
    )
    recipient = models.CharField(_("recipient"), max_length=320)
    template_key = models.CharField(_("template key"), max_length=100)
    category = models.CharField(
        _("category"), max_length=50, blank=True,
        help_text=_("The trigger's category; empty: the template's."),
    )
    language = models.CharField(_("language"), max_length=15, blank=True)
    options = models.JSONField(
        _("send options"), default=dict, blank=True,
        help_text=_("The trigger's from_email, reply_to and tags, for the digest email."),
    )
    window_seconds = models.PositiveIntegerField(_("window (seconds)"))
    opened_at = models.DateTimeField(_("opened at"))
    closes_at = models.DateTimeField(_("closes at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    email = models.ForeignKey(
        "transactional_mail.Email", on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", verbose_name=_("digest email"),
        help_text=_("The email the window closed into; empty while open, or when every "
                    "event of the window went out at once."),
    )

    objects = DigestWindowManager()

    class Meta:
        verbose_name = _("digest window")
        verbose_name_plural = _("digest windows")
        constraints = [
            # Two events racing to open a window for the same key: the second INSERT
            # fails and joins the first's window.
            models.UniqueConstraint(
                fields=["trigger_key", "digest_key"], condition=Q(closed_at__isnull=True),
                name="tmail_one_open_digest_window",
            ),
        ]
        indexes = [
            models.Index(fields=["closes_at"], condition=Q(closed_at__isnull=True),
                         name="tmail_digest_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.trigger_key} digest for {self.recipient} (closes {self.closes_at})"


class DigestItem(models.Model):
    """One event collected into a digest window: its context, as the template sees it."""

    window = models.ForeignKey(
        DigestWindow, on_delete=models.CASCADE, related_name="items",
        verbose_name=_("window"),
    )
    context = models.JSONField(_("context"), default=dict, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(_("created at"))
    email = models.ForeignKey(
        "transactional_mail.Email", on_delete=models.PROTECT, null=True, blank=True,
        related_name="digest_items", verbose_name=_("email"),
        help_text=_("The email that carried this event: the digest, or the email sent at "
                    "once for a window's first event; empty while the window is open."),
    )

    class Meta:
        verbose_name = _("digest item")
        verbose_name_plural = _("digest items")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"item {self.pk} of {self.window_id}"
