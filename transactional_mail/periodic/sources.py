"""Where a run's recipients come from, read in batches that resume after a cursor."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.utils.module_loading import import_string

from ..exceptions import ConfigurationError, ContextNotSerializable
from ..snapshots import default_context, json_snapshot, resolve_path
from .definitions import Schedule, queryset_factory


@dataclass
class Recipient:
    """One email of a run: its address(es), context, language and source object."""

    to: str | list[str]
    context: Mapping[str, Any]
    language: str | None = None
    source: models.Model | None = field(default=None, repr=False)


class CallableSource:
    """A dotted callable(period) yielding (address, context) or (address, context,
    language). Its cursor is how many items were done: on resume, that many are skipped,
    so it must yield in a stable order (order a queryset by its primary key)."""

    def __init__(self, function, key: str):
        self.function = function
        self.key = key

    def total(self, period: datetime.datetime) -> int | None:
        return None

    def batches(self, period: datetime.datetime, cursor: str, size: int
                ) -> Iterator[tuple[list[Recipient], str]]:
        done = int(cursor or 0)
        items = iter(self.function(period))
        # Skipping re-reads what earlier batches did, but keeps nothing in memory.
        for _ in itertools.islice(items, done):
            pass
        while True:
            chunk = [self._recipient(item) for item in itertools.islice(items, size)]
            if not chunk:
                return
            done += len(chunk)
            yield chunk, str(done)

    def _recipient(self, item: Any) -> Recipient:
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ConfigurationError(
                f"The recipients of schedule {self.key!r} yielded {item!r}; yield "
                "(address, context) or (address, context, language) tuples."
            )
        to, context, *language = item
        return Recipient(_own(to), _snapshot(context), *language)


class QuerysetSource:
    """Objects of a queryset, read by primary key order ``size`` at a time (keyset
    pagination: memory stays bounded and a resume starts after the last key done)."""

    def __init__(self, options: Mapping[str, Any], key: str):
        self.factory = queryset_factory(options["queryset"])
        self.to = options.get("to") or "email"
        self.context = options.get("context")
        if isinstance(self.context, str):
            self.context = import_string(self.context)
        self.language = options.get("language")
        self.key = key

    def queryset(self, period: datetime.datetime) -> models.QuerySet:
        queryset = self.factory(period)
        if not isinstance(queryset, models.QuerySet):
            raise ConfigurationError(
                f"The queryset of schedule {self.key!r} gave {type(queryset).__name__}, "
                "not a QuerySet."
            )
        return queryset.order_by("pk")

    def total(self, period: datetime.datetime) -> int | None:
        return self.queryset(period).count()

    def batches(self, period: datetime.datetime, cursor: str, size: int
                ) -> Iterator[tuple[list[Recipient], str]]:
        queryset = self.queryset(period)
        while True:
            page = queryset.filter(pk__gt=cursor) if cursor else queryset
            objects = list(page[:size])
            if not objects:
                return
            cursor = str(objects[-1].pk)
            yield [self._recipient(obj, period) for obj in objects], cursor

    def _recipient(self, obj: models.Model, period: datetime.datetime) -> Recipient:
        context = self.context(obj, period) if self.context else default_context(obj)
        language = resolve_path(obj, self.language) if self.language else None
        return Recipient(_own(resolve_path(obj, self.to)), _snapshot(context), language, obj)


def _snapshot(context: Any) -> Any:
    """``context`` as it is now. A batch is read whole before its emails are built, and a
    source may yield one dict it fills again for each recipient: without a snapshot taken
    here, every email of the batch would carry the last recipient's data."""
    if not isinstance(context, Mapping):
        return context  # build_email refuses it, and the recipient is skipped with why
    try:
        return json_snapshot(context)
    except ContextNotSerializable:
        return context  # refused again by build_email, the recipient skipped with why


def _own(to: Any) -> Any:
    """The addresses as they are now (a source may refill one list, as a context)."""
    return list(to) if isinstance(to, (list, set)) else to


def source_for(schedule: Schedule) -> CallableSource | QuerysetSource:
    """The recipient source of ``schedule``."""
    if isinstance(schedule.recipients, Mapping):
        return QuerysetSource(schedule.recipients, schedule.key)
    function = schedule.recipients
    if isinstance(function, str):
        function = import_string(function)
    return CallableSource(function, schedule.key)
