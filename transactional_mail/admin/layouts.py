import django
from django.contrib import admin
from django.db import models

from ..models import Layout
from .history import RevisionsAdminMixin, UnpublishedFilter
from .layout_preview import LayoutPreviewMixin


@admin.register(Layout)
class LayoutAdmin(LayoutPreviewMixin, RevisionsAdminMixin, admin.ModelAdmin):
    list_display = ["name", "current_revision", "unpublished_changes", "updated_at"]
    list_filter = [UnpublishedFilter]
    search_fields = ["name"]
    readonly_fields = ["current_revision", "published_revision", "updated_at"]
    diff_fields = ("html", "css", "footer_html", "footer_address", "legal_text")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.URLField) and django.VERSION >= (5, 0):
            # A link typed without a scheme is https (Django 6.0's default; 5.x warns).
            kwargs.setdefault("assume_scheme", "https")
        return super().formfield_for_dbfield(db_field, request, **kwargs)
