"""The send log's queries that stay fast at millions of rows: filters whose choices come
from small tables and settings, a date range instead of a date hierarchy, a paginator
that never counts the whole table, and searches that each use an index.
"""

from __future__ import annotations

import datetime
import json
import re

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import JSONField, Q, QuerySet, TextField
from django.db.models.functions import Cast, Lower
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from ..conf import get_setting
from ..models import EmailTemplate, ScheduleRun, Trigger
from ..models.suppression import normalize_address

#: The paginator counts at most this many rows: past it the log says "more than".
COUNT_CAP = 10_000

#: Longer search input is cut: no address or message id is longer.
SEARCH_MAX_LENGTH = 320


class CappedPaginator(Paginator):
    """Counts at most ``COUNT_CAP`` + 1 rows (``SELECT COUNT(*) FROM (... LIMIT n)``), so a
    page of a 5-million-row log never scans the table; ``capped`` says when there are more."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > COUNT_CAP

    def estimated_total(self) -> int | None:
        """PostgreSQL's estimate of the table's rows (``pg_class.reltuples``), or None."""
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                           [queryset.model._meta.db_table])
            row = cursor.fetchone()
        return max(int(row[0]), 0) if row else None


def clean_term(term: str) -> str:
    """Search input made harmless: bounded, one line, no NUL (which PostgreSQL refuses)."""
    return re.sub(r"[\x00-\x1f\x7f]", "", term).strip()[:SEARCH_MAX_LENGTH]


def filter_recipient(queryset: QuerySet, address: str) -> QuerySet:
    """The emails of ``queryset`` whose To holds ``address``, exactly but for case.

    PostgreSQL: JSON containment on the lower-cased ``to``
    (``lower(to::text)::jsonb @> '["ann@example.com"]'``), the expression the GIN index of
    migration 0004 is built on. Elsewhere (SQLite, for development), a text match on the
    JSON of ``to`` with the quotes, so "ann@example.com" does not find "joann@example.com".
    """
    forms = list(dict.fromkeys([address.strip().lower(), normalize_address(address)]))
    if connections[queryset.db].vendor == "postgresql":
        lowered = Cast(Lower(Cast("to", TextField())), JSONField())
        query = Q()
        for form in forms:
            query |= Q(to_lowered__contains=[form])
        return queryset.alias(to_lowered=lowered).filter(query)
    query = Q()
    for form in forms:
        query |= Q(to__icontains=json.dumps(form))
    return queryset.filter(query)


def search(queryset: QuerySet, term: str) -> QuerySet:
    """An address finds its emails (To), a number an email id or ESP message id, anything
    else an ESP message id: every search uses an index, none a ``LIKE '%...%'``."""
    term = clean_term(term)
    if not term:
        return queryset
    if "@" in term:
        return filter_recipient(queryset, term)
    if term.isdigit() and int(term) < 2**63:
        return queryset.filter(Q(pk=int(term)) | Q(esp_message_id=term))
    return queryset.filter(esp_message_id=term)


class _ChoicesFilter(admin.SimpleListFilter):
    """An exact filter on ``field_name`` whose choices come from a small source."""

    field_name = ""

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field_name: value}) if value else queryset


class TemplateFilter(_ChoicesFilter):
    title = _("template")
    parameter_name = field_name = "template_key"

    def lookups(self, request, model_admin):
        keys = EmailTemplate.objects.order_by("key").values_list("key", flat=True).distinct()
        return [(key, key) for key in keys]


class TriggerFilter(_ChoicesFilter):
    title = _("trigger")
    parameter_name = field_name = "trigger_key"

    def lookups(self, request, model_admin):
        keys = {*(get_setting("TRIGGERS") or {}), *Trigger.objects.values_list("key", flat=True)}
        return [(key, key) for key in sorted(keys)]


class CategoryFilter(_ChoicesFilter):
    title = _("category")
    parameter_name = field_name = "category"

    def lookups(self, request, model_admin):
        categories = (EmailTemplate.objects.exclude(category="").order_by("category")
                      .values_list("category", flat=True).distinct())
        return [(category, category) for category in categories]


class TestFilter(admin.SimpleListFilter):
    title = _("test email")
    parameter_name = "is_test"

    def lookups(self, request, model_admin):
        return [("1", _("test emails")), ("0", _("real emails"))]

    def queryset(self, request, queryset):
        if self.value() in ("0", "1"):
            return queryset.filter(is_test=self.value() == "1")
        return queryset


class CreatedRangeFilter(admin.ListFilter):
    """Created from / to (dates, both ends included, in the current time zone): a range on
    the ``created_at`` index, where a date hierarchy would scan for its years and months."""

    title = _("created")
    template = "admin/transactional_mail/email/date_range_filter.html"
    parameters = ("created_from", "created_to")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.values: dict[str, datetime.date] = {}
        self.used_parameters = {}
        for name in self.parameters:
            if name not in params:
                continue
            value = params.pop(name)
            value = value[-1] if isinstance(value, list) else value  # Django 5 gives lists
            try:
                self.values[name] = datetime.date.fromisoformat(str(value)[:10])
            except ValueError:
                continue  # a hand-edited URL: the filter is ignored, not a server error
            self.used_parameters[name] = value

    def has_output(self) -> bool:
        return True

    def expected_parameters(self):
        return list(self.parameters)

    def queryset(self, request, queryset):
        zone = timezone.get_current_timezone()

        def start_of(day):
            return datetime.datetime.combine(day, datetime.time.min, tzinfo=zone)

        if "created_from" in self.values:
            queryset = queryset.filter(created_at__gte=start_of(self.values["created_from"]))
        if "created_to" in self.values:
            end = self.values["created_to"] + datetime.timedelta(days=1)
            queryset = queryset.filter(created_at__lt=start_of(end))
        return queryset

    def choices(self, changelist):
        kept = [
            (name, value[-1] if isinstance(value, list) else value)
            for name, value in changelist.params.items()
            if name not in self.parameters and name != "p"
        ]
        yield {
            "kept": kept,
            "from": self.values.get("created_from", ""),
            "to": self.values.get("created_to", ""),
            "clear": changelist.get_query_string(remove=[*self.parameters, "p"]),
            "selected": bool(self.values),
        }


class ScheduleRunFilter(admin.SimpleListFilter):
    """The emails of one run of a schedule (``?schedule_run=<id>``, the link on each run in
    the schedule runs admin): a prefix of the idempotency key, on its partial index.

    The URL names the run, never a raw prefix, so it cannot probe other emails' keys; the
    filter shows only while it is in use (there are too many runs to list them)."""

    title = _("schedule run")
    parameter_name = "schedule_run"

    def lookups(self, request, model_admin):
        if self.value() is None:
            return []
        record = self._record()
        # An unknown run still shows, so that its (empty) filter applies and can be cleared.
        return [(self.value(), str(record) if record else _("no such run"))]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        from ..periodic.runs import emails_of

        record = self._record()
        return emails_of(queryset, record) if record else queryset.none()

    def _record(self) -> ScheduleRun | None:
        run_id = schedule_run_id(self.value())
        if run_id is None:
            return None
        if not hasattr(self, "_found"):
            self._found = ScheduleRun.objects.filter(pk=run_id).first()
        return self._found


def schedule_run_id(value: str | None) -> int | None:
    """The run id a URL names, or None when ``value`` is not one: ASCII digits only, as
    ``str.isdigit()`` also accepts "²" (which ``int()`` refuses: a server error) and "١"
    (which it reads as 1), and a bigint."""
    if not (value and value.isascii() and value.isdigit() and int(value) < 2**63):
        return None
    return int(value)
