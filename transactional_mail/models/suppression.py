"""Addresses that must not be mailed."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from ..headers import addr_spec

#: How a suppression reduced to a keyed hash (``forget_address --hash``) starts: it can
#: never be an address (no "@"), so it is never mailed nor shown as one.
HASH_PREFIX = "sha256:"

#: The salt of the key (derived from SECRET_KEY) that hashes a forgotten address. It
#: never changes: every hashed suppression depends on it.
ADDRESS_HASH_SALT = "transactional_mail.suppression.address_hash"


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
        # A forgotten address is kept only as its keyed hash: look for those too.
        keys = {key for address in addresses for key in address_keys(address)}
        return self.filter(address__in=keys, category__in={"", *categories})


def normalize_address(address: str) -> str:
    """The bare address, lower-cased: ``"Ann <Ann@Example.com>"`` -> ``ann@example.com``."""
    return addr_spec(address).strip().lower() or address.strip().lower()


def address_hashes(address: str) -> list[str]:
    """The keyed hashes of ``address`` under SECRET_KEY and each of SECRET_KEY_FALLBACKS,
    current first: a hashed suppression still blocks while its key is being rotated out."""
    keys = (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", []))
    return list(_hashes(normalize_address(address), keys))


@functools.lru_cache(maxsize=4096)
def _hashes(normalized: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    # Kept per process: a worker checks each recipient's hashes several times per batch,
    # and one HMAC costs more than the rest of a suppression check. Keyed by the secrets
    # too, so a rotated SECRET_KEY is never answered from the cache.
    return tuple(HASH_PREFIX + salted_hmac(ADDRESS_HASH_SALT, normalized, secret=key,
                                           algorithm="sha256").hexdigest() for key in keys)


def address_keys(address: str) -> list[str]:
    """What a suppression of ``address`` may be stored as: the normalised address, or one
    of its keyed hashes (the address was forgotten)."""
    normalized = normalize_address(address)
    return [normalized, *address_hashes(normalized)]


def hash_address(address: str) -> str:
    """The keyed hash a forgotten address is kept as (under the current SECRET_KEY)."""
    return address_hashes(address)[0]


def is_hashed(address: str) -> bool:
    """Whether a suppression's address is a forgotten address's hash."""
    return address.startswith(HASH_PREFIX)


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
    # A default, not auto_now_add: an imported list keeps the dates it was suppressed at.
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

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
        if not is_hashed(self.address):
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
