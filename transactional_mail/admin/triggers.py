import pprint

from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..conf import get_setting
from ..models import Email, EmailStatus, Trigger
from ..triggers.receivers import sync_trigger_rows

#: Statuses that mean the ESP took the email.
_SENT = [EmailStatus.SENT, EmailStatus.DELIVERED, EmailStatus.DEFERRED, EmailStatus.BOUNCED,
         EmailStatus.COMPLAINED]


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    """Triggers are defined in settings; staff may only switch them on and off."""

    list_display = ["key", "enabled", "template", "event", "emails_sent", "emails_failed"]
    list_editable = ["enabled"]
    list_filter = ["enabled"]
    search_fields = ["key"]
    fields = ["key", "enabled", "definition", "emails_sent", "emails_failed", "updated_at"]
    readonly_fields = ["key", "definition", "emails_sent", "emails_failed", "updated_at"]

    def get_queryset(self, request):
        def count(statuses):
            return Coalesce(Subquery(
                Email.objects.filter(trigger_key=OuterRef("key"), status__in=statuses)
                .values("trigger_key").annotate(n=Count("pk")).values("n")[:1]
            ), 0)

        return super().get_queryset(request).annotate(
            sent_count=count(_SENT), failed_count=count([EmailStatus.FAILED])
        )

    def changelist_view(self, request, extra_context=None):
        sync_trigger_rows()  # a trigger added to settings shows up without a migrate
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # A deleted row comes back enabled on the next sync: that would undo a switch-off.
        return False

    def _definition(self, obj) -> dict:
        return (get_setting("TRIGGERS") or {}).get(obj.key) or {}

    @admin.display(description=_("template"))
    def template(self, obj):
        return self._definition(obj).get("template", "—")

    @admin.display(description=_("event"))
    def event(self, obj):
        definition = self._definition(obj)
        if not definition:
            return _("not in settings any more")
        if definition.get("signal"):
            return definition["signal"].rsplit(".", 1)[-1]
        on = definition.get("on", "")
        if on == "changed":
            change = f"{definition.get('model')} {definition.get('field')} changed"
            if "from_value" in definition:
                change += f" from {definition['from_value']!r}"
            if "to_value" in definition:
                change += f" to {definition['to_value']!r}"
            return change
        return f"{definition.get('model')} {on}"

    @admin.display(description=_("definition (from settings)"))
    def definition(self, obj):
        definition = self._definition(obj)
        return format_html("<pre>{}</pre>", pprint.pformat(definition, sort_dicts=False)
                           if definition else _("not in TRANSACTIONAL_MAIL['TRIGGERS']"))

    @admin.display(description=_("emails sent"))
    def emails_sent(self, obj):
        return obj.sent_count

    @admin.display(description=_("emails failed"))
    def emails_failed(self, obj):
        return obj.failed_count
