"""Suppression lists as files: our CSV out and in, and the exports of Postmark and Amazon
SES in, so a list survives a change of ESP.

The layouts read (``docs/privacy.md`` cites their sources):

- ``ours``: CSV with the header ``address,category,reason,source,created_at`` (what
  ``export_suppressions`` writes; ``reason`` is one of ``SuppressionReason``'s values).
- ``postmark``: the JSON of Postmark's suppression dump
  (``GET /message-streams/{stream}/suppressions/dump``: ``{"Suppressions": [{"EmailAddress",
  "SuppressionReason", "Origin", "CreatedAt"}]}``), or a CSV with those columns.
- ``ses``: the JSON of Amazon SES's ``ListSuppressedDestinations``
  (``{"SuppressedDestinationSummaries": [{"EmailAddress", "Reason", "LastUpdateTime"}]}``,
  pages concatenated in a list, or one page), or a CSV with those columns.

An import adds what is missing and leaves every existing suppression as it is; it writes
in batches, each committed, so a huge file never holds one long transaction and running
it again (after a crash, or twice) adds nothing twice.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import re
from collections.abc import Iterable, Iterator
from typing import IO, Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .exceptions import TransactionalMailError
from .models import Suppression, SuppressionHistory, SuppressionReason
from .models.suppression import HASH_PREFIX, SuppressionChange, normalize_address

FORMATS = ("ours", "postmark", "ses")

#: Our CSV's columns, in order.
COLUMNS = ("address", "category", "reason", "source", "created_at")

#: Rows written per INSERT (and per transaction).
BATCH_SIZE = 1000

#: Errors an import report keeps word for word; past them it only counts.
MAX_REPORTED_ERRORS = 20

#: A spreadsheet runs a cell starting with one of these as a formula: the export prefixes
#: such a cell with "'" and the import takes the prefix off again.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_HASHED = re.compile(re.escape(HASH_PREFIX) + r"[0-9a-f]{64}")
_CATEGORY = re.compile(r"[\w.-]{0,50}", re.ASCII)
_ADDRESS_MAX = 254
_SOURCE_MAX = 255

_POSTMARK_REASONS = {"HardBounce": SuppressionReason.HARD_BOUNCE,
                     "SpamComplaint": SuppressionReason.COMPLAINT}
_SES_REASONS = {"BOUNCE": SuppressionReason.HARD_BOUNCE,
                "COMPLAINT": SuppressionReason.COMPLAINT}


class RowError(TransactionalMailError, ValueError):
    """One row of an import cannot be used; the message says why."""


@dataclasses.dataclass
class ImportReport:
    """What an import did (or, dry, would do)."""

    added: int = 0
    existing: int = 0
    invalid: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)
    dry_run: bool = False

    def error(self, line: int | str, message: str) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(f"line {line}: {message}" if line else message)

    def summary(self) -> str:
        verb = "would add" if self.dry_run else "added"
        return (f"{verb} {self.added}, already suppressed {self.existing}, "
                f"refused {self.invalid}")


@dataclasses.dataclass(frozen=True)
class Row:
    address: str
    category: str
    reason: str
    source: str
    created_at: datetime.datetime | None


# --- reading ----------------------------------------------------------------------------

def _unformula(value: Any) -> str:
    text = "" if value is None else str(value)
    if text[:1] == "'" and text[1:2] in _FORMULA_STARTS and text[1:2]:
        return text[1:]
    return text


def _clean_address(value: Any, *, hashed_allowed: bool) -> str:
    text = _unformula(value).strip()
    if hashed_allowed and _HASHED.fullmatch(text):
        return text
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise RowError("the address holds a control character (a line break?)")
    address = normalize_address(text)
    if not address or "@" not in address or any(char.isspace() for char in address):
        raise RowError(f"{text[:80]!r} is not an email address")
    if len(address) > _ADDRESS_MAX:
        raise RowError(f"the address is over {_ADDRESS_MAX} characters")
    return address


def _clean_category(value: Any) -> str:
    category = _unformula(value).strip()
    if not _CATEGORY.fullmatch(category):
        raise RowError(f"category {category[:60]!r} is not a category key (letters, digits, "
                       "_ . -, at most 50)")
    return category


def _from_timestamp(seconds: float) -> datetime.datetime:
    try:
        return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    except (OverflowError, OSError, ValueError) as err:
        raise RowError(f"{seconds!r} is not a time (seconds since 1970)") from err


def _clean_time(value: Any) -> datetime.datetime | None:
    """A time from ISO 8601 text or seconds since 1970 (SES's API gives a number)."""
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = _from_timestamp(value)
    else:
        text = _unformula(value).strip()
        try:
            moment = parse_datetime(text) if text else None
        except ValueError:
            moment = None
        if moment is None and re.fullmatch(r"\d{1,12}(\.\d+)?", text):
            moment = _from_timestamp(float(text))
        if moment is None:
            raise RowError(f"{text[:40]!r} is not a date and time (ISO 8601, e.g. "
                           "2026-01-31T12:00:00Z)")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, datetime.timezone.utc)
    if moment > timezone.now() + datetime.timedelta(days=1):
        raise RowError(f"{moment.isoformat()} is in the future")
    return moment


