"""Suppressions: list, search by address, add with a reason, remove with a reason; each
staff change is kept in ``SuppressionHistory``, which outlives the removed row."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from ..models import EmailEvent, Suppression, SuppressionHistory, SuppressionReason
from ..models.suppression import SuppressionChange, normalize_address
from . import privacy
from .log_queries import CategoryFilter, clean_term


class SuppressionForm(forms.ModelForm):
    note = forms.CharField(label=_("Why"), widget=forms.Textarea(attrs={"rows": 2}),
                           max_length=2000,
                           help_text=_("Kept in the address's history with your name."))

    class Meta:
        model = Suppression
        fields = ["address", "category", "reason"]

    def clean_address(self):
        address = normalize_address(self.cleaned_data["address"])
        if "@" not in address:
            raise forms.ValidationError(_("Enter an email address."))
        return address


class RemovalForm(forms.Form):
    note = forms.CharField(label=_("Why is this address allowed mail again?"),
                           widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)


def record(suppression: Suppression, change: str, note: str, user) -> SuppressionHistory:
    return SuppressionHistory.objects.create(
        address=suppression.address, category=suppression.category, change=change,
        suppression_reason=suppression.reason, note=note, user=user,
    )


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    """Staff add and remove suppressions, never edit one: a changed reason is a removal
    and an addition, both with their reasons in the history."""

    form = SuppressionForm
    list_display = ["address", "category", "reason", "source", "caused_by", "created_at"]
    list_filter = ["reason", CategoryFilter]
    search_fields = ["address"]  # the search box; get_search_results does the searching
    search_help_text = _("An exact address.")
    readonly_fields = ["caused_by", "history", "created_at"]
    actions = ["export_csv"]
    show_full_result_count = False
    if hasattr(admin, "ShowFacets"):
        show_facets = admin.ShowFacets.NEVER

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["address", "category", "reason", "note"]
        return ["address", "category", "reason", "source", "caused_by", "created_at",
                "history"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["address", "category", "reason", "source", "caused_by", "created_at",
                "history"]

    def get_changeform_initial_data(self, request):
        return {"reason": SuppressionReason.MANUAL}

    def get_search_results(self, request, queryset, search_term):
        term = clean_term(search_term)
        if not term:
            return queryset, False
        return queryset.filter(address=normalize_address(term)), False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a removal needs its reason, one by one
        return actions

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("import/", self.admin_site.admin_view(self.import_view), name=f"{info}_import"),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Add the suppressions of an uploaded CSV or ESP export (add permission)."""
        return privacy.import_view(self, request)

    @admin.action(permissions=["view"], description=_("Export as CSV"))
    def export_csv(self, request, queryset):
        return privacy.export_response(queryset)

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            obj.source = obj.source or f"added by {request.user.get_username()}"[:255]
            super().save_model(request, obj, form, change)
            record(obj, SuppressionChange.ADDED, form.cleaned_data["note"], request.user)

    def delete_view(self, request, object_id, extra_context=None):
        """Removal, with a required reason kept in the history (not Django's plain
        confirmation)."""
        suppression = Suppression.objects.filter(pk=unquote(object_id)).first()
        if suppression is None:
            raise Http404
        if not self.has_delete_permission(request, suppression):
            raise PermissionDenied
        form = RemovalForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            with transaction.atomic():
                record(suppression, SuppressionChange.REMOVED, form.cleaned_data["note"],
                       request.user)
                if hasattr(self, "log_deletions"):  # Django 5.1+; log_deletion is gone in 6.0
                    self.log_deletions(request, Suppression.objects.filter(pk=suppression.pk))
                else:
                    self.log_deletion(request, suppression, str(suppression))
                suppression.delete()
            self.message_user(request, _("%(address)s may be mailed again.")
                              % {"address": suppression.address}, messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:transactional_mail_suppression_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Remove the suppression of %(address)s") % {
                "address": suppression.address},
            "subtitle": None,
            "suppression": suppression,
            "form": form,
        }
        return TemplateResponse(request, "admin/transactional_mail/suppression/remove.html",
                                context)

    @admin.display(description=_("caused by"))
    def caused_by(self, obj):
        if obj.email_id is None:
            return "—"
        url = reverse("admin:transactional_mail_email_change", args=[obj.email_id])
        return format_html('<a href="{}">{} {}</a>', url, _("email"), obj.email_id)

    @admin.display(description=_("event"))
    def event(self, obj):
        found = _event(obj)
        if found is None:
            return "—"
        return f"{found.event_type} {found.timestamp or found.received_at}: {found.description}"

    @admin.display(description=_("history"))
    def history(self, obj):
        entries = SuppressionHistory.objects.filter(address=obj.address).select_related("user")
        rows = format_html_join(
            "", "<li>{} {} ({}{}) by {}: {}</li>",
            ((entry.created_at, entry.get_change_display(), entry.get_suppression_reason_display(),
              f", {entry.category}" if entry.category else "",
              entry.user.get_username() if entry.user else "—", entry.note)
             for entry in entries[:100]),
        )
        event = self.event(obj)
        return format_html("<p>{}: {}</p><ul>{}</ul>", _("event"), event, rows or "—")


def _event(suppression: Suppression) -> EmailEvent | None:
    """The tracking event that added ``suppression``: named in its source ("Postmark
    event <id>"), else its email's event for the address."""
    esp_name, separator, event_id = suppression.source.partition(" event ")
    if separator:
        event = EmailEvent.objects.filter(esp_name=esp_name, event_id=event_id).first()
        if event is not None:
            return event
    if suppression.email_id is not None:
        return (EmailEvent.objects.filter(email_id=suppression.email_id,
                                          recipient__iexact=suppression.address)
                .order_by("-received_at").first())
    return None
