"""Addresses that must not be mailed."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce", _("hard bounce")
    SOFT_BOUNCES = "soft_bounces", _("repeated soft bounces")
    COMPLAINT = "complaint", _("spam complaint")
    UNSUBSCRIBE = "unsubscribe", _("unsubscribed")
    MANUAL = "manual", _("added by staff")


class SuppressionQuerySet(models.QuerySet):
    def blocking(self, addresses: Iterable[str], *categories: str) -> SuppressionQuerySet:
        """Suppressions that stop mail of any of ``categories`` (every category's too) to
        any of ``addresses``."""
        normalized = {normalize_address(address) for address in addresses}
        return self.filter(address__in=normalized, category__in={"", *categories})


def normalize_address(address: str) -> str:
    """The bare address, lower-cased: ``"Ann <Ann@Example.com>"`` -> ``ann@example.com``."""
    from email.utils import parseaddr

    return parseaddr(address)[1].strip().lower() or address.strip().lower()


class Suppression(models.Model):
    """An address that must not be mailed, for every category ("") or for one."""

    address = models.CharField(_("address"), max_length=254)
    category = models.CharField(
        _("category"),
        max_length=50,
        blank=True,
        help_text=_("Blank suppresses every email; a category suppresses only that kind."),
    )
    reason = models.CharField(_("reason"), max_length=20, choices=SuppressionReason.choices)
    source = models.CharField(
        _("source"), max_length=255, blank=True, help_text=_("What added it, e.g. the ESP event.")
    )
    email = models.ForeignKey(
        "transactional_mail.Email",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("caused by email"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    objects = SuppressionQuerySet.as_manager()

    class Meta:
        verbose_name = _("suppression")
        verbose_name_plural = _("suppressions")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["address", "category"], name="transactional_mail_suppression_unique"
            )
        ]

    def __str__(self) -> str:
        scope = f" ({self.category})" if self.category else ""
        return f"{self.address}{scope}: {self.get_reason_display()}"

    def save(self, *args, **kwargs):
        self.address = normalize_address(self.address)
        super().save(*args, **kwargs)


class SuppressionChange(models.TextChoices):
    ADDED = "added", _("added")
    REMOVED = "removed", _("removed")


class SuppressionHistory(models.Model):
    """One addition or removal of a suppression by staff, with the reason given.

    Kept apart from the Suppression row, which a removal deletes: the history outlives it
    and answers "why is she getting mail again, and who decided?".
    """

    address = models.CharField(_("address"), max_length=254)
    category = models.CharField(_("category"), max_length=50, blank=True)
    change = models.CharField(_("change"), max_length=10, choices=SuppressionChange.choices)
    suppression_reason = models.CharField(
        _("suppression reason"), max_length=20, choices=SuppressionReason.choices
    )
    note = models.TextField(_("reason for the change"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        verbose_name = _("suppression history entry")
        verbose_name_plural = _("suppression history")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["address", "created_at"], name="tmail_supp_hist_addr_idx")]

    def __str__(self) -> str:
        return f"{self.address}: {self.get_change_display()}"


class SoftBounceStreak(models.Model):
    """The soft bounces of one address since its last delivery.

    Tracking counts them (one atomic UPDATE per bounce, so concurrent webhooks never lose
    one) and suppresses the address once ``SOFT_BOUNCE_LIMIT`` are in a row; a delivery
    deletes the streak.
    """

    address = models.CharField(_("address"), max_length=254, unique=True)
    count = models.PositiveIntegerField(_("consecutive soft bounces"), default=0)
    updated_at = models.DateTimeField(_("last soft bounce"), auto_now=True)

    class Meta:
        verbose_name = _("soft bounce streak")
        verbose_name_plural = _("soft bounce streaks")

    def __str__(self) -> str:
        return f"{self.address}: {self.count}"
