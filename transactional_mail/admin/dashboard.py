"""The statistics dashboard: counts, rates, charts and subject A/B tests, per period.

It is the changelist of ``MailStatDay`` in the admin ("Mail statistics"), readable with
the send log's view permission (``transactional_mail.view_email``): the numbers say
nothing about a person, but they are the log's. Promoting a subject variant needs the
permission to change templates, and a POST.
"""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import EmailTemplate, MailStatDay
from ..models.stats import BUCKET_FIELDS, DELIVERY_BUCKETS
from ..subject_variants import LETTERS, variants
from . import charts
from .dashboard_queries import (
    DIMENSIONS,
    Period,
    by_day,
    by_group,
    by_variant,
    percentile,
    rates,
    totals,
    variant_results,
)

#: The default period, in days up to today.
DEFAULT_DAYS = 30
#: The longest period one page shows (ten years of days on one chart is plenty).
MAX_DAYS = 3660
#: In a filter, the value that selects the blank key (emails of no trigger, no category).
NONE_VALUE = "-"

#: The daily chart's series: (counter, legend).
DAILY_SERIES = (("sent", gettext_lazy("sent")), ("delivered", gettext_lazy("delivered")),
                ("opened", gettext_lazy("opened")), ("clicked", gettext_lazy("clicked")),
                ("bounced", gettext_lazy("bounced")),
                ("complained", gettext_lazy("complained")))

#: The label of each rate of ``dashboard_queries.RATES``.
RATE_LABELS = {"delivery": gettext_lazy("delivered"), "bounce": gettext_lazy("bounced"),
               "complaint": gettext_lazy("complained"), "open": gettext_lazy("opened"),
               "click": gettext_lazy("clicked"), "unsubscribe": gettext_lazy("unsubscribed")}


def percent(rate: float | None, digits: int = 1) -> str:
    """``0.0123`` -> "1.2 %"; "—" when there is no rate (nothing to divide by)."""
    return "—" if rate is None else f"{rate * 100:.{digits}f} %"


def _shown(rates_of: dict[str, float | None]) -> dict[str, str]:
    # Complaint rates matter in tenths of a percent (Gmail: 0.1 % warns, 0.3 % is bad).
    return {name: percent(value, 2 if name == "complaint" else 1)
            for name, value in rates_of.items()}


def duration(seconds: int | None) -> str:
    """``300`` -> "≤ 5 min", the label of a delivery-time bucket's upper bound."""
    if seconds is None:
        return "—"
    if seconds < 0:
        return _("over a day")
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"≤ {seconds // size} {unit}"
    return f"≤ {seconds} s"


