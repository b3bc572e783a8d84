"""Writing a new ``Email`` row with one prepared INSERT (PostgreSQL).

``send()`` runs in the caller's request, often inside a trigger, and the outbox row is
most of what it adds to the request (``bench/bench_triggers.py``). ``Model.save()`` builds
the INSERT's SQL again for every row, prepares and adapts each of the row's 40 values and
sends ``pre_save`` and ``post_save``. Here, on PostgreSQL, the statement is built once per
process and per shape, and a new row's many empty values (no cc, no tags, no attempts
yet, no claim...) are written as SQL literals instead of parameters; the others are
prepared by their field as ``save()`` prepares them (``pre_save``, then
``get_db_prep_save``), but the context, whose JSON text ``send()`` already has. The
row is the one ``save()`` writes (``tests/test_outbox_insert.py`` compares them).

Like ``bulk_create``, this sends no ``pre_save``/``post_save`` for ``Email``: the app's own
signals (``email_sent``, ``email_failed``) are the ones to connect to. Other databases
use ``save()``.
"""

from __future__ import annotations

import functools

from django.db import connections, models

from .models import Email
from .snapshots import JSONSnapshot


def insert(email: Email, using: str) -> None:
    """Write the new row ``email`` on the database ``using``, as ``email.save()`` would."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        email.save(using=using)
        return
    shape, params = [], []
    for field, own_pre_save in _fields():
        value = field.pre_save(email, True) if own_pre_save else getattr(email, field.attname)
        literal = _literal(field, value)
        if literal is not None:
            shape.append(literal)
        elif type(value) is JSONSnapshot and getattr(value, "json", None) is not None:
            # The context's JSON text, from send()'s check that it is JSON: not
            # serialized a second time.
            shape.append("%s::jsonb")
            params.append(value.json)
        else:
            shape.append("%s")
            params.append(field.get_db_prep_save(value, connection))
    with connection.cursor() as cursor:
        cursor.execute(_statement(using, tuple(shape)), params)
        email.pk = cursor.fetchone()[0]
    email._state.adding = False
    email._state.db = using


@functools.cache
def _fields() -> list[tuple[models.Field, bool]]:
    """The fields the INSERT writes (every concrete field but the generated primary key),
    each with whether its ``pre_save`` does more than read the value (``auto_now_add``)."""
    return [(field, type(field).pre_save is not models.Field.pre_save)
            for field in Email._meta.concrete_fields if not field.primary_key]


def _literal(field: models.Field, value) -> str | None:
    """The SQL literal of an empty ``value`` (what ``save()`` writes for it), or None to
    pass ``value`` as a parameter."""
    if value is None:
        return "NULL"
    kind = type(value)
    if isinstance(field, models.JSONField):
        if (kind is list or kind is dict) and not value:
            return "'[]'::jsonb" if kind is list else "'{}'::jsonb"
        return None
    if kind is bool and isinstance(field, models.BooleanField):
        return "true" if value else "false"
    if (kind is str or kind is int or kind is bytes) and not value:
        return {str: "''", int: "0", bytes: "''::bytea"}[kind]
    return None


@functools.lru_cache(maxsize=256)  # a few shapes in practice
def _statement(using: str, shape: tuple[str, ...]) -> str:
    """The INSERT with ``shape``'s value for each column (a literal or a placeholder),
    returning the new id."""
    quote = connections[using].ops.quote_name
    columns = ", ".join(quote(field.column) for field, _ in _fields())
    values = ", ".join(shape)
    return (f"INSERT INTO {quote(Email._meta.db_table)} ({columns}) VALUES ({values}) "
            f"RETURNING {quote(Email._meta.pk.column)}")
