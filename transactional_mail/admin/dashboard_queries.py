"""What the statistics dashboard shows, read from the daily rows (``MailStatDay``).

Every function here reads the pre-aggregated rows only: a period of a year over any
number of emails is a few hundred rows per template, so the page answers at once
(``bench/bench_dashboard.py`` times it against the same numbers computed from the log).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import QuerySet, Sum

from ..models import MailStatDay
from ..models.stats import BUCKET_FIELDS, COUNTERS, DELIVERY_BUCKETS
from ..subject_variants import LETTERS, wilson_interval

#: The dimensions the dashboard can filter and group by: (GET parameter, field).
DIMENSIONS = {"template": "template_key", "trigger": "trigger_key", "category": "category"}

#: Each rate: (name, numerator, denominator). Delivery and bounces are shares of the
#: emails sent; complaints, opens, clicks and unsubscribes of those delivered (what
#: mailbox providers and ESPs measure them against).
RATES = (
    ("delivery", "delivered", "sent"),
    ("bounce", "bounced", "sent"),
    ("complaint", "complained", "delivered"),
    ("open", "opened", "delivered"),
    ("click", "clicked", "delivered"),
    ("unsubscribe", "unsubscribed", "delivered"),
)

#: How many groups the per-template (trigger, category) table lists, most sent first.
MAX_GROUPS = 50


@dataclass(frozen=True)
class Period:
    """The rows of a period, optionally of one template, trigger and category."""

    start: datetime.date
    end: datetime.date
    template_key: str | None = None
    trigger_key: str | None = None
    category: str | None = None

    def rows(self) -> QuerySet[MailStatDay]:
        rows = MailStatDay.objects.filter(day__gte=self.start, day__lte=self.end)
        for field in DIMENSIONS.values():
            value = getattr(self, field)
            if value is not None:
                rows = rows.filter(**{field: value})
        return rows


def _sums(fields=COUNTERS) -> dict[str, Sum]:
    return {name: Sum(name) for name in fields}


def _filled(values: dict) -> dict:
    return {name: value or 0 for name, value in values.items()}


def totals(period: Period) -> dict[str, int]:
    """The counters and the delivery-time histogram summed over the period."""
    return _filled(period.rows().aggregate(**_sums((*COUNTERS, *BUCKET_FIELDS))))


def by_day(period: Period) -> list[dict]:
    """The counters of each day of the period, oldest first (zeros on a day without mail)."""
    found = {row["day"]: _filled(row) for row in
             period.rows().values("day").annotate(**_sums()).order_by("day")}
    days = (period.start + datetime.timedelta(days=n)
            for n in range((period.end - period.start).days + 1))
    return [found.get(day) or {"day": day, **dict.fromkeys(COUNTERS, 0)} for day in days]


def by_group(period: Period, field: str) -> list[dict]:
    """The counters per value of ``field`` (a ``DIMENSIONS`` field), most sent first."""
    return [_filled(row) for row in period.rows().values(field).annotate(**_sums())
            .order_by("-sent", field)[:MAX_GROUPS]]


def by_variant(period: Period) -> list[dict]:
    """The counters per subject variant (emails of an A/B test only), A first."""
    return [_filled(row) for row in period.rows().exclude(subject_variant=0)
            .values("subject_variant").annotate(**_sums()).order_by("subject_variant")]


def rates(counts: dict[str, int]) -> dict[str, float | None]:
    """Each rate of ``RATES`` (None when its denominator is 0)."""
    return {name: counts[part] / counts[whole] if counts[whole] else None
            for name, part, whole in RATES}


def variant_results(rows: list[dict]) -> list[dict]:
    """Each variant's delivered, open and click rates with their 95 % Wilson intervals,
    and which variant leads each rate with an interval clear of every other's."""
    results = []
    for row in rows:
        result = {"number": row["subject_variant"],
                  "letter": LETTERS.get(row["subject_variant"], "?"), **row}
        for name, part, whole in (("delivery", "delivered", "sent"),
                                  ("open", "opened", "delivered"),
                                  ("click", "clicked", "delivered")):
            low, high = wilson_interval(row[part], row[whole])
            result[name] = {"rate": row[part] / row[whole] if row[whole] else None,
                            "low": low, "high": high}
        results.append(result)
    for name in ("delivery", "open", "click"):
        for result in results:
            others = [other for other in results if other is not result]
            result[name]["leads"] = bool(others) and all(
                result[name]["low"] > other[name]["high"] for other in others)
    return results


def percentile(histogram: dict[str, int], share: float) -> int | None:
    """The upper bound, in seconds, of the bucket holding the ``share`` percentile of the
    delivery times (None: no delivery; -1: slower than the last bound, over a day)."""
    counts = [histogram.get(field, 0) for field in BUCKET_FIELDS]
    count = sum(counts)
    if not count:
        return None
    rank = share * count
    seen = 0
    for bound, value in zip((*DELIVERY_BUCKETS, -1), counts, strict=True):
        seen += value
        if seen >= rank:
            return bound
    return -1