class DashboardFilters(forms.Form):
    """The period, the template, trigger and category, and what the table groups by."""

    start = forms.DateField(label=gettext_lazy("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("To"), required=False,
                          widget=forms.DateInput(attrs={"type": "date"}))
    template = forms.ChoiceField(label=gettext_lazy("Template"), required=False)
    trigger = forms.ChoiceField(label=gettext_lazy("Trigger"), required=False)
    category = forms.ChoiceField(label=gettext_lazy("Category"), required=False)
    group = forms.ChoiceField(
        label=gettext_lazy("Group by"), required=False,
        choices=[("template", gettext_lazy("template")), ("trigger", gettext_lazy("trigger")),
                 ("category", gettext_lazy("category"))])

    def __init__(self, data=None):
        super().__init__(data)
        for name, field in DIMENSIONS.items():
            keys = MailStatDay.objects.order_by(field).values_list(field, flat=True).distinct()
            self.fields[name].choices = [("", _("all"))] + [
                (key or NONE_VALUE, key or _("(none)")) for key in keys]

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        end = data.get("end") or today
        start = data.get("start") or end - datetime.timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError(_("The period starts after it ends: swap the dates."))
        if (end - start).days >= MAX_DAYS:
            raise forms.ValidationError(
                _("The period is longer than %(days)s days: choose a shorter one.")
                % {"days": MAX_DAYS})
        data["start"], data["end"] = start, end
        return data

    def period(self) -> Period:
        data = self.cleaned_data if self.is_valid() else {}
        if not data:
            end = timezone.localdate()
            return Period(end - datetime.timedelta(days=DEFAULT_DAYS - 1), end)
        keys = {
            field: (None if not data.get(name) else
                    "" if data[name] == NONE_VALUE else data[name])
            for name, field in DIMENSIONS.items()
        }
        return Period(data["start"], data["end"], **keys)


@admin.register(MailStatDay)
class MailStatDayAdmin(admin.ModelAdmin):
    """The dashboard, in place of a list of rows; nothing to add, change or delete."""

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("transactional_mail.view_email")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("promote/", self.admin_site.admin_view(self.promote_view),
                 name=f"{info}_promote"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = DashboardFilters(request.GET or None)
        period = form.period()
        group = (form.cleaned_data.get("group") if form.is_valid() else "") or "template"
        summary = totals(period)
        days = by_day(period)
        group_field = DIMENSIONS[group]
        context = {
            **self.admin_site.each_context(request),
            **(extra_context or {}),
            "opts": self.opts,
            "title": _("Mail statistics"),
            "form": form,
            "period": period,
            "totals": summary,
            "rates": _shown(rates(summary)),
            "p50": duration(percentile(summary, 0.5)),
            "p95": duration(percentile(summary, 0.95)),
            "group_name": form.fields["group"].choices[
                list(DIMENSIONS).index(group)][1],
            "groups": [{"key": row[group_field], **row, "rates": _shown(rates(row))}
                       for row in by_group(period, group_field)],
            "daily_chart": charts.line_chart(
                [row["day"].isoformat() for row in days],
                {str(name): [row[counter] for row in days] for counter, name in DAILY_SERIES},
                _("Emails per day")),
            "rates_chart": charts.rate_bars(
                [(str(RATE_LABELS[name]), value, None, None)
                 for name, value in rates(summary).items()],
                _("Rates over the period")),
            "delivery_chart": charts.histogram(
                [duration(bound) for bound in (*DELIVERY_BUCKETS, -1)],
                [summary[field] for field in BUCKET_FIELDS],
                _("Time to delivery")),
            **self._ab_test(request, period),
        }
        return TemplateResponse(request, "admin/transactional_mail/mailstatday/dashboard.html",
                                context)

    def _ab_test(self, request, period: Period) -> dict:
        """The A/B test section, for one template only: each variant's rates with their
        confidence intervals, its subject, and whether it may be promoted."""
        if not period.template_key:
            return {}
        results = variant_results(by_variant(period))
        if not results:
            return {}
        template = (EmailTemplate.objects.filter(key=period.template_key)
                    .order_by("language").first())
        drafted = {variant.number: variant.subject for variant in variants(template)} \
            if template else {}
        for result in results:
            result["subject"] = drafted.get(result["number"], "")
            for name in ("delivery", "open", "click"):
                shown = result[name]
                shown["shown"] = (
                    f"{percent(shown['rate'])} ({percent(shown['low'])}–{percent(shown['high'])})"
                    if shown["rate"] is not None else "—")
        charts_by_rate = {
            name: charts.rate_bars(
                [(_("Variant %(letter)s") % {"letter": result["letter"]},
                  result[name]["rate"], result[name]["low"], result[name]["high"])
                 for result in results], label)
            for name, label in (("delivery", _("Delivered rate per variant")),
                                ("open", _("Open rate per variant")),
                                ("click", _("Click rate per variant")))
        }
        return {
            "variants": results,
            "variant_charts": charts_by_rate,
            "can_promote": request.user.has_perm("transactional_mail.change_emailtemplate"),
        }

    def promote_view(self, request):
        """POST ``template`` (a key) and ``variant`` (1 to 4): each language of the
        template whose draft has that variant gets it as its subject, in a new draft."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("transactional_mail.change_emailtemplate"):
            raise PermissionDenied
        key = request.POST.get("template", "")
        number = request.POST.get("variant", "")
        dashboard = reverse("admin:transactional_mail_mailstatday_changelist")
        back = HttpResponseRedirect(f"{dashboard}?{urlencode({'template': key})}")
        if number not in {str(n) for n in LETTERS}:
            messages.error(request, _("Choose a variant from A to D to promote."))
            return back
        promoted = [
            str(template) for template in EmailTemplate.objects.filter(key=key)
            if template.promote_subject_variant(int(number), author=request.user)
        ]
        letter = LETTERS[int(number)]
        if promoted:
            messages.success(request, _(
                "Subject variant %(letter)s is now the subject of a new draft of %(templates)s: "
                "review and publish it to send it.") % {
                    "letter": letter, "templates": ", ".join(promoted)})
        else:
            messages.warning(request, _(
                "No draft of %(key)s has a subject variant %(letter)s any more: nothing "
                "promoted.") % {"key": key, "letter": letter})
        return back
