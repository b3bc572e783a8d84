"""An attempt's result written in one statement (PostgreSQL).

Recording a result is three writes that must commit together: the email's row (its
status and copies, only while the claim holds), the attempt's row and, for a sent email
counted for the first time, its daily statistics (the ``stat_flags`` bit and the day's
row). Through the ORM that is five round trips (BEGIN, two UPDATEs, an INSERT, an UPDATE
or INSERT of the day's row) and most of the worker's own CPU per email
(``bench/bench_delivery_split.py``). On PostgreSQL one statement does all of it: an
``UPDATE ... RETURNING`` of the email feeding the attempt's ``INSERT`` and the day's
``INSERT ... ON CONFLICT DO UPDATE``. A single statement is its own transaction in
autocommit mode, so the result is still committed as soon as its email is sent.

It covers the common case only: the claim holds and the email is in a status the result
may overwrite. When the email's ``UPDATE`` matches nothing (a webhook got there first, the
claim was lost) nothing is written, and ``delivery`` takes its general path.
"""

from __future__ import annotations

import functools
from datetime import datetime

from django.db import connections, models, router

from . import stats
from .models import Email, EmailAttempt
from .models.stats import MailStatDay, StatFlag


def supported() -> bool:
    """Whether the email's database is PostgreSQL, which this statement is written for."""
    return connections[router.db_for_write(Email)].vendor == "postgresql"


def write(email: Email, *, status: str, now: datetime, fields: dict, writable: tuple,
          attempt: dict, count_sent: bool) -> bool:
    """Write ``status`` and ``fields`` on ``email``'s row if its claim holds and its
    status is one of ``writable``, with its attempt row (``attempt``: the
    ``EmailAttempt`` fields but the email) and, when ``count_sent``, its ``sent`` count.

    Return whether the row was written; when it was not, nothing was.
    """
    alias = router.db_for_write(Email)
    connection = connections[alias]
    values = {"status": status, "status_changed_at": now, **fields}
    params: dict[str, object] = {
        "id": email.pk, "token": email.claim_token, "writable": [str(s) for s in writable],
    }
    for number, (name, value) in enumerate(values.items()):
        params[f"e{number}"] = Email._meta.get_field(name).get_db_prep_save(value, connection)
    for number, (name, value) in enumerate(attempt.items()):
        params[f"a{number}"] = EmailAttempt._meta.get_field(name).get_db_prep_save(
            value, connection)
    if count_sent:
        key = {**stats.dimensions(email), "shard": stats.shard()}
        for name in _STAT_KEY:
            params[f"s_{name}"] = MailStatDay._meta.get_field(name).get_db_prep_save(
                key[name], connection)
    sql = _statement(alias, tuple(values), tuple(attempt), count_sent)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    email.status = status
    if count_sent and row[0]:
        email.stat_flags |= StatFlag.SENT.value
    return True


#: The day row's unique key: the fields of its unique constraint, which ON CONFLICT names.
_STAT_KEY = next(constraint.fields for constraint in MailStatDay._meta.constraints
                 if isinstance(constraint, models.UniqueConstraint))


@functools.cache
def _statement(alias: str, email_fields: tuple[str, ...], attempt_fields: tuple[str, ...],
               count_sent: bool) -> str:
    """The statement for these fields on the database ``alias`` (built once per
    combination and process)."""
    q = connections[alias].ops.quote_name
    email_table, attempt_table = q(Email._meta.db_table), q(EmailAttempt._meta.db_table)
    stat_table = q(MailStatDay._meta.db_table)
    column = {name: q(Email._meta.get_field(name).column)
              for name in ("id", "claim_token", "status", "stat_flags")}
    assignments = ", ".join(f"{q(Email._meta.get_field(name).column)} = %(e{number})s"
                            for number, name in enumerate(email_fields))
    flag = StatFlag.SENT.value if count_sent else 0
    attempt_columns = ", ".join(q(EmailAttempt._meta.get_field(name).column)
                                for name in ("email", *attempt_fields))
    attempt_values = ", ".join(f"%(a{number})s" for number in range(len(attempt_fields)))
    day = ""
    if count_sent:
        fields = [field for field in MailStatDay._meta.concrete_fields if not field.primary_key]
        sent = q(MailStatDay._meta.get_field("sent").column)
        values = [f"%(s_{field.name})s" if field.name in _STAT_KEY
                  else "1" if field.name == "sent" else "0"  # no database defaults
                  for field in fields]
        day = f"""
        , day AS (
            INSERT INTO {stat_table} ({", ".join(q(field.column) for field in fields)})
            SELECT {", ".join(values)} FROM result WHERE result.first_sent
            ON CONFLICT ({", ".join(q(MailStatDay._meta.get_field(name).column)
                                    for name in _STAT_KEY)})
            DO UPDATE SET {sent} = {stat_table}.{sent} + 1
        )"""
    # The subquery reads the flags as they were before this statement: whether the email
    # was counted as sent already (by an earlier attempt the ESP accepted).
    return f"""
        WITH result AS (
            UPDATE {email_table} SET {assignments},
                {column["stat_flags"]} = {email_table}.{column["stat_flags"]} | {flag}
            FROM (SELECT {column["stat_flags"]} AS flags FROM {email_table}
                  WHERE {column["id"]} = %(id)s) AS before
            WHERE {email_table}.{column["id"]} = %(id)s
              AND {email_table}.{column["claim_token"]} = %(token)s
              AND {email_table}.{column["status"]} = ANY(%(writable)s)
            RETURNING {email_table}.{column["id"]} AS id,
                before.flags & {flag} = 0 AND {flag} <> 0 AS first_sent
        ), attempt AS (
            INSERT INTO {attempt_table} ({attempt_columns})
            SELECT id, {attempt_values} FROM result
        ){day}
        SELECT first_sent FROM result
    """
