"""Email templates that staff edit, and their immutable revisions."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import models
from django.utils.translation import gettext_lazy as _

from .. import process_cache
from ..conf import get_setting
from ..exceptions import TemplateNotFound, TemplateNotPublished
from ..subject_variants import (
    LETTERS,
    VARIANT_FIELDS,
    normalize_weights,
    variant_weight_errors,
    variants,
)
from .revisions import Revision, Revisioned, revision_pointer


def normalize_language(language: str | None) -> str:
    """``"fr_CA"`` and ``"FR-ca"`` -> ``"fr-ca"``; None -> ``""`` (the default)."""
    return (language or "").strip().replace("_", "-").lower()


def language_fallbacks(language: str | None) -> tuple[str, ...]:
    """The languages to try, most specific first: ``"fr-ca"`` -> fr-ca, fr, default."""
    language = normalize_language(language)
    candidates = []
    while language:
        candidates.append(language)
        language = language.rpartition("-")[0]
    candidates.append("")
    return tuple(candidates)


def template_cache_key(key: str) -> str:
    """The cache key of a template key's languages: the one key for lookup and invalidation."""
    return f"transactional_mail:template-languages:{key}"


def template_languages(key: str) -> dict[str, str]:
    """``{language: category}`` of the templates with ``key`` (cached).

    ``send()`` calls this on the request path, and a scheduled run once per recipient, so
    it is cached for ``CACHE_TIMEOUT`` seconds and invalidated when a template is saved or
    deleted, and each process keeps what it read for a second (``process_cache``); the
    caches are read before any queryset is built (building one costs more than the read).
    An empty answer is never cached: a new template is found at once.
    """
    return process_cache.read(template_cache_key(key), lambda: dict(
        EmailTemplate.objects.filter(key=key).values_list("language", "category")), keep=bool)


class EmailTemplateQuerySet(models.QuerySet):
    def published_revisions(self, key: str, language: str | None) -> tuple[int, int | None] | None:
        """The published template and layout revision ids for ``key`` in the best language.

        The layout is the one the published revision names, at its published revision. A
        language variant that is not published (or whose layout is not) is skipped, as if it
        did not exist: the next fallback language is used.
        """
        candidates = language_fallbacks(language)
        rows = self.filter(key=key, language__in=candidates, published_revision__isnull=False)
        found = {
            language: (revision_id, layout_revision_id)
            for language, revision_id, layout_id, layout_revision_id in rows.values_list(
                "language",
                "published_revision_id",
                "published_revision__layout_id",
                "published_revision__layout__published_revision_id",
            )
            if layout_id is None or layout_revision_id is not None
        }
        for candidate in candidates:
            if candidate in found:
                return found[candidate]
        return None

    def not_found_error(self, key: str, language: str | None) -> TemplateNotFound:
        """Why :meth:`published_revisions` found nothing: no template, or none published."""
        candidates = language_fallbacks(language)
        rows = list(self.filter(key=key, language__in=candidates).select_related(
            "published_revision__layout"))
        if not rows:
            return TemplateNotFound(key, candidates)
        if any(row.published_revision_id for row in rows):
            layouts = sorted({str(row.published_revision.layout) for row in rows
                              if row.published_revision_id})
            return TemplateNotPublished(key, candidates, layouts=tuple(layouts))
        return TemplateNotPublished(key, candidates)


