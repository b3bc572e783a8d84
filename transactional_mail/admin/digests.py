"""Digest windows in the admin: what is waiting for which recipient, and when it goes.

Read-only: a window is the state of a digest trigger, written by its events and closed by
the sweep. Staff switch a digest trigger off in the triggers admin.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..models import DigestItem, DigestWindow
from .view_only import ViewOnlyAdmin


class DigestItemInline(admin.TabularInline):
    model = DigestItem
    fields = ["created_at", "context", "email"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DigestWindow)
class DigestWindowAdmin(ViewOnlyAdmin, admin.ModelAdmin):
    """Digest windows, open ones first: view only."""

    list_display = ["trigger_key", "recipient", "digest_key", "waiting", "opened_at",
                    "closes_at", "closed_at", "email_link"]
    list_filter = ["trigger_key", ("closed_at", admin.EmptyFieldListFilter)]
    search_fields = ["=recipient", "digest_key"]
    date_hierarchy = "opened_at"
    ordering = ["-closed_at", "closes_at"]
    inlines = [DigestItemInline]
    readonly_fields = ["trigger_key", "digest_key", "recipient", "template_key", "category",
                       "language", "options", "window_seconds", "opened_at", "closes_at",
                       "closed_at", "email_link"]
    exclude = ["email"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            waiting_count=Count("items", filter=Q(items__email__isnull=True)))

    @admin.display(description=_("events waiting"), ordering="waiting_count")
    def waiting(self, obj):
        return obj.waiting_count

    @admin.display(description=_("digest email"))
    def email_link(self, obj):
        if obj.email_id is None:
            return "—"
        url = reverse("admin:transactional_mail_email_change", args=[obj.email_id])
        return format_html('<a href="{}">#{}</a>', url, obj.email_id)

