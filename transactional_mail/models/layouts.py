"""Brand layouts: the shell every email sits in."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import FileExtensionValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..rendering.brand import (
    DEFAULT_FONT_STACK,
    LOGO_EXTENSIONS,
    LOGO_MAX_BYTES,
    logo_image_type,
    validate_css_color,
    validate_font_stack,
)
from .revisions import Revision, Revisioned, revision_pointer

CONTENT_SLOT = "{{ content }}"


class LayoutFields(models.Model):
    """The content of a layout, shared by the layout and its revisions."""

    name = models.CharField(_("name"), max_length=100)
    html = models.TextField(
        _("HTML"),
        help_text=_(
            "A full HTML document with the content slot {{ content }} where each email's "
            "body goes. Brand values are available as {{ brand.logo_url }}, "
            "{{ brand.primary_color }} and so on."
        ),
    )
    css = models.TextField(
        _("CSS"), blank=True, help_text=_("Inlined into every element when the email is sent.")
    )
    logo_url = models.URLField(_("logo URL"), blank=True, max_length=500)
    primary_color = models.CharField(
        _("primary colour"), max_length=32, default="#1a73e8", validators=[validate_css_color],
        help_text=_("A CSS colour: #rgb, #rrggbb, #rrggbbaa, rgb(), rgba() or a colour name."),
    )
    background_color = models.CharField(
        _("background colour"), max_length=32, default="#f4f4f5",
        validators=[validate_css_color],
    )
    text_color = models.CharField(
        _("text colour"), max_length=32, default="#1f2937", validators=[validate_css_color]
    )
    font_family = models.CharField(
        _("font stack"),
        max_length=200,
        default=DEFAULT_FONT_STACK,
        validators=[validate_font_stack],
        help_text=_("A CSS font-family list, e.g. Helvetica, Arial, sans-serif."),
    )
    footer_html = models.TextField(_("footer HTML"), blank=True)
    footer_address = models.TextField(
        _("footer address"), blank=True, help_text=_("The postal address shown in the footer.")
    )
    legal_text = models.TextField(
        _("legal text"), blank=True, help_text=_("Shown in the footer, e.g. why they get this.")
    )
    help_url = models.URLField(_("help link"), blank=True, max_length=500)
    translations = models.JSONField(
        _("footer in other languages"),
        default=dict,
        blank=True,
        help_text=_(
            "Per language code, the footer HTML, footer address, legal text and help link "
            "that emails in that language show instead of the ones above, e.g. "
            '{"fr": {"legal_text": "Vous recevez cet e-mail car..."}}. A blank or missing '
            "value keeps the default one."
        ),
    )

    class Meta:
        abstract = True


class LayoutRevision(LayoutFields, Revision):
    """An immutable snapshot of a layout, recorded on every save that changes it."""

    OWNER_FIELD = "layout"

    layout = models.ForeignKey(
        "transactional_mail.Layout",
        on_delete=models.SET_NULL,
        null=True,
        related_name="revisions",
        verbose_name=_("layout"),
    )

    class Meta:
        verbose_name = _("layout revision")
        verbose_name_plural = _("layout revisions")
        ordering = ["layout", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["layout", "number"], name="transactional_mail_layoutrevision_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} #{self.number}"


class Layout(LayoutFields, Revisioned):
    """A branded shell: HTML with a content slot, CSS, logo, colours and footer."""

    REVISION_FIELDS = (
        "name",
        "html",
        "css",
        "logo_url",
        "primary_color",
        "background_color",
        "text_color",
        "font_family",
        "footer_html",
        "footer_address",
        "legal_text",
        "help_url",
        "translations",
    )
    #: What restoring an old revision copies back: all but the name, which is unique.
    RESTORED_FIELDS = REVISION_FIELDS[1:]

    logo_file = models.FileField(
        _("logo upload"),
        upload_to="transactional_mail/logos/",
        max_length=300,
        blank=True,
        validators=[FileExtensionValidator(LOGO_EXTENSIONS)],
        help_text=_(
            "A PNG, JPEG, GIF or WebP image of at most 1 MB, stored in the site's default "
            "storage; saving puts its URL in the logo URL."
        ),
    )
    current_revision = revision_pointer(
        LayoutRevision,
        _("current revision"),
        _("The latest revision: the draft, when it is not the published one."),
    )
    published_revision = revision_pointer(
        LayoutRevision, _("published revision"), _("The revision emails are rendered in.")
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("layout")
        verbose_name_plural = _("layouts")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["name"], name="transactional_mail_layout_name_unique")
        ]
        permissions = [("publish_layout", _("Can publish layout"))]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.validate_sources()
        self._store_logo()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        self.validate_sources()
        self._logo_problem()

    def _logo_problem(self) -> None:
        """Refuse a new upload that is too big, not an image of an allowed type, or that
        the storage would serve from a relative URL (``MEDIA_URL = "/media/"``): mail
        clients need an absolute one."""
        upload = self.logo_file
        if not upload or upload._committed:
            return
        if upload.size > LOGO_MAX_BYTES:
            raise ValidationError({"logo_file": _("The logo is over 1 MB: email clients "
                                                  "load it for every reader.")})
        upload.file.seek(0)
        head = upload.file.read(16)
        upload.file.seek(0)
        if logo_image_type(head) is None:  # the extension is only the name's claim
            raise ValidationError({"logo_file": _(
                "The logo is not a PNG, JPEG, GIF or WebP image (its content is not, "
                "whatever its name says).")})
        probe = upload.storage.url(upload.field.generate_filename(self, "logo.png"))
        if not probe.startswith(("https://", "http://")):
            raise ValidationError({"logo_file": _(
                "The site's storage serves files from %(url)s, a relative URL that mail "
                "clients cannot load. Set MEDIA_URL (or the storage's base URL) to an "
                "absolute URL, or give the logo URL instead."
            ) % {"url": probe}})

    def _store_logo(self) -> None:
        """Store a new upload and make its URL the logo URL (which revisions record)."""
        upload = self.logo_file
        if not upload or upload._committed:
            return
        self._logo_problem()
        upload.save(upload.name, upload.file, save=False)
        self.logo_url = upload.url

    def validate_sources(self) -> None:
        """Refuse a layout the restricted template engine would not accept, one whose
        stylesheets would load a resource, or one whose render goes over budget."""
        from functools import partial

        from ..rendering.validation import (
            validate_css_source,
            validate_html_source,
            validate_layout_budget,
            validate_layout_source,
            validate_translations,
        )

        errors = {}
        # The footer before the CSS: checking the CSS renders the footer (brand.footer_html),
        # so a footer that does not compile is reported on its field, not raised from there.
        for field, validate in (
            ("html", validate_layout_source),
            ("footer_html", validate_html_source),
            ("css", partial(validate_css_source, layout=self)),
        ):
            if field == "css" and "footer_html" in errors:
                continue
            try:
                validate(getattr(self, field), field_name=field)
            except ValidationError as err:
                # Keyed by the field at fault: the CSS renders the footer, for instance.
                for key, messages in err.message_dict.items():
                    errors.setdefault(key, []).extend(messages)
        try:
            validate_translations(self)
        except ValidationError as err:
            errors.setdefault("translations", []).extend(err.messages)
        if not errors:
            try:
                validate_layout_budget(self)
            except ValidationError as err:
                errors = err.message_dict
        if errors:
            raise ValidationError(errors)
