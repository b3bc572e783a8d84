"""What layouts and templates share: immutable revisions, drafts and publishing.

Every save that changes the content records a revision, the new *current* one (the
draft). Emails render the *published* revision, which moves only when someone publishes
the draft (:meth:`Revisioned.publish`): an edit never reaches customers by being saved.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _


def revision_pointer(to, verbose_name, help_text) -> models.ForeignKey:
    """A revisioned model's pointer to one of its revisions (the current or the published):
    set by the model itself, never in a form; a deleted revision leaves it empty."""
    return models.ForeignKey(
        to,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=verbose_name,
        help_text=help_text,
    )


class Revision(models.Model):
    """A snapshot written once and never changed: logged emails point at it."""

    number = models.PositiveIntegerField(_("number"), editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    note = models.CharField(_("note"), max_length=500, blank=True, default="")

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError(
                f"{type(self).__name__} {self.pk} is immutable: save the "
                f"{self.OWNER_FIELD} instead, which records a new revision."
            )
        super().save(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        """Whether this is its owner's published revision."""
        owner = getattr(self, self.OWNER_FIELD)
        return owner is not None and owner.published_revision_id == self.pk


class Revisioned(models.Model):
    """A model whose saves record a revision of ``REVISION_FIELDS`` when they change.

    Subclasses define ``current_revision`` and ``published_revision`` (foreign keys to
    their revision model, whose ``OWNER_FIELD`` names its foreign key back) and
    ``REVISION_FIELDS``. Set ``revision_author`` and ``revision_note`` on the instance
    before ``save()`` to record who made the change and why (the admin does).
    """

    REVISION_FIELDS: tuple[str, ...] = ()

    revision_author = None
    revision_note = ""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        using = kwargs.get("using")
        with transaction.atomic(using=using):
            super().save(*args, **kwargs)
            self._record_revision(using)

    @property
    def has_unpublished_changes(self) -> bool:
        """Whether the latest revision (the draft) is not the one emails use."""
        return self.current_revision_id != self.published_revision_id

    def revision_values(self) -> dict:
        """The values a revision copies from this row."""
        return {name: getattr(self, name) for name in self.REVISION_FIELDS}

    def publish(self, using=None) -> bool:
        """Make the current revision the one emails use; False if it already was."""
        if self.current_revision_id is None or not self.has_unpublished_changes:
            return False
        type(self).objects.using(using or self._state.db).filter(pk=self.pk).update(
            published_revision=self.current_revision_id
        )
        self.published_revision = self.current_revision
        return True

    def restore_values(self, revision) -> None:
        """Copy ``revision``'s content onto this row (save it to record a new draft)."""
        for name in self.RESTORED_FIELDS:
            setattr(self, name, getattr(revision, name))

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
        author = self.revision_author
        revision = revision_model(
            **{owner: self},
            number=(last_number or 0) + 1,
            created_by=author if author is not None and author.pk else None,
            note=self.revision_note or "",
            **values,
        )
        revision.save(using=using)
        type(self).objects.using(using).filter(pk=self.pk).update(current_revision=revision)
        self.current_revision = revision
        self.revision_author, self.revision_note = None, ""
