"""Drafts, publishing and revision history in the admin, for templates and layouts.

:class:`RevisionsAdminMixin` adds to a ``ModelAdmin`` of a ``Revisioned`` model: a note
field recorded with the revision a save makes (and its author, from ``request.user``);
an "unpublished changes" column and filter; publishing, as an action and as a button on
the change form (``publish_<model>`` permission, logged in Django's ``LogEntry``, with the
model admin's ``publish_warnings()`` shown as warnings: the publish still happens); and,
under the object's change page, ``revisions/`` (every revision with its author, time,
note and published marker), ``revisions/<number>/`` (one revision's content),
``revisions/diff/?a=&b=`` (a side-by-side diff, escaped) and
``revisions/<number>/restore/`` (POST: the revision's content as a new draft, with
``change`` permission).
"""

from __future__ import annotations

import difflib
import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST


def _diff_text(value) -> str:
    """A revision's value as the lines a diff compares (JSON data indented, keys sorted)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    return str(value or "")


class RevisionNoteForm(forms.ModelForm):
    """A model form with the note recorded on the revision the save makes."""

    revision_note = forms.CharField(
        label=_("note for this revision"),
        required=False,
        max_length=500,
        help_text=_("Optional: what changed and why, shown in the history."),
    )


class UnpublishedFilter(admin.SimpleListFilter):
    title = _("unpublished changes")
    parameter_name = "unpublished"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        unpublished = Q(published_revision__isnull=True) | ~Q(
            current_revision=F("published_revision")
        )
        if self.value() == "yes":
            return queryset.filter(unpublished)
        if self.value() == "no":
            return queryset.exclude(unpublished)
        return queryset


class RevisionsAdminMixin:
    """Publishing and history for the ``ModelAdmin`` of a ``Revisioned`` model."""

    #: The revision fields the diff compares, in order.
    diff_fields: tuple[str, ...] = ()
    form = RevisionNoteForm
    change_form_template = "admin/transactional_mail/revisioned_change_form.html"
    actions = ["publish_selected"]

    # ---- saving: who and why ------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        obj.revision_author = request.user
        obj.revision_note = form.cleaned_data.get("revision_note", "")
        super().save_model(request, obj, form, change)

    # ---- publishing ---------------------------------------------------------------------

    def has_publish_permission(self, request, obj=None) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.publish_{opts.model_name}")

    @admin.display(boolean=True, description=_("unpublished changes"))
    def unpublished_changes(self, obj) -> bool:
        return obj.has_unpublished_changes

    def publish_problem(self, obj) -> str:
        """Why ``obj`` cannot be published now, or ``""``."""
        if obj.current_revision_id is None:
            return gettext("It has no saved revision.")
        return ""

    def publish_warnings(self, obj) -> list[str]:
        """What staff should hear about the revision just published (it is published)."""
        return []

    def _publish(self, request, obj) -> bool:
        problem = self.publish_problem(obj)
        if problem:
            self.message_user(request, gettext("%(obj)s was not published: %(problem)s") % {
                "obj": obj, "problem": problem}, messages.ERROR)
            return False
        number = obj.current_revision.number
        if not obj.publish():
            self.message_user(request, gettext("%(obj)s: revision #%(number)s is already "
                                               "published.") % {"obj": obj, "number": number},
                              messages.INFO)
            return False
        self.log_change(request, obj, gettext("Published revision #%(number)s.") % {
            "number": number})
        self.message_user(request, gettext("%(obj)s: revision #%(number)s is published.") % {
            "obj": obj, "number": number}, messages.SUCCESS)
        for warning in self.publish_warnings(obj):
            self.message_user(request, warning, messages.WARNING)
        return True

    @admin.action(permissions=["publish"], description=_("Publish the selected drafts"))
    def publish_selected(self, request, queryset):
        for obj in queryset.select_related("current_revision"):
            self._publish(request, obj)

    def publish_view(self, request, object_id):
        obj = self._object_or_404(request, object_id)
        if not self.has_publish_permission(request, obj):
            raise PermissionDenied
        self._publish(request, obj)
        return HttpResponseRedirect(self._change_url(obj))

    # ---- history ------------------------------------------------------------------------

    def revisions_view(self, request, object_id):
        obj = self._viewable_object(request, object_id)
        revisions = list(obj.revisions.select_related("created_by").order_by("-number"))
        return TemplateResponse(request, "admin/transactional_mail/revisions.html", {
            **self._page_context(request, obj, gettext("Revisions of %s") % obj),
            "revisions": revisions,
            "can_restore": self.has_change_permission(request, obj),
            "newest": revisions[0].number if revisions else None,
            "older": revisions[1].number if len(revisions) > 1 else None,
        })

    def revision_view(self, request, object_id, number):
        obj = self._viewable_object(request, object_id)
        revision = self._revision_or_404(obj, number)
        return TemplateResponse(request, "admin/transactional_mail/revision.html", {
            **self._page_context(request, obj, str(revision)),
            "revision": revision,
            "parts": [(obj._meta.get_field(name).verbose_name, _diff_text(getattr(revision, name)))
                      for name in self.diff_fields],
            "can_restore": self.has_change_permission(request, obj),
        })

    def diff_view(self, request, object_id):
        obj = self._viewable_object(request, object_id)
        try:
            numbers = int(request.GET["a"]), int(request.GET["b"])
        except (KeyError, ValueError):
            raise Http404(gettext("Choose two revisions to compare.")) from None
        old, new = (self._revision_or_404(obj, number) for number in sorted(numbers))
        differ = difflib.HtmlDiff(tabsize=4, wrapcolumn=80)
        parts = []
        for name in self.diff_fields:
            before, after = _diff_text(getattr(old, name)), _diff_text(getattr(new, name))
            # HtmlDiff escapes &, < and > in the lines it shows: a revision's markup is
            # displayed as text, never interpreted by the admin's page.
            table = differ.make_table(before.splitlines(), after.splitlines(),
                                      f"#{old.number}", f"#{new.number}")
            parts.append((obj._meta.get_field(name).verbose_name, before == after,
                          mark_safe(table)))  # escaped by HtmlDiff, see above
        return TemplateResponse(request, "admin/transactional_mail/revision_diff.html", {
            **self._page_context(
                request, obj, gettext("%(obj)s: revision #%(a)s against #%(b)s") % {
                    "obj": obj, "a": old.number, "b": new.number}),
            "old": old,
            "new": new,
            "parts": parts,
        })

    def restore_view(self, request, object_id, number):
        obj = self._object_or_404(request, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        revision = self._revision_or_404(obj, number)
        note = gettext("Restored from revision #%(number)s.") % {"number": number}
        obj.restore_values(revision)
        obj.revision_author, obj.revision_note = request.user, note
        previous = obj.current_revision_id
        try:
            obj.save()
        except ValidationError as err:
            self.message_user(request, gettext(
                "Revision #%(number)s was not restored: %(errors)s") % {
                "number": number, "errors": " ".join(err.messages)}, messages.ERROR)
            return HttpResponseRedirect(self._url(obj, "revisions"))
        if obj.current_revision_id == previous:
            self.message_user(request, gettext(
                "The draft already has the content of revision #%(number)s.") % {
                "number": number}, messages.INFO)
        else:
            self.log_change(request, obj, note)
            self.message_user(request, gettext(
                "Revision #%(number)s is restored as draft #%(draft)s; publish it to send it.")
                % {"number": number, "draft": obj.current_revision.number}, messages.SUCCESS)
        return HttpResponseRedirect(self._change_url(obj))

    # ---- wiring -------------------------------------------------------------------------

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/publish/", wrap(require_POST(self.publish_view)),
                 name=f"{prefix}_publish"),
            path("<path:object_id>/revisions/", wrap(self.revisions_view),
                 name=f"{prefix}_revisions"),
            path("<path:object_id>/revisions/diff/", wrap(self.diff_view),
                 name=f"{prefix}_revision_diff"),
            path("<path:object_id>/revisions/<int:number>/", wrap(self.revision_view),
                 name=f"{prefix}_revision"),
            path("<path:object_id>/revisions/<int:number>/restore/",
                 wrap(require_POST(self.restore_view)), name=f"{prefix}_revision_restore"),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        context["can_publish"] = bool(
            obj is not None and obj.has_unpublished_changes
            and self.has_publish_permission(request, obj)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _object_or_404(self, request, object_id):
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404(gettext("No %(name)s with id %(id)r.") % {
                "name": self.opts.verbose_name, "id": object_id})
        return obj

    def _viewable_object(self, request, object_id):
        obj = self._object_or_404(request, object_id)
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def _revision_or_404(self, obj, number: int):
        revision = obj.revisions.select_related("created_by").filter(number=number).first()
        if revision is None:
            raise Http404(gettext("No revision #%(number)s.") % {"number": number})
        return revision

    def _url(self, obj, name: str) -> str:
        return reverse(f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_"
                       f"{name}", args=[obj.pk], current_app=self.admin_site.name)

    def _change_url(self, obj) -> str:
        return self._url(obj, "change")

    def _page_context(self, request, obj, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "object": obj,
            "original": obj,
            "published_id": obj.published_revision_id,
            "current_id": obj.current_revision_id,
            "revisions_url": self._url(obj, "revisions"),
            "change_url": self._change_url(obj),
        }
