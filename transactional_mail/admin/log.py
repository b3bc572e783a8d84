from django.contrib import admin

from ..models import Email, EmailEvent


class EmailEventInline(admin.TabularInline):
    model = EmailEvent
    fields = ["event_type", "timestamp", "recipient", "description", "hard_bounce", "received_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["received_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Email)
class EmailAdmin(admin.ModelAdmin):
    """The send log: view only. The app never deletes or edits an Email from here."""

    list_display = ["id", "template_key", "to", "subject", "status", "attempts", "created_at"]
    list_filter = ["status", "template_key", "esp_name"]
    search_fields = ["=id", "esp_message_id", "subject", "to"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # COUNT(*) on millions of rows is slow
    inlines = [EmailEventInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
