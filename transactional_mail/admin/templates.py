from django.contrib import admin
from django.utils.translation import gettext

from ..models import EmailTemplate, TemplateRevision
from .editor import TemplateEditorMixin
from .history import RevisionsAdminMixin, UnpublishedFilter


class TemplateRevisionInline(admin.TabularInline):
    model = TemplateRevision
    fields = ["number", "subject", "created_at", "created_by", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["-number"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(EmailTemplate)
class EmailTemplateAdmin(TemplateEditorMixin, RevisionsAdminMixin, admin.ModelAdmin):
    list_display = ["key", "language", "subject", "layout", "category", "unpublished_changes",
                    "updated_at"]
    list_filter = [UnpublishedFilter, "language", "category", "layout"]
    search_fields = ["key", "subject"]
    readonly_fields = ["current_revision", "published_revision", "updated_at"]
    inlines = [TemplateRevisionInline]
    diff_fields = ("subject", "html", "text")

    def publish_problem(self, obj) -> str:
        problem = super().publish_problem(obj)
        layout = obj.current_revision.layout if obj.current_revision_id else None
        if not problem and layout is not None and layout.published_revision_id is None:
            # Emails would fail: delivery needs the layout's published revision.
            return gettext("its layout %(layout)s has never been published; publish the "
                           "layout first.") % {"layout": layout}
        return problem
