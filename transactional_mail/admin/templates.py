from django.contrib import admin

from ..models import EmailTemplate, TemplateRevision
from .editor import TemplateEditorMixin


class TemplateRevisionInline(admin.TabularInline):
    model = TemplateRevision
    fields = ["number", "subject", "created_at", "created_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["-number"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(EmailTemplate)
class EmailTemplateAdmin(TemplateEditorMixin, admin.ModelAdmin):
    list_display = ["key", "language", "subject", "layout", "category", "updated_at"]
    list_filter = ["language", "category", "layout"]
    search_fields = ["key", "subject"]
    readonly_fields = ["current_revision", "updated_at"]
    inlines = [TemplateRevisionInline]
