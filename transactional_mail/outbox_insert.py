"""Writing a new ``Email`` row with one prepared INSERT (PostgreSQL).

``send()`` runs in the caller's request, often inside a trigger, and the outbox row is
most of what it adds to the request (``bench/bench_triggers.py``). ``Model.save()`` builds
the INSERT's SQL again for every row and sends ``pre_save`` and ``post_save`` for it; on
PostgreSQL the statement is built once per process here and only the values are prepared,
each by its field as ``save()`` prepares it (``pre_save``, then ``get_db_prep_save``), so
the row is the one ``save()`` writes (``tests/test_outbox_insert.py`` compares them).

Like ``bulk_create``, this sends no ``pre_save``/``post_save`` for ``Email``: the app's own
signals (``email_sent``, ``email_failed``) are the ones to connect to. Other databases
use ``save()``.
"""

from __future__ import annotations

import functools

from django.db import connections

from .models import Email


def insert(email: Email, using: str) -> None:
    """Write the new row ``email`` on the database ``using``, as ``email.save()`` would."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        email.save(using=using)
        return
    fields, sql = _statement(using)
    params = [field.get_db_prep_save(field.pre_save(email, True), connection)
              for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        email.pk = cursor.fetchone()[0]
    email._state.adding = False
    email._state.db = using


@functools.cache
def _statement(using: str) -> tuple[list, str]:
    """The fields the INSERT writes (every concrete field but the generated primary key),
    and its SQL, returning the new id."""
    quote = connections[using].ops.quote_name
    fields = [field for field in Email._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = (f"INSERT INTO {quote(Email._meta.db_table)} ({columns}) VALUES ({placeholders}) "
           f"RETURNING {quote(Email._meta.pk.column)}")
    return fields, sql