class TemplateFields(models.Model):
    """The content of a template, shared by the template and its revisions."""

    key = models.CharField(
        _("key"),
        max_length=100,
        validators=[validate_slug],
        help_text=_("What code and triggers send, e.g. order_confirmation."),
    )
    language = models.CharField(
        _("language"),
        max_length=15,
        blank=True,
        default="",
        help_text=_(
            "Blank for the default. fr-ca falls back to fr, then to the default template."
        ),
    )
    subject = models.CharField(_("subject"), max_length=500)
    # Weights are blank=True so that a form (or an API client) that does not know about
    # A/B tests keeps them; a blank weight counts as 1 (``normalize_weights``).
    subject_weight = models.PositiveSmallIntegerField(
        _("subject weight"),
        default=1,
        blank=True,
        help_text=_("With subject variants below: the share of emails that get this "
                    "subject (variant A), against the variants' weights."),
    )
    subject_b = models.CharField(
        _("subject variant B"), max_length=500, blank=True, default="",
        help_text=_("Another subject to test against the one above (A/B test). Each email "
                    "gets one subject, in proportion to the weights."),
    )
    subject_b_weight = models.PositiveSmallIntegerField(
        _("weight of B"), default=1, blank=True
    )
    subject_c = models.CharField(_("subject variant C"), max_length=500, blank=True,
                                 default="")
    subject_c_weight = models.PositiveSmallIntegerField(
        _("weight of C"), default=1, blank=True
    )
    subject_d = models.CharField(_("subject variant D"), max_length=500, blank=True,
                                 default="")
    subject_d_weight = models.PositiveSmallIntegerField(
        _("weight of D"), default=1, blank=True
    )
    preheader = models.CharField(
        _("preheader"),
        max_length=500,
        blank=True,
        default="",
        help_text=_(
            "The preview line inboxes show after the subject (one line; variables allowed). "
            "Leave blank to use the context's preheader, if any."
        ),
    )
    html = models.TextField(_("HTML body"))
    text = models.TextField(
        _("text body"), blank=True, help_text=_("Leave blank to derive it from the HTML.")
    )
    category = models.SlugField(
        _("category"),
        max_length=50,
        blank=True,
        help_text=_("The kind of mail, e.g. account, orders, marketing."),
    )

    class Meta:
        abstract = True


#: The A/B test's fields beside ``subject`` (see ``transactional_mail.subject_variants``).
SUBJECT_VARIANT_FIELDS = tuple(
    name for _number, subject, weight in VARIANT_FIELDS for name in (subject, weight)
    if name != "subject"
)


class TemplateRevision(TemplateFields, Revision):
    """An immutable snapshot of a template; every Email points at the one it used."""

    OWNER_FIELD = "template"

    template = models.ForeignKey(
        "transactional_mail.EmailTemplate",
        # Deleting a template keeps the revisions that logged emails point to.
        on_delete=models.SET_NULL,
        null=True,
        related_name="revisions",
        verbose_name=_("template"),
    )
    layout = models.ForeignKey(
        "transactional_mail.Layout",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("layout"),
    )

    class Meta:
        verbose_name = _("template revision")
        verbose_name_plural = _("template revisions")
        ordering = ["key", "language", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "number"], name="transactional_mail_templaterevision_unique"
            )
        ]

    def __str__(self) -> str:
        language = f" [{self.language}]" if self.language else ""
        return f"{self.key}{language} #{self.number}"


