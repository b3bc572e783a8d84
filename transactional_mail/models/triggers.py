"""Staff's switch for each trigger defined in settings."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .. import process_cache


def disabled_triggers_cache_key() -> str:
    """The cache key of the disabled trigger keys: the one key for lookup and invalidation."""
    return "transactional_mail:disabled-triggers"


class TriggerQuerySet(models.QuerySet):
    def disabled_keys(self) -> frozenset[str]:
        """Keys of the triggers staff switched off (cached: this runs on every firing)."""
        return process_cache.read(disabled_triggers_cache_key(), lambda: frozenset(
            self.filter(enabled=False).values_list("key", flat=True)))

    def update(self, **kwargs) -> int:
        """As ``QuerySet.update`` (and ``bulk_update``, which calls it), forgetting the
        cached disabled keys as ``Trigger.save()`` does."""
        rows = super().update(**kwargs)
        process_cache.forget(disabled_triggers_cache_key(), using=self.db)
        return rows


class Trigger(models.Model):
    """A trigger from ``TRANSACTIONAL_MAIL["TRIGGERS"]``, as staff see and switch it.

    The definition lives in settings (code review, deploys); the row holds what staff
    may change without a deploy: whether it fires.
    """

    key = models.CharField(_("key"), max_length=100, unique=True)
    enabled = models.BooleanField(
        _("enabled"), default=True, help_text=_("A disabled trigger queues no email.")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = TriggerQuerySet.as_manager()

    class Meta:
        verbose_name = _("trigger")
        verbose_name_plural = _("triggers")
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        process_cache.forget(disabled_triggers_cache_key(), using=self._state.db)

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        process_cache.forget(disabled_triggers_cache_key(), using=self._state.db)
        return result
