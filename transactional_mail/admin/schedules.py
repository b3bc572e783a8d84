"""Schedule runs in the admin: how far each period of each periodic email got, its emails
in the send log, and "resume now" for a run that stopped half-way.

Read-only: a run is written by the schedule's worker only. Staff with the change
permission on schedule runs may resume one; they pause a schedule on its
django-celery-beat row, which the list's header links to with each schedule's next due
time.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.apps import apps
from django.contrib import admin, messages
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..conf import get_setting
from ..exceptions import ConfigurationError
from ..models import ScheduleRun, ScheduleRunStatus
from ..periodic.beat import row_name
from ..periodic.definitions import parse_schedule
from ..periodic.periods import next_due_time, period_label
from ..periodic.runs import lease_free
from ..periodic.tasks import resume_schedule_run
from .log_queries import schedule_run_id
from .view_only import ViewOnlyAdmin

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfiguredSchedule:
    """One line of the list's header: a schedule of the settings and its beat row."""

    key: str
    description: str
    next_due: datetime.datetime | None  # None when the definition has a mistake
    #: The next due time as the runs' periods are named (ISO 8601, the schedule's zone).
    next_period: str
    problem: str
    beat_url: str
    enabled: bool | None  # None: no beat row (django-celery-beat missing, not migrated)


class ScheduleKeyFilter(admin.SimpleListFilter):
    """By schedule: the keys of the settings, and the one in the URL (a schedule removed
    from the settings keeps its history). Not a ``SELECT DISTINCT`` over the runs: a
    schedule due every minute records half a million a year."""

    title = _("schedule")
    parameter_name = "schedule_key"

    def lookups(self, request, model_admin):
        configured = get_setting("SCHEDULES") or {}
        keys = {str(key) for key in configured} if isinstance(configured, dict) else set()
        if self.value():
            keys.add(self.value())
        return [(key, key) for key in sorted(keys)]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(schedule_key=value) if value else queryset


