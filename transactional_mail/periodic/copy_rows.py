"""Insert many new rows of one model with PostgreSQL's ``COPY … FROM STDIN``, as text.

A scheduled run inserts thousands of ``Email`` rows, each with a dozen JSON columns. A
500-row ``INSERT`` is a statement of 18,000 parameters that Django compiles and psycopg
adapts one value at a time; ``COPY`` in its text format streams lines the server parses
while the next ones are being written. The lines are formatted here, per column type,
because psycopg's row writer adapts each value through its own dumper, which cost more
than building the row.

A value is written exactly as ``bulk_create`` would store it: ``tests/periodic/
test_copy_rows.py`` inserts the same rows both ways and compares every column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.db import models
from django.utils import timezone

from ..snapshots import JSONSnapshot

#: COPY's text format: a backslash starts an escape, tab and newline end a value.
_needs_escape = re.compile(r"[\\\t\n\r]").search
NULL = "\\N"
#: Rows written per ``write()`` call: few calls, and a bounded buffer.
_CHUNK = 200


def _text(value: Any) -> str:
    value = str(value)
    if _needs_escape(value):
        # str.replace runs in C; str.translate with a mapping goes through Python per
        # character. The backslash first, so the escapes added after it stay single.
        return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                .replace("\r", "\\r"))
    return value


def _encoder(field: models.Field, connection) -> Callable[[Any], str]:
    """The function that writes one value of ``field`` as COPY text (None being NULL)."""
    kind = field.get_internal_type()
    if kind == "JSONField":
        encoder = field.encoder

        def write(value):
            if type(value) is JSONSnapshot:  # serialized when it was made
                return _text(value.json)
            if value is None:  # as Django stores it: SQL NULL if the column allows it
                return NULL if field.null else "null"
            if not value and type(value) in (list, dict):  # most of the dozen columns
                return "[]" if type(value) is list else "{}"
            return _text(json.dumps(value, cls=encoder))
        return write
    if kind == "BooleanField":
        return lambda value: NULL if value is None else ("t" if value else "f")
    if kind == "BinaryField":
        # bytea's hex form, its backslash escaped for COPY.
        return lambda value: NULL if value is None else "\\\\x" + bytes(value).hex()
    if kind == "DateTimeField":
        def write(value):
            if value is None:
                return NULL
            if timezone.is_naive(value):
                raise ValueError(f"{field.name} is a naive datetime ({value}); COPY needs "
                                 "an aware one.")
            return value.isoformat()
        return write
    if kind in ("CharField", "TextField", "UUIDField", "AutoField", "BigAutoField",
                "IntegerField", "BigIntegerField", "SmallIntegerField",
                "PositiveIntegerField", "PositiveSmallIntegerField",
                "PositiveBigIntegerField", "ForeignKey"):
        return lambda value: NULL if value is None else _text(value)
    # Any other type: Django's own conversion, then its text.
    return lambda value: NULL if value is None else _text(
        field.get_db_prep_save(value, connection))


def copy_rows(connection, model: type[models.Model], objects: Iterable[models.Model]) -> None:
    """Insert ``objects`` (new, without a primary key) into ``model``'s table.

    Raises what the server raises (an ``IntegrityError`` for a duplicate unique key: the
    whole COPY is undone, so call it inside a savepoint and fall back to an insert that
    skips conflicts). Run it on ``connection``, a PostgreSQL connection using psycopg 3.
    """
    # psycopg 3 is installed where this runs (a site on SQLite may not have it).
    from psycopg.copy import QueuedLibpqWriter

    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    writers = [(field.attname, _encoder(field, connection)) for field in fields]
    # auto_now(_add) columns: one time for the whole call (bulk_create stamps each row a
    # moment apart).
    now = timezone.now()
    stamped = [field.attname for field in fields
               if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    # The queued writer sends from a thread of its own: the lines of the next rows are
    # formatted while the server takes the previous ones, instead of after.
    with (connection.cursor() as cursor, connection.wrap_database_errors,
          cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN",
                             writer=QueuedLibpqWriter(cursor.cursor)) as copy):
        lines = []
        for obj in objects:
            for attname in stamped:
                setattr(obj, attname, now)
            values = obj.__dict__
            lines.append("\t".join([write(values[attname]) for attname, write in writers]))
            if len(lines) == _CHUNK:
                copy.write("\n".join(lines) + "\n")
                lines = []
        if lines:
            copy.write("\n".join(lines) + "\n")
