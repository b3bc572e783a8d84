import django
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db import models

from ..models import Layout
from .history import RevisionsAdminMixin, UnpublishedFilter
from .layout_preview import LayoutPreviewMixin
from .layout_translations import (
    LayoutForm,
    translated_value_display,
    translation_fieldsets,
    translation_languages,
)


@admin.register(Layout)
class LayoutAdmin(LayoutPreviewMixin, RevisionsAdminMixin, admin.ModelAdmin):
    list_display = ["name", "current_revision", "unpublished_changes", "updated_at"]
    list_filter = [UnpublishedFilter]
    search_fields = ["name"]
    readonly_fields = ["current_revision", "published_revision", "updated_at"]
    diff_fields = ("html", "css", "footer_html", "footer_address", "legal_text",
                   "translations")
    form = LayoutForm
    exclude = ["translations"]  # edited through one fieldset per language

    def __getattr__(self, name: str):
        # A user with view permission only sees the translated values read-only: the
        # admin looks each field name up on the model admin for its value.
        if name.startswith("translation__"):
            return translated_value_display(name)
        raise AttributeError(name)

    def get_fieldsets(self, request, obj=None):
        return [*super().get_fieldsets(request, obj),
                *translation_fieldsets(translation_languages(obj, request))]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if kwargs.get("fields") is None and "fields" not in kwargs:
            kwargs["fields"] = flatten_fieldsets(self.get_fieldsets(request, obj))
        if kwargs.get("fields"):  # the translated values are the form's own fields
            kwargs["fields"] = [name for name in kwargs["fields"]
                                if not name.startswith("translation__")]
        form = super().get_form(request, obj, change=change, **kwargs)
        languages = tuple(translation_languages(obj, request))
        return type(form.__name__, (form,), {"languages": languages})

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.URLField) and django.VERSION >= (5, 0):
            # A link typed without a scheme is https (Django 6.0's default; 5.x warns).
            kwargs.setdefault("assume_scheme", "https")
        return super().formfield_for_dbfield(db_field, request, **kwargs)