def _ours(record: dict[str, Any]) -> Row:
    reason = _unformula(record.get("reason")).strip()
    if reason not in SuppressionReason.values:
        raise RowError(f"reason {reason[:40]!r} is not one of "
                       f"{', '.join(SuppressionReason.values)}")
    return Row(address=_clean_address(record.get("address"), hashed_allowed=True),
               category=_clean_category(record.get("category")), reason=reason,
               source=_unformula(record.get("source")).strip()[:_SOURCE_MAX],
               created_at=_clean_time(record.get("created_at")))


def _postmark(record: dict[str, Any], category: str) -> Row:
    kind = _unformula(record.get("suppressionreason")).strip()
    origin = _unformula(record.get("origin")).strip()
    if kind == "ManualSuppression":
        # A recipient's own suppression (an unsubscribe link) or the sender's.
        reason = (SuppressionReason.UNSUBSCRIBE if origin == "Recipient"
                  else SuppressionReason.MANUAL)
    elif kind in _POSTMARK_REASONS:
        reason = _POSTMARK_REASONS[kind]
    else:
        raise RowError(f"SuppressionReason {kind[:40]!r} is not HardBounce, SpamComplaint "
                       "or ManualSuppression")
    source = f"Postmark: {kind}" + (f" ({origin})" if origin else "")
    return Row(address=_clean_address(record.get("emailaddress"), hashed_allowed=False),
               category=category, reason=reason, source=source[:_SOURCE_MAX],
               created_at=_clean_time(record.get("createdat")))


def _ses(record: dict[str, Any], category: str) -> Row:
    kind = _unformula(record.get("reason")).strip().upper()
    if kind not in _SES_REASONS:
        raise RowError(f"Reason {kind[:40]!r} is not BOUNCE or COMPLAINT")
    return Row(address=_clean_address(record.get("emailaddress"), hashed_allowed=False),
               category=category, reason=_SES_REASONS[kind], source=f"Amazon SES: {kind}",
               created_at=_clean_time(record.get("lastupdatetime")))


_LIST_KEYS = {"postmark": "Suppressions", "ses": "SuppressedDestinationSummaries"}
_REQUIRED = {"ours": {"address", "reason"}, "postmark": {"emailaddress", "suppressionreason"},
             "ses": {"emailaddress", "reason"}}


def _records(stream: IO[str], fmt: str) -> Iterator[tuple[int | str, dict[str, Any] | RowError]]:
    """(line or position, record with lower-cased keys, or the error) for each row."""
    head = stream.read(1)
    while head and head.isspace():
        head = stream.read(1)
    if head in ("{", "[") and fmt != "ours":
        yield from _json_records(head + stream.read(), fmt)
        return
    lines = _prepend(head, stream)
    reader = csv.reader(lines)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        missing = _REQUIRED[fmt] - set(header)
        if missing:
            yield 1, RowError(f"the header lacks {', '.join(sorted(missing))}: is this a "
                              f"{fmt!r} file? (header read: {', '.join(header)[:200]!r})")
            return
        start = reader.line_num + 1  # a quoted field may span lines: name the first
        for values in reader:
            if any(value.strip() for value in values):
                yield start, dict(zip(header, values, strict=False))
            start = reader.line_num + 1
    except csv.Error as err:
        # A broken quote or an oversized field: the reader cannot find the next row.
        yield reader.line_num, RowError(f"the CSV cannot be read past here ({err}); "
                                        "nothing after it was imported")


def _prepend(head: str, stream: IO[str]) -> Iterator[str]:
    first = head + stream.readline()
    if first:
        yield first
    yield from stream


def _json_records(text: str, fmt: str) -> Iterator[tuple[int | str, dict[str, Any] | RowError]]:
    try:
        data = json.loads(text)
    except ValueError as err:
        yield "", RowError(f"the file is not valid JSON ({err})")
        return
    key = _LIST_KEYS[fmt]
    pages = data if isinstance(data, list) else [data]
    position = 0
    for page in pages:
        items = page.get(key) if isinstance(page, dict) else None
        if not isinstance(items, list):
            yield "", RowError(f"no {key!r} list in the JSON: is this a {fmt!r} export?")
            return
        for item in items:
            position += 1
            if isinstance(item, dict):
                yield f"item {position}", {str(k).lower(): v for k, v in item.items()}
            else:
                yield f"item {position}", RowError("not an object")


