"""The layout preview of the layout change form: the layout as typed, around a sample.

A mixin for :class:`~transactional_mail.admin.layouts.LayoutAdmin`. It adds ``preview/``:
POST the layout's unsaved fields and translated footer values (and optionally
``template``, the id of an email template to show in it instead of the built-in sample;
``language``, the language to show the sample in; ``logo_file``, a logo chosen for
upload and not saved yet), get JSON back from
:func:`~transactional_mail.rendering.layout_preview.preview_layout` (the worker's renderer,
under its budget): the HTML in light mode, the same in dark mode, or the errors with
their field and line. ``layout-preview.js`` posts while staff type and shows the HTML in
sandboxed iframes at desktop and mobile widths.

Needs the layout's view (or add) permission; a chosen template also needs the template's
view permission (its draft is shown). POST only, CSRF-protected (the admin's views are),
and a request the browser says is cross-site (``Sec-Fetch-Site``) is refused.

The logo is received by :class:`LogoUploadHandler`, in memory: the upload stops one byte
past ``LOGO_MAX_BYTES`` (the preview then says the logo is over 1 MB), so a big post is
neither received whole nor spooled to a temporary file.
"""

from __future__ import annotations

from io import BytesIO

from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, JsonResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from ..categories import get_category
from ..models import EmailTemplate
from ..rendering.brand import LOGO_MAX_BYTES
from ..rendering.layout_preview import LAYOUT_FIELDS, preview_layout
from ..subscriptions import preview_links
from .layout_translations import language_name, posted_translations, translation_languages

__all__ = ["LayoutPreviewMixin", "LogoUploadHandler", "MAX_TEMPLATE_CHOICES"]

#: At most this many templates are offered as the preview's content.
MAX_TEMPLATE_CHOICES = 200


class LogoUploadHandler(FileUploadHandler):
    """Receive the preview's logo in memory, and stop the upload one byte past
    ``LOGO_MAX_BYTES``.

    The only handler of the preview request: nothing goes to a temporary file. One file,
    ``logo_file``, is received (the layout form's); another file field stops the upload.
    Over the limit, the upload stops without reading the rest of the request (the
    browser may then see the connection reset), and :attr:`oversize` holds the first
    ``LOGO_MAX_BYTES + 1`` bytes: enough to refuse the logo as over 1 MB.
    """

    field = "logo_file"

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.content: BytesIO | None = None
        self.oversize: bytes | None = None

    def new_file(self, field_name, *args, **kwargs) -> None:
        if field_name != self.field or self.content is not None:
            raise StopUpload(connection_reset=True)
        super().new_file(field_name, *args, **kwargs)
        self.content = BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        room = LOGO_MAX_BYTES + 1 - start
        if len(raw_data) >= room:
            self.oversize = self.content.getvalue() + raw_data[:room]
            raise StopUpload(connection_reset=True)
        self.content.write(raw_data)

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        self.content.seek(0)
        return InMemoryUploadedFile(self.content, self.field_name, self.file_name,
                                    self.content_type, file_size, self.charset,
                                    self.content_type_extra)


def _can_view_templates(request: HttpRequest) -> bool:
    opts = EmailTemplate._meta
    return any(request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
               for action in ("view", "change"))


class LayoutPreviewMixin:
    """The live preview of the layout change form."""

    change_form_template = "admin/transactional_mail/layout/change_form.html"

    class Media:
        css = {"all": ["transactional_mail/editor.css"]}
        js = ["transactional_mail/preview-client.js", "transactional_mail/layout-preview.js"]

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_preview"
        return [
            path("preview/", self.admin_site.admin_view(self.layout_preview_view), name=name),
            *super().get_urls(),
        ]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        site = self.admin_site.name
        templates = []
        if _can_view_templates(request):
            # One more than shown, to know whether the list is cut.
            templates = list(EmailTemplate.objects.order_by("key", "language")
                             .values_list("pk", "key", "language")[:MAX_TEMPLATE_CHOICES + 1])
        extra_context = {
            "tm_layout_preview_url": reverse(
                f"{site}:{self.opts.app_label}_{self.opts.model_name}_preview"),
            "tm_layout_preview_templates": [
                (pk, f"{key} ({language})" if language else key)
                for pk, key, language in templates[:MAX_TEMPLATE_CHOICES]
            ],
            # When the list is cut: how many it shows.
            "tm_layout_preview_templates_cut": (MAX_TEMPLATE_CHOICES
                                                if len(templates) > MAX_TEMPLATE_CHOICES else 0),
            "tm_layout_preview_languages": [
                (code, language_name(code))
                for code in translation_languages(self.get_object(request, object_id)
                                                  if object_id else None, request)
            ],
            **(extra_context or {}),
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _error(message: str, status: int = 400, code: str = "invalid") -> JsonResponse:
        return JsonResponse(
            {"errors": [{"code": code, "message": message, "part": "", "line": None}]},
            status=status,
        )

    @method_decorator(csrf_exempt)
    def layout_preview_view(self, request: HttpRequest) -> JsonResponse:
        """Render the posted, unsaved layout; JSON: subject, html, dark_html, errors."""
        # The upload handler must be set before the POST is read, and the CSRF check
        # reads it: exempt from the admin's check, checked here once the handler is set.
        logo = LogoUploadHandler(request)
        request.upload_handlers = [logo]
        return csrf_protect(require_POST(
            lambda request: self._layout_preview(request, logo)))(request)

    def _layout_preview(self, request: HttpRequest, logo_handler: LogoUploadHandler
                        ) -> JsonResponse:
        # Whoever can open a layout's form (view, change, or add only) sees its preview.
        if not (self.has_view_permission(request) or self.has_add_permission(request)):
            raise PermissionDenied
        # CSRF covers forged posts; this also refuses what the browser marks cross-site.
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in {"same-origin", "none"}:
            raise PermissionDenied
        template = context = language = None
        chosen = request.POST.get("template", "")
        if chosen:
            if not _can_view_templates(request):
                return self._error(_("Previewing a template needs the permission to view "
                                     "email templates."), status=403, code="permission")
            try:
                found = (EmailTemplate.objects.select_related("current_revision")
                         .get(pk=int(chosen)))
            except (ValueError, EmailTemplate.DoesNotExist):
                return self._error(_("That email template does not exist."))
            # The template's draft (what its editor shows), with its sample context.
            template = found.current_revision or found
            context = found.sample_context if isinstance(found.sample_context, dict) else {}
            language = found.language or None
        values = {name: request.POST.get(name, "") for name in LAYOUT_FIELDS}
        values["translations"] = posted_translations(request.POST)
        if template is None:
            language = (request.POST.get("language") or "")[:20] or None
        upload = request.FILES.get(LogoUploadHandler.field)
        # At most one byte over the limit: enough for preview_layout to refuse it.
        logo = upload.read() if upload is not None else logo_handler.oversize
        # The chosen template's category decides whether the unsubscribe line shows.
        links = preview_links(get_category(found.category if template is not None else ""))
        result = preview_layout(values, template=template, context=context, language=language,
                                logo=logo, links=links)
        return JsonResponse(result.as_dict())