class EmailTemplate(TemplateFields, Revisioned):
    """A staff-editable email: subject, HTML and text in a layout, per language."""

    REVISION_FIELDS = (
        "key", "language", "subject", *SUBJECT_VARIANT_FIELDS, "preheader", "html", "text",
        "category", "layout",
    )
    #: What restoring an old revision copies back: its content, not the template's identity.
    RESTORED_FIELDS = ("subject", *SUBJECT_VARIANT_FIELDS, "preheader", "html", "text",
                       "category", "layout")

    layout = models.ForeignKey(
        "transactional_mail.Layout",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="templates",
        verbose_name=_("layout"),
    )
    sample_context = models.JSONField(
        _("sample context"),
        default=dict,
        blank=True,
        help_text=_("Example data for previews and test sends."),
    )
    current_revision = revision_pointer(
        TemplateRevision,
        _("current revision"),
        _("The latest revision: the draft, when it is not the published one."),
    )
    published_revision = revision_pointer(
        TemplateRevision, _("published revision"), _("The revision emails are rendered from.")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = EmailTemplateQuerySet.as_manager()

    class Meta:
        verbose_name = _("email template")
        verbose_name_plural = _("email templates")
        ordering = ["key", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["key", "language"], name="transactional_mail_emailtemplate_unique"
            )
        ]
        permissions = [
            ("publish_emailtemplate", _("Can publish email template")),
            ("send_test_emailtemplate", _("Can send test email to any address")),
        ]

    def __str__(self) -> str:
        return f"{self.key} [{self.language}]" if self.language else self.key

    def save(self, *args, **kwargs):
        self.language = normalize_language(self.language)
        normalize_weights(self)
        self.validate_sources()
        previous_key = (
            type(self).objects.filter(pk=self.pk).values_list("key", flat=True).first()
            if self.pk else None
        )
        super().save(*args, **kwargs)
        process_cache.forget(*{template_cache_key(key) for key in (self.key, previous_key) if key},
                             using=self._state.db)

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        process_cache.forget(template_cache_key(self.key), using=self._state.db)
        return result

    def clean(self) -> None:
        super().clean()
        self.language = normalize_language(self.language)
        normalize_weights(self)
        self.validate_category()
        self.validate_sources()

    def secret_use_errors(self) -> dict[str, list[str]]:
        """Where the parts use a secret of this key (its starter's, its triggers') in a way
        that could send it to another host: the messages by field, naming the lines."""
        from ..rendering.secret_use import parts_problems, template_secret_keys

        errors: dict[str, list[str]] = {}
        for problem in parts_problems(self, template_secret_keys(self.key)):
            errors.setdefault(problem.part, []).append(str(problem))
        return errors

    def validate_category(self) -> None:
        """Refuse a category ``CATEGORIES`` does not declare (once any is declared): its
        mail would go out in no stream, without the sender and unsubscribe it needs."""
        from ..categories import is_declared

        if self.category and not is_declared(self.category):
            declared = ", ".join(sorted(map(str, get_setting("CATEGORIES"))))
            raise ValidationError({"category": _(
                "The category %(category)s is not declared in the site's settings "
                "(TRANSACTIONAL_MAIL['CATEGORIES']). Declared categories: %(declared)s."
            ) % {"category": self.category, "declared": declared}})

    def promote_subject_variant(self, number: int, author=None) -> bool:
        """End the subject A/B test with variant ``number`` (1 to 4) as the subject, saved
        as a new draft (publish it to send it); False if the draft has no such variant.

        The draft is the current content, so unpublished edits are kept; the other
        variants are cleared and the weights reset.
        """
        if number not in {variant.number for variant in variants(self)}:
            return False
        self.subject = getattr(self, VARIANT_FIELDS[number - 1][1])
        for _number, subject_field, weight_field in VARIANT_FIELDS:
            setattr(self, weight_field, 1)
            if subject_field != "subject":
                setattr(self, subject_field, "")
        self.revision_author = author
        self.revision_note = f"Subject variant {LETTERS[number]} promoted (A/B test winner)."
        self.save()
        return True

    def validate_sources(self) -> None:
        """Refuse a template the restricted engine would not accept, one whose stylesheets
        would load a resource, one that uses a secret where it could leave the email, or
        one whose sample context renders over budget; the message names the line."""
        from ..rendering.validation import (
            validate_html_source,
            validate_template_budget,
            validate_template_source,
        )

        errors = variant_weight_errors(self)
        for field, validate in (
            ("subject", validate_template_source),
            *((field, validate_template_source) for field in ("subject_b", "subject_c",
                                                                "subject_d")),
            ("preheader", validate_template_source),
            ("html", validate_html_source),
            ("text", validate_template_source),
        ):
            try:
                validate(getattr(self, field), field_name=field)
            except ValidationError as err:
                errors.setdefault(field, []).extend(err.messages)
        if not errors:
            errors = self.secret_use_errors()
        if not errors:
            try:
                validate_template_budget(
                    self, self.layout, self.sample_context, language=self.language or None
                )
            except ValidationError as err:
                errors = err.message_dict
        if errors:
            raise ValidationError(errors)
