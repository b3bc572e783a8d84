from django.contrib import admin

from ..models import Suppression


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["address", "category", "reason", "source", "created_at"]
    list_filter = ["reason", "category"]
    search_fields = ["address"]
    readonly_fields = ["email", "created_at"]
