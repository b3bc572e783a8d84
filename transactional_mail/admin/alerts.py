"""Operator alerts in the admin: a read-only list, and the banner on the admin index."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from ..models import Alert

#: The admin index template that adds the alerts banner (it extends admin/index.html).
INDEX_TEMPLATE = "admin/transactional_mail/index.html"


def show_alerts_on_index(site: admin.AdminSite) -> None:
    """Show the alerts banner on ``site``'s index, unless the site has its own index
    template (it then places ``{% transactional_mail_alerts %}`` itself)."""
    if site.index_template is None:
        site.index_template = INDEX_TEMPLATE


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """The alerts the beat task keeps, active and resolved; written only by the task."""

    list_display = ["kind", "severity", "is_active", "raised_at", "checked_at", "notified_at",
                    "resolved_at"]
    list_filter = ["severity", ("resolved_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["kind", "severity", "message", "value", "threshold", "raised_at",
                       "checked_at", "notified_at", "notified_severity", "resolved_at"]

    @admin.display(boolean=True, description=_("active"))
    def is_active(self, obj: Alert) -> bool:
        return obj.is_active

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


show_alerts_on_index(admin.site)
