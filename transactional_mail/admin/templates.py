from django.contrib import admin
from django.utils.translation import gettext, ngettext

from ..models import EmailTemplate, TemplateRevision
from ..rendering.preview import missing_variables
from . import real_objects
from .deliverability import LINK_PLACEHOLDERS, deliverability_warnings
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
    diff_fields = ("subject", "preheader", "html", "text")

    def publish_problem(self, obj) -> str:
        problem = super().publish_problem(obj)
        layout = obj.current_revision.layout if obj.current_revision_id else None
        if not problem and layout is not None and layout.published_revision_id is None:
            # Emails would fail: delivery needs the layout's published revision.
            return gettext("its layout %(layout)s has never been published; publish the "
                           "layout first.") % {"layout": layout}
        return problem

    #: At most this many missing variables are named in a publish warning.
    MAX_NAMED_MISSING = 10

    def publish_warnings(self, obj) -> list[str]:
        """The variables the published revision uses that its sample context lacks, and
        those the context its trigger builds lacks (see ``real_objects.trigger_context``):
        each would render as nothing; then its deliverability lint
        (``deliverability.deliverability_warnings``)."""
        sample = obj.sample_context if isinstance(obj.sample_context, dict) else {}
        # The app gives every email its unsubscribe and preferences links.
        sample = {**LINK_PLACEHOLDERS, **sample}
        warnings = [self._missing_warning(obj, sample, gettext("its sample context"), (
            gettext("If a real email's context lacks it too, it renders as nothing; check "
                    "the spelling, or add it to the sample context."),
            gettext("If a real email's context lacks them too, they render as nothing; "
                    "check the spelling, or add them to the sample context.")))]
        bound = real_objects.trigger_context(obj.key)
        if bound is not None:
            warnings.append(self._missing_warning(
                obj, {**LINK_PLACEHOLDERS, **bound.context}, bound.source, (
                gettext("Real emails render it as nothing: check the spelling, or add it "
                        "to the trigger's context."),
                gettext("Real emails render them as nothing: check the spelling, or add "
                        "them to the trigger's context."))))
        return [warning for warning in warnings if warning] + deliverability_warnings(obj)

    def _missing_warning(self, obj, context: dict, context_name: str,
                         advice: tuple[str, str]) -> str:
        revision = obj.current_revision
        missing = [
            (message, part)
            for part in ("subject", "preheader", "html", "text")
            for message in missing_variables(getattr(revision, part) or "", context, part,
                                             context_name)
        ]
        if not missing:
            return ""
        named = [
            "{} ({}{})".format(message.message.split(" is not in", 1)[0], part,
                               f", line {message.line}" if message.line else "")
            for message, part in missing[: self.MAX_NAMED_MISSING]
        ]
        if len(missing) > self.MAX_NAMED_MISSING:
            named.append(gettext("and %(n)s more") % {
                "n": len(missing) - self.MAX_NAMED_MISSING})
        return ngettext(
            "%(obj)s: revision #%(number)s uses a variable that %(context)s does not "
            "have: %(names)s. %(advice)s",
            "%(obj)s: revision #%(number)s uses %(count)s variables that %(context)s does "
            "not have: %(names)s. %(advice)s",
            len(missing)) % {"obj": obj, "number": revision.number, "count": len(missing),
                             "context": context_name, "names": ", ".join(named),
                             "advice": advice[len(missing) > 1]}
