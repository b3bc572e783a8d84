"""The template editor: code editors, the live preview and the test send of the change form.

A mixin for :class:`~transactional_mail.admin.templates.EmailTemplateAdmin`, so the
template's own admin (fields, drafts, history) stays in its module. It adds:

* CodeMirror 5 (vendored under ``static/transactional_mail/vendor/``: no build step, no
  CDN) over the subject, HTML and text textareas; without JavaScript they stay textareas;
* ``preview/``: POST the unsaved subject, preheader, HTML, text, layout, language and JSON sample
  context, get JSON back from :func:`~transactional_mail.rendering.preview.preview_email`
  (the worker's renderer, under its budget). Needs the view (or add) permission;
* ``<id>/send-test/``: queue a test email through :func:`transactional_mail.send` (the
  real outbox, logged like any email, tagged ``test``) to one's own address, or to any
  address with the ``send_test_emailtemplate`` permission; at most
  ``TEST_SENDS_PER_MINUTE`` per user;
* for a template bound to a trigger (see :mod:`transactional_mail.admin.real_objects`):
  ``object-search/?template=&q=`` (GET, at most 20 objects of the trigger's model) and a
  ``template_id`` and ``object_id`` posted to ``preview/``, which then renders with the
  context that trigger builds for that object instead of the sample context. Both need
  the send log's view permission too (the context is personal data).

The preview and the test send are POST only, CSRF-protected (the admin's views are) and
refuse a request the browser says is cross-site (``Sec-Fetch-Site``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

from django import forms
from django.contrib.admin.utils import unquote
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import path, reverse
from django.utils.translation import check_for_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .. import api
from ..categories import get_category
from ..exceptions import TransactionalMailError
from ..headers import check_address
from ..models import Email, Layout
from ..models.templates import normalize_language
from ..rendering.preview import PreviewMessage, parse_context, preview_email
from ..rendering.secret_use import template_secret_keys
from ..subscriptions import preview_links
from . import real_objects

__all__ = ["SEND_TEST_PERMISSION", "TEST_SENDS_PER_MINUTE", "TemplateEditorMixin",
           "test_send_rate_key"]

logger = logging.getLogger(__name__)

#: How many test emails one user may queue per minute.
TEST_SENDS_PER_MINUTE = 10
SEND_TEST_PERMISSION = "transactional_mail.send_test_emailtemplate"

_VENDOR = "transactional_mail/vendor/codemirror/"


def _code_widget(mode: str, rows: int) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows, "class": "tm-code", "data-tm-mode": mode,
                                 "spellcheck": "false"})


def _layout_revision_id(draft) -> int | None:
    """The layout revision a test of ``draft`` renders in: its layout as customers see it
    (the published revision), or its draft when the layout was never published."""
    layout = draft.layout if draft is not None else None
    if layout is None:
        return None
    return layout.published_revision_id or layout.current_revision_id


def test_send_rate_key(user_pk: object, window: int) -> str:
    """The cache key counting one user's test sends in one minute (``window``)."""
    return f"transactional_mail:test-send:{user_pk}:{window}"


