from django.contrib import admin

from ..models import Layout
from .history import RevisionsAdminMixin, UnpublishedFilter


@admin.register(Layout)
class LayoutAdmin(RevisionsAdminMixin, admin.ModelAdmin):
    list_display = ["name", "current_revision", "unpublished_changes", "updated_at"]
    list_filter = [UnpublishedFilter]
    search_fields = ["name"]
    readonly_fields = ["current_revision", "published_revision", "updated_at"]
    diff_fields = ("html", "css", "footer_html", "footer_address", "legal_text")