def read_rows(stream: IO[str], fmt: str = "ours", *, category: str = "",
              report: ImportReport) -> Iterator[tuple[int | str, Row]]:
    """The usable rows of ``stream`` in ``fmt``; the others go to ``report``'s errors.

    ``category`` scopes every row of an ESP's export (its list belongs to a stream); our
    own CSV names each row's category.
    """
    if fmt not in FORMATS:
        raise ValueError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.")
    category = _clean_category(category)
    try:
        for line, record in _records(stream, fmt):
            if isinstance(record, RowError):
                report.error(line, str(record))
                continue
            try:
                row = (_ours(record) if fmt == "ours" else
                       _postmark(record, category) if fmt == "postmark" else _ses(record, category))
            except RowError as err:
                report.error(line, str(err))
                continue
            yield line, row
    except UnicodeDecodeError as err:
        report.error("", f"the file is not UTF-8 ({err.reason} at byte {err.start}); "
                         "nothing after that point was read")


# --- importing --------------------------------------------------------------------------

def import_suppressions(stream: IO[str], fmt: str = "ours", *, category: str = "",
                        dry_run: bool = False, user=None, note: str = "") -> ImportReport:
    """Add the suppressions of ``stream`` that are missing; return what happened.

    Each added suppression gets a history entry ("added", ``note``, ``user``). With
    ``dry_run`` nothing is written and the report says what would be.
    """
    report = ImportReport(dry_run=dry_run)
    note = note or f"Imported from a {fmt} file."
    batch: dict[tuple[str, str], Row] = {}
    for _line, row in read_rows(stream, fmt, category=category, report=report):
        key = (row.address, row.category)
        if key in batch:
            report.existing += 1  # the same address twice in the file
            continue
        batch[key] = row
        if len(batch) >= BATCH_SIZE:
            _write(batch, report, dry_run=dry_run, user=user, note=note)
            batch = {}
    if batch:
        _write(batch, report, dry_run=dry_run, user=user, note=note)
    return report


def _write(batch: dict[tuple[str, str], Row], report: ImportReport, *, dry_run: bool,
           user, note: str) -> None:
    addresses = {address for address, _category in batch}
    with transaction.atomic():
        present = set(Suppression.objects.filter(address__in=addresses)
                      .values_list("address", "category"))
        new = [row for key, row in batch.items() if key not in present]
        report.existing += len(batch) - len(new)
        report.added += len(new)
        if dry_run or not new:
            return
        now = timezone.now()
        # ignore_conflicts: a webhook or another import may add the same row meanwhile.
        Suppression.objects.bulk_create(
            [Suppression(address=row.address, category=row.category, reason=row.reason,
                         source=row.source, created_at=row.created_at or now) for row in new],
            ignore_conflicts=True,
        )
        SuppressionHistory.objects.bulk_create(
            [SuppressionHistory(address=row.address, category=row.category,
                                change=SuppressionChange.ADDED, suppression_reason=row.reason,
                                note=note, user=user) for row in new]
        )


# --- exporting --------------------------------------------------------------------------

def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def export_rows(suppressions: Iterable[Suppression] | None = None) -> Iterator[list[str]]:
    """Our CSV's rows, header first, for ``suppressions`` (all of them by default, oldest
    first), read in chunks so a list of millions is never held in memory."""
    if suppressions is None:
        suppressions = Suppression.objects.order_by("created_at", "pk").iterator(
            chunk_size=2000)
    yield list(COLUMNS)
    for suppression in suppressions:
        yield [_cell(suppression.address), _cell(suppression.category), suppression.reason,
               _cell(suppression.source), suppression.created_at.isoformat()]


class _Echo:
    """A file-like object whose write returns what it is given (for streaming)."""

    def write(self, value: str) -> str:
        return value


def csv_lines(suppressions: Iterable[Suppression] | None = None) -> Iterator[str]:
    """Our CSV, one line at a time (for a streaming HTTP response)."""
    writer = csv.writer(_Echo())
    for row in export_rows(suppressions):
        yield writer.writerow(row)


def write_csv(out: IO[str], suppressions: Iterable[Suppression] | None = None) -> int:
    """Write our CSV to ``out``; return how many suppressions it holds."""
    lines = 0
    for line in csv_lines(suppressions):
        out.write(line)
        lines += 1
    return lines - 1  # the header
