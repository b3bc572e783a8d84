from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

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
    list_filter = ["status", "outcome_uncertain", "template_key", "trigger_key", "esp_name"]
    search_fields = ["=id", "esp_message_id", "subject", "to"]
    date_hierarchy = "created_at"
    show_full_result_count = False  # COUNT(*) on millions of rows is slow
    inlines = [EmailEventInline]
    # Not editable on the model, so not shown by default: the view-only page adds them.
    readonly_fields = ["created_at", "status_changed_at", "rendered_text", "rendered_html",
                       "revision_link"]

    @admin.display(description=_("rendered from"))
    def revision_link(self, obj):
        revision = obj.template_revision
        if revision is None or revision.template_id is None:
            return str(revision or "—")
        url = reverse("admin:transactional_mail_emailtemplate_revision",
                      args=[revision.template_id, revision.number])
        return format_html('<a href="{}">{}</a>', url, revision)

    @admin.display(description=_("text body (as sent)"))
    def rendered_text(self, obj):
        return format_html("<pre>{}</pre>", obj.text_body) if obj.text_body else "—"

    @admin.display(description=_("HTML body (as sent)"))
    def rendered_html(self, obj):
        if not obj.html_body:
            return "—"
        # A sandbox without scripts: the body is shown, never run, in the admin's origin.
        return format_html('<iframe sandbox srcdoc="{}" style="width:100%;height:480px;'
                           'border:1px solid #ccc"></iframe>', obj.html_body)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
