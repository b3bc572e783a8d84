from django.contrib import admin

from ..models import Layout


@admin.register(Layout)
class LayoutAdmin(admin.ModelAdmin):
    list_display = ["name", "current_revision", "updated_at"]
    search_fields = ["name"]
    readonly_fields = ["current_revision", "updated_at"]