@admin.register(ScheduleRun)
class ScheduleRunAdmin(ViewOnlyAdmin, admin.ModelAdmin):
    """Runs of the periodic emails, newest first: view only, plus "resume now"."""

    list_display = ["schedule_key", "period", "status", "progress", "emails_queued",
                    "recipients_skipped", "short_error", "started_at", "finished_at",
                    "lease", "emails_link"]
    list_filter = [ScheduleKeyFilter, "status"]
    search_fields = ["=schedule_key", "=period"]
    ordering = ["-started_at", "-id"]
    show_full_result_count = False
    if hasattr(admin, "ShowFacets"):  # Django 5.0+: facet counts are a COUNT per choice
        show_facets = admin.ShowFacets.NEVER
    actions = ["resume_now"]
    fields = ["schedule_key", "period", "status", "recipients_done", "emails_queued",
              "recipients_skipped", "last_error", "cursor", "lease", "started_at",
              "finished_at", "emails_link"]
    readonly_fields = fields
    change_list_template = "admin/transactional_mail/schedulerun/change_list.html"
    change_form_template = "admin/transactional_mail/schedulerun/change_form.html"

    @admin.display(description=_("progress"))
    def progress(self, obj):
        """Recipients done; the total is not stored (a source counts it when a run starts),
        so a finished run says "all"."""
        if obj.status == ScheduleRunStatus.DONE:
            return _("%(done)s (all)") % {"done": obj.recipients_done}
        return obj.recipients_done

    @admin.display(description=_("last error"))
    def short_error(self, obj):
        error = obj.last_error
        return error if len(error) <= 80 else error[:79] + "…"

    @admin.display(description=_("lease"))
    def lease(self, obj):
        """Who holds the run: a worker until the lease expires; nobody after that (it then
        waits to be resumed, by the schedule's next run or by "resume now")."""
        if obj.lease_token is None or obj.lease_expires_at is None:
            return _("free")
        if obj.lease_expires_at < timezone.now():
            return _("expired %(at)s") % {"at": _local(obj.lease_expires_at)}
        return _("held until %(at)s") % {"at": _local(obj.lease_expires_at)}

    @admin.display(description=_("emails"))
    def emails_link(self, obj):
        url = reverse("admin:transactional_mail_email_changelist") + "?" + urlencode(
            {"schedule_run": obj.pk})
        return format_html('<a href="{}">{}</a>', url, _("in the send log"))

    # --- view only, but for "resume now" -----------------------------------------------

    def has_resume_permission(self, request) -> bool:
        """Resuming changes a run: it needs the change permission on schedule runs, which
        the change form itself never uses (every field is read-only)."""
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(permissions=["resume"],
                  description=_("Resume now (runs that stopped half-way)"))
    def resume_now(self, request, queryset):
        """Enqueue ``resume_schedule_run`` for each selected run that stopped half-way and
        nobody holds; the others are left alone and counted in the message."""
        now = timezone.now()
        stopped = list(queryset.order_by().filter(status=ScheduleRunStatus.RUNNING)
                       .filter(lease_free(now)).only("pk", "schedule_key", "period"))
        configured = get_setting("SCHEDULES") or {}
        resumable = [record for record in stopped if record.schedule_key in configured]
        for record in stopped:
            if record.schedule_key not in configured:
                self.message_user(request, _(
                    "%(run)s not resumed: its schedule is no longer in "
                    "TRANSACTIONAL_MAIL['SCHEDULES'].") % {"run": record}, messages.WARNING)
        for record in resumable:
            self.log_change(request, record, "Resume enqueued")
            transaction.on_commit(lambda pk=record.pk: _enqueue_resume(pk))
        left = queryset.count() - len(stopped)
        self.message_user(request, ngettext(
            "%d run will resume in a worker.", "%d runs will resume in a worker.",
            len(resumable)) % len(resumable), messages.SUCCESS if resumable else messages.WARNING)
        if left:
            self.message_user(request, ngettext(
                "%d run left alone: it is finished, or a worker holds it.",
                "%d runs left alone: they are finished, or a worker holds them.",
                left) % left, messages.INFO)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The run, with a "Resume now" button (the action, for this run) when it stopped
        half-way, nobody holds it and the user may resume."""
        run_id = schedule_run_id(str(object_id))
        resumable = self.has_resume_permission(request) and run_id is not None and (
            ScheduleRun.objects.filter(pk=run_id, status=ScheduleRunStatus.RUNNING)
            .filter(lease_free(timezone.now())).exists())
        extra_context = {**(extra_context or {}), "resumable": resumable}
        return super().change_view(request, object_id, form_url, extra_context)

    # --- the schedules of the settings, above the list ---------------------------------

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "schedules": configured_schedules()}
        return super().changelist_view(request, extra_context)


def configured_schedules() -> list[ConfiguredSchedule]:
    """Each schedule of the settings with its next due time and its beat row (one query
    for all the rows); a definition with a mistake is listed with it, not raised."""
    definitions = get_setting("SCHEDULES") or {}
    if not isinstance(definitions, dict):
        return []
    rows = {}
    if apps.is_installed("django_celery_beat"):
        from django_celery_beat.models import PeriodicTask

        rows = {row.name: row for row in PeriodicTask.objects.filter(
            name__in=[row_name(key) for key in definitions]).only("pk", "name", "enabled")}
    listed = []
    for key, definition in sorted(definitions.items(), key=lambda item: str(item[0])):
        row = rows.get(row_name(key)) if isinstance(key, str) else None
        try:
            schedule = parse_schedule(key, definition)
            next_due, problem = next_due_time(schedule), ""
            next_period = period_label(schedule, next_due)
            description = schedule.description
        except ConfigurationError as err:
            next_due, next_period, problem, description = None, "", str(err), ""
        listed.append(ConfiguredSchedule(
            key=str(key), description=description, next_due=next_due,
            next_period=next_period, problem=problem,
            beat_url=_beat_url(row), enabled=None if row is None else row.enabled))
    return listed


def _beat_url(row) -> str:
    if row is None:
        return ""
    try:
        return reverse("admin:django_celery_beat_periodictask_change", args=[row.pk])
    except NoReverseMatch:  # django-celery-beat's admin not registered on this site
        return ""


def _enqueue_resume(run_id: int) -> None:
    """Publish the resume task; a broker that is down is logged, not raised (the run still
    resumes with the schedule's next run)."""
    queue = get_setting("QUEUE")
    try:
        resume_schedule_run.apply_async((run_id,), **({"queue": queue} if queue else {}))
    except Exception:
        logger.exception("Could not enqueue the resume of schedule run %s (the broker "
                         "unreachable?); it resumes with its schedule's next run.", run_id)


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S")