class TemplateEditorMixin:
    """Code editors, live preview and test send for the email template change form."""

    change_form_template = "admin/transactional_mail/emailtemplate/change_form.html"

    class Media:
        css = {"all": [f"{_VENDOR}codemirror.css", "transactional_mail/editor.css"]}
        js = [
            f"{_VENDOR}codemirror.js",
            f"{_VENDOR}addon/mode/overlay.js",
            f"{_VENDOR}mode/xml/xml.js",
            f"{_VENDOR}mode/javascript/javascript.js",
            f"{_VENDOR}mode/css/css.js",
            f"{_VENDOR}mode/htmlmixed/htmlmixed.js",
            f"{_VENDOR}mode/django/django.js",
            "transactional_mail/preview-client.js",
            "transactional_mail/editor.js",
        ]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        widgets = {"subject": _code_widget("subject", 1), "html": _code_widget("html", 20),
                   "text": _code_widget("text", 10)}
        if db_field.name in widgets:
            kwargs["widget"] = widgets[db_field.name]
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def _url_name(self, action: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{action}"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("preview/", wrap(self.preview_view), name=self._url_name("preview")),
            path("object-search/", wrap(self.object_search_view),
                 name=self._url_name("object_search")),
            path("<path:object_id>/send-test/", wrap(self.send_test_view),
                 name=self._url_name("send_test")),
            *super().get_urls(),
        ]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        site = self.admin_site.name
        extra_context = {
            "tm_preview_url": reverse(f"{site}:{self._url_name('preview')}"),
            "tm_send_test_url": (
                reverse(f"{site}:{self._url_name('send_test')}", args=[object_id])
                if object_id else ""
            ),
            "tm_can_send_anywhere": request.user.has_perm(SEND_TEST_PERMISSION),
            **self._real_object_context(request, object_id),
            **(extra_context or {}),
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _real_object_context(self, request: HttpRequest, object_id: str | None) -> dict:
        """The picker's context on the change form: only for a template bound to a trigger,
        and only for whoever may see the send log (the object's context is personal data)."""
        if not object_id or not request.user.has_perm(real_objects.VIEW_EMAIL_PERMISSION):
            return {}
        template = self.get_object(request, unquote(object_id))
        trigger = real_objects.bound_trigger(template.key) if template is not None else None
        if trigger is None:
            return {}
        fields = real_objects.search_fields(trigger, self.admin_site)
        return {
            "tm_object_search_url": reverse(
                f"{self.admin_site.name}:{self._url_name('object_search')}"),
            "tm_trigger_key": trigger.key,
            "tm_trigger_model": trigger.model._meta.verbose_name,
            "tm_search_fields": ", ".join(field.lstrip("^=@") for field in fields),
        }

    # --- Preview -------------------------------------------------------------------------

    @staticmethod
    def _check_same_origin(request: HttpRequest) -> None:
        # CSRF covers forged posts; this also refuses what the browser marks cross-site.
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in {"same-origin", "none"}:
            raise PermissionDenied

    @staticmethod
    def _context(request: HttpRequest) -> dict:
        return parse_context(request.POST.get("sample_context", ""))

    @staticmethod
    def _language(value: str) -> str | None:
        language = normalize_language(value)
        # check_for_language also refuses what is not a language code (no path tricks).
        return language if language and check_for_language(language) else None

    @staticmethod
    def _layout_revision(value: str):
        if not value:
            return None
        try:
            layout = Layout.objects.select_related("current_revision").get(pk=int(value))
        except (ValueError, Layout.DoesNotExist) as err:
            raise ValidationError(_("That layout does not exist.")) from err
        return layout.current_revision or layout

    @staticmethod
    def _error(message: str, status: int = 400, code: str = "invalid") -> JsonResponse:
        return JsonResponse(
            {"errors": [{"code": code, "message": message, "part": "", "line": None}]},
            status=status,
        )

    def preview_view(self, request: HttpRequest) -> JsonResponse:
        """Render the posted, unsaved sources; JSON: subject, html, text, warnings, errors."""
        return require_POST(self._preview)(request)

    def _preview(self, request: HttpRequest) -> JsonResponse:
        # Whoever can open a template's form (view, change, or add only) sees its preview.
        if not (self.has_view_permission(request) or self.has_add_permission(request)):
            raise PermissionDenied
        self._check_same_origin(request)
        notes: list[str] = []
        real_context = None
        if request.POST.get("object_id"):
            trigger = self._bound_trigger_or_deny(request, request.POST.get("template_id", ""))
            try:
                real_context, notes = real_objects.object_context(
                    trigger, request.POST["object_id"])
            except real_objects.ObjectProblem as err:
                return self._error(str(err), code="object")
        try:
            context = real_context if real_context is not None else self._context(request)
            layout = self._layout_revision(request.POST.get("layout", ""))
        except ValidationError as err:
            return self._error(err.messages[0], code="context")
        result = preview_email(
            request.POST.get("subject", ""),
            request.POST.get("html", ""),
            request.POST.get("text", ""),
            layout,
            context,
            language=self._language(request.POST.get("language", "")),
            preheader=request.POST.get("preheader", ""),
            secret_keys=template_secret_keys(self._previewed_key(request)),
            **asdict(preview_links(get_category(request.POST.get("category", "")))),
        )
        data = result.as_dict()
        data["variables_source"] = "sample"
        if real_context is not None:
            data["context"] = real_context
            data["variables_source"] = "object"
            for warning in data["warnings"]:
                if warning["code"] == "missing_variable":  # not the sample's: the object's
                    warning["message"] = warning["message"].replace(
                        "the sample context", "this object's context")
            data["warnings"] = [PreviewMessage("object", note).as_dict()
                                for note in notes] + data["warnings"]
        elif not context:
            data.update(self._trigger_variables(request, request.POST.get("template_id", "")))
        return JsonResponse(data)

    def _previewed_key(self, request: HttpRequest) -> str:
        """The key of the template being previewed: the form's (a new template's, or one
        being renamed), else the saved template's."""
        key = request.POST.get("key", "").strip()
        template_id = request.POST.get("template_id", "")
        if key or not template_id:
            return key
        template = self.get_object(request, unquote(template_id))
        return template.key if template is not None else ""

    def _trigger_variables(self, request: HttpRequest, template_id: str) -> dict:
        """For an empty sample context: the variables of the template's trigger's context,
        when its definition declares them (no ``context``, or a list of paths); else a note
        saying a real object shows them. Names only: no object is read."""
        template = self.get_object(request, unquote(template_id)) if template_id else None
        if template is None or not self.has_view_permission(request, template):
            return {}
        trigger = real_objects.bound_trigger(template.key)
        if trigger is None:
            return {}
        paths = real_objects.declared_paths(trigger)
        if paths is None:
            return {"variables_source": "trigger", "variables_note": _(
                "The sample context is empty, and the trigger “%(key)s” builds its context "
                "with code: pick a real object to see its variables, or write a sample "
                "context.") % {"key": trigger.key}}
        return {"variables": list(paths), "variables_source": "trigger",
                "variables_note": _("The sample context is empty: these are the variables "
                                    "the trigger “%(key)s” declares.") % {"key": trigger.key}}

    # --- A real object's context -------------------------------------------------------

    def _bound_trigger_or_deny(self, request: HttpRequest, template_id: str):
        """The trigger the template ``template_id`` is bound to; PermissionDenied without
        the template's view and the send log's view permissions, Http404 without one."""
        if not request.user.has_perm(real_objects.VIEW_EMAIL_PERMISSION):
            raise PermissionDenied
        template = self.get_object(request, unquote(template_id)) if template_id else None
        if template is None:
            raise Http404(_("No such email template."))
        if not self.has_view_permission(request, template):
            raise PermissionDenied
        trigger = real_objects.bound_trigger(template.key)
        if trigger is None:
            raise Http404(_("No trigger with a model sends this template."))
        return trigger

    def object_search_view(self, request: HttpRequest) -> JsonResponse:
        """At most 20 objects of the template's trigger's model matching ``q`` (by id, or
        by the site's admin search fields for that model); JSON ``{"results": [...]}``."""
        if request.method != "GET":
            return self._error(_("Use GET."), status=405, code="method")
        self._check_same_origin(request)
        trigger = self._bound_trigger_or_deny(request, request.GET.get("template", ""))
        return JsonResponse({
            "model": str(trigger.model._meta.verbose_name),
            "trigger": trigger.key,
            "results": real_objects.search_objects(trigger, request.GET.get("q", ""),
                                                   self.admin_site),
        })

    # --- Test send -----------------------------------------------------------------------

    def send_test_view(self, request: HttpRequest, object_id: str) -> JsonResponse:
        """Queue a test email of the saved template to the user (or, with the permission,
        to any address); JSON: ``{"message": ..., "email_id": ...}`` or ``errors``."""
        return require_POST(self._send_test)(request, object_id)

    def _send_test(self, request: HttpRequest, object_id: str) -> JsonResponse:
        template = self.get_object(request, unquote(object_id))
        if template is None or not self.has_view_permission(request, template):
            raise PermissionDenied
        self._check_same_origin(request)
        own = (request.user.email or "").strip()
        to = (request.POST.get("to") or "").strip() or own
        if not to:
            return self._error(_("Your account has no email address: add one to your user "
                                 "to receive test emails."))
        if to.lower() != own.lower() and not request.user.has_perm(SEND_TEST_PERMISSION):
            return self._error(_("You can send test emails only to your own address (%(own)s).")
                               % {"own": own or _("none set")}, status=403, code="permission")
        try:
            to = check_address("to", to)
            context = self._context(request)
        except (ValidationError, TransactionalMailError, ValueError) as err:
            message = err.messages[0] if isinstance(err, ValidationError) else str(err)
            return self._error(message)
        window = int(time.time() // 60)
        key = test_send_rate_key(request.user.pk, window)
        cache.add(key, 0, 120)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, 120)
            count = 1
        if count > TEST_SENDS_PER_MINUTE:
            return self._error(_("At most %(n)s test emails a minute: wait a moment.")
                               % {"n": TEST_SENDS_PER_MINUTE}, status=429, code="rate_limited")
        draft = template.current_revision
        try:
            with transaction.atomic():
                email = api.send(
                    template.key, to, context,
                    language=template.language or None,
                    tags=["test"],
                    is_test=True,
                    metadata={"test": "1", "template_id": str(template.pk),
                              "revision_id": str(template.current_revision_id or ""),
                              "sent_by": str(request.user.pk)},
                )
                # A test renders this template's draft, not the published revision the
                # worker would choose: the revisions are pinned on the row before commit.
                Email.objects.filter(pk=email.pk).update(
                    template_revision=draft, layout_revision_id=_layout_revision_id(draft))
        except TransactionalMailError as err:
            return self._error(str(err))
        logger.info("User %s queued test email %s of template %s to %s.",
                    request.user.pk, email.pk, template.pk, to)
        return JsonResponse({
            "message": _("Test email queued to %(to)s (email %(id)s). It renders the last "
                         "saved draft, revision #%(number)s.")
            % {"to": to, "id": email.pk, "number": draft.number if draft else "?"},
            "email_id": email.pk,
        })


