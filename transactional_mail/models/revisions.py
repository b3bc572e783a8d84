"""What layouts and templates share: an immutable revision recorded on every save."""

from __future__ import annotations

from django.db import models, transaction
from django.utils.translation import gettext_lazy as _


class Revision(models.Model):
    """A snapshot written once and never changed: logged emails point at it."""

    number = models.PositiveIntegerField(_("number"), editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError(
                f"{type(self).__name__} {self.pk} is immutable: save the "
                f"{self.OWNER_FIELD} instead, which records a new revision."
            )
        super().save(*args, **kwargs)


class Revisioned(models.Model):
    """A model whose saves record a revision of ``REVISION_FIELDS`` when they change.

    Subclasses define ``current_revision`` (a foreign key to their revision model, whose
    ``OWNER_FIELD`` names its foreign key back) and ``REVISION_FIELDS``.
    """

    REVISION_FIELDS: tuple[str, ...] = ()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        using = kwargs.get("using")
        with transaction.atomic(using=using):
            super().save(*args, **kwargs)
            self._record_revision(using)

    def revision_values(self) -> dict:
        """The values a revision copies from this row."""
        return {name: getattr(self, name) for name in self.REVISION_FIELDS}

    def _record_revision(self, using) -> None:
        revision_model = self._meta.get_field("current_revision").related_model
        owner = revision_model.OWNER_FIELD
        current = self.current_revision
        values = self.revision_values()
        if current is not None and all(
            getattr(current, name) == value for name, value in values.items()
        ):
            return  # a save that changes nothing adds no revision
        last_number = (
            revision_model.objects.using(using)
            .filter(**{owner: self})
            .aggregate(models.Max("number"))["number__max"]
        )
        revision = revision_model(**{owner: self}, number=(last_number or 0) + 1, **values)
        revision.save(using=using)
        type(self).objects.using(using).filter(pk=self.pk).update(current_revision=revision)
        self.current_revision = revision
