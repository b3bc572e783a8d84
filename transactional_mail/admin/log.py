"""The send log: read-only, fast at millions of rows, with staff actions that are
permission-checked and recorded in the admin's LogEntry.

The list's filters, paginator and searches are in ``log_queries``; the detail page and
the per-recipient page are views of this ModelAdmin (``log_pages``).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Q
from django.db.models.constants import LOOKUP_SEP
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .. import resending
from ..models import Email, EmailStatus
from ..models.log import CLAIMABLE_STATUSES, redact_final
from . import log_pages, log_queries, privacy
from .log_queries import (
    CappedPaginator,
    CategoryFilter,
    CreatedRangeFilter,
    ScheduleRunFilter,
    TemplateFilter,
    TestFilter,
    TriggerFilter,
    search,
)
from .view_only import ViewOnlyAdmin

#: Columns the list never loads: bodies, context and attachments are big and personal.
_HEAVY_FIELDS = ("html_compressed", "text_compressed", "context", "attachments", "headers",
                 "metadata")


#: The fields a URL of the list may filter on (Django's admin allows any field by default).
_FILTERABLE_FIELDS = {"id", "status", "template_key", "trigger_key", "category", "language",
                      "is_test", "created_at", "sent_at", "esp_name", "esp_message_id",
                      "source_content_type", "source_object_id", "template_revision",
                      *CreatedRangeFilter.parameters, ScheduleRunFilter.parameter_name}


@admin.register(Email)
class EmailAdmin(ViewOnlyAdmin, admin.ModelAdmin):
    """The send log: view only, plus the resend, retry and cancel actions for staff with
    the app's permissions. The app never deletes or edits an Email from here."""

    list_display = ["id", "template_key", "recipients", "subject", "status", "is_test",
                    "attempts", "created_at"]
    list_filter = ["status", TemplateFilter, TriggerFilter, CategoryFilter, CreatedRangeFilter,
                   TestFilter, ScheduleRunFilter]
    # Shown only so the search box appears: get_search_results does the searching.
    search_fields = ["esp_message_id"]
    search_help_text = _("An exact recipient address, an email id or an ESP message id.")
    ordering = ["-created_at", "-id"]
    show_full_result_count = False  # COUNT(*) on millions of rows is slow
    paginator = CappedPaginator
    list_per_page = 100
    actions = ["resend_selected", "retry_failed", "cancel_scheduled", "forget_addresses"]
    if hasattr(admin, "ShowFacets"):  # Django 5.0+: facet counts are a COUNT per choice
        show_facets = admin.ShowFacets.NEVER

    def lookup_allowed(self, lookup, value, request=None):
        """Only the list's own fields may be filtered on from the URL: never the context,
        the bodies or the errors. While an email is on its way its context holds its
        secrets, and ``?context__contains=`` would answer guesses about a reset link one
        character at a time."""
        if lookup.split(LOOKUP_SEP)[0] not in _FILTERABLE_FIELDS:
            return False
        # Django 4.2's takes no request; 5.0 added it.
        extra = () if request is None else (request,)
        return super().lookup_allowed(lookup, value, *extra)

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*_HEAVY_FIELDS)

    def get_search_results(self, request, queryset, search_term):
        return search(queryset, search_term), False

    def has_resend_permission(self, request) -> bool:
        return request.user.has_perm("transactional_mail.resend_email")

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("transactional_mail.cancel_email")

    def has_forget_permission(self, request) -> bool:
        return request.user.has_perm("transactional_mail.forget_address")

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("recipient/", view(self.recipient_view), name=f"{info}_recipient"),
            path("<int:object_id>/attachment/<int:index>/", view(self.attachment_view),
                 name=f"{info}_attachment"),
            path("<int:object_id>/action/<str:action>/", view(self.action_view),
                 name=f"{info}_action"),
            *super().get_urls(),
        ]

    @admin.display(description=_("to"))
    def recipients(self, obj):
        shown = ", ".join(obj.to[:3])
        return f"{shown} (+{len(obj.to) - 3})" if len(obj.to) > 3 else shown

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        changelist = context.get("cl")
        if changelist is not None:
            context.update(self._pagination(changelist, request))
        return response

    def _pagination(self, changelist, request) -> dict:
        paginator = changelist.paginator
        page = changelist.page_num
        term = request.GET.get("q", "").strip()
        return {
            "count_cap": log_queries.COUNT_CAP,
            "capped": paginator.capped,
            "estimated_total": (paginator.estimated_total()
                                if paginator.capped and not changelist.has_filters
                                and not term else None),
            "previous_url": changelist.get_query_string({"p": page - 1}) if page > 1 else "",
            "next_url": (changelist.get_query_string({"p": page + 1})
                         if page < paginator.num_pages else ""),
            "recipient_url": (
                reverse("admin:transactional_mail_email_recipient") + "?"
                + urlencode({"address": term}) if "@" in term else ""
            ),
        }

    # --- the pages ---------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return log_pages.detail(self, request, object_id)

    def recipient_view(self, request):
        return log_pages.recipient(self, request)

    def attachment_view(self, request, object_id, index):
        return log_pages.attachment(self, request, object_id, index)

    def action_view(self, request, object_id, action):
        return log_pages.action(self, request, object_id, action)

    # --- actions ----------------------------------------------------------------------

    @admin.action(permissions=["resend"], description=_("Resend (also emails already sent)"))
    def resend_selected(self, request, queryset):
        return self.resend(request, queryset, force=True)

    @admin.action(permissions=["resend"], description=_("Retry failed emails"))
    def retry_failed(self, request, queryset):
        return self.resend(request, queryset.filter(status=EmailStatus.FAILED), force=False)

    @admin.action(permissions=["cancel"], description=_("Cancel scheduled or queued emails"))
    def cancel_scheduled(self, request, queryset):
        return self.cancel(request, queryset)

    @admin.action(permissions=["forget"],
                  description=_("Forget the addresses of the selected emails (GDPR erasure)"))
    def forget_addresses(self, request, queryset):
        return privacy.forget_selected(self, request, queryset)

    def resend(self, request, queryset, *, force: bool) -> None:
        """Queue again; each email once however often the button is pressed (see
        ``resending.resend_ids``); one LogEntry per email queued."""
        ids = resending.resend_ids(queryset.order_by(), force=force)
        for email in Email.objects.filter(pk__in=ids).only("pk", "template_key", "to",
                                                           "status"):
            self.log_change(request, email, "Resent" if force else "Retried")
        self.message_user(request, ngettext("%d email queued again.",
                                            "%d emails queued again.", len(ids)) % len(ids),
                          messages.SUCCESS if ids else messages.WARNING)
        refused = resending.with_secrets(queryset.order_by()).values_list("pk", "secret_keys")
        for pk, secret_keys in refused[:20]:
            self.message_user(request, _("Email %(id)s not queued again: %(reason)s.") % {
                "id": pk, "reason": resending.secrets_reason(secret_keys)}, messages.WARNING)

    def cancel(self, request, queryset) -> None:
        """Cancel the emails no worker has claimed: one conditional UPDATE per email
        (``status IN ('queued', 'scheduled')``), so a worker that claimed it first wins and
        the email is not logged as cancelled."""
        now = timezone.now()
        note = f"Cancelled in the admin by {request.user.get_username()}."
        cancelled = []
        candidates = queryset.order_by().filter(status__in=CLAIMABLE_STATUSES)
        for email in candidates.only("pk", "template_key", "to", "status"):
            with transaction.atomic():
                done = Email.objects.filter(Q(pk=email.pk), status__in=CLAIMABLE_STATUSES).update(
                    status=EmailStatus.CANCELLED, status_changed_at=now, last_error=note
                )
                if done:  # never rendered again: its secrets go with the status write
                    redact_final(Email.objects.filter(pk=email.pk))
            if done:
                email.status = EmailStatus.CANCELLED
                self.log_change(request, email, "Cancelled")
                cancelled.append(email.pk)
        self.message_user(request, ngettext("%d email cancelled.", "%d emails cancelled.",
                                            len(cancelled)) % len(cancelled),
                          messages.SUCCESS if cancelled else messages.WARNING)
