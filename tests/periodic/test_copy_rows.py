"""COPY's text rows store what bulk_create stores, value for value (PostgreSQL)."""

from __future__ import annotations

import datetime
import json
import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction

from transactional_mail.api import build_email
from transactional_mail.models import Email
from transactional_mail.periodic.copy_rows import copy_rows
from transactional_mail.snapshots import JSONSnapshot

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql",
                                     reason="COPY is PostgreSQL's")

#: Text that COPY's format gives a meaning to, and text that JSON escapes.
AWKWARD = 'tab\there, new\nline, CR\r, back\\slash, \\N, quote " and é ☃ 𝄞'


def emails(report_template) -> list[Email]:
    """Rows with every kind of column set, awkward text in each text column."""
    context = {"name": AWKWARD, "total": Decimal("12.50"), "when": datetime.date(2026, 11, 30),
               "items": [{"sku": "A\\1", "qty": 2}], "ratio": 0.1, "empty": {}, "none": None}
    built = [
        build_email("weekly_report", f"user{i}@example.com", context, language="fr",
                    cc=["cc@example.com"], headers={"X-Note": "a\\b"}, tags=["t\\1"],
                    metadata={"n": i, "note": AWKWARD}, idempotency_key=f"copy:{i}:{AWKWARD}",
                    category="reports", delay=60 * i)
        for i in range(3)
    ]
    built[1].last_error = AWKWARD
    built[1].html_compressed = b"\x00\\\t\n\xff"
    built[1].claim_token = uuid.UUID("12345678-1234-5678-1234-567812345678")
    built[1].sent_at = datetime.datetime(2026, 11, 29, 23, 59, 59, 999999, tzinfo=datetime.UTC)
    built[1].attempts = 3
    built[1].outcome_uncertain = True
    built[2].subject_variant = 2
    built[2].source_object_id = "42\t"
    return built


def stored(keys: list[str]) -> list[dict]:
    rows = list(Email.objects.filter(idempotency_key__in=keys).order_by("idempotency_key")
                .values())
    for row in rows:
        row.pop("id")
        for name in ("html_compressed", "text_compressed"):
            row[name] = bytes(row[name])
    return rows


@postgresql_only
def test_copied_rows_equal_bulk_created_ones(report_template):
    copied = emails(report_template)
    inserted = emails(report_template)
    for email, twin in zip(inserted, copied, strict=True):
        email.idempotency_key = "bulk" + email.idempotency_key
        email.next_attempt_at = twin.next_attempt_at  # built a moment apart
    with transaction.atomic():
        copy_rows(connection, Email, copied)
    Email.objects.bulk_create(inserted)

    copy_rows_stored = stored([email.idempotency_key for email in copied])
    bulk_stored = stored([email.idempotency_key for email in inserted])
    assert len(copy_rows_stored) == 3
    for row in bulk_stored:
        row["idempotency_key"] = row["idempotency_key"].removeprefix("bulk")
    for copied_row, bulk_row in zip(copy_rows_stored, bulk_stored, strict=True):
        # auto_now_add columns: each insert stamps its own time.
        for name in ("created_at", "status_changed_at"):
            assert abs(copied_row.pop(name) - bulk_row.pop(name)) < datetime.timedelta(minutes=1)
        assert copied_row == bulk_row
    assert copy_rows_stored[0]["context"]["name"] == AWKWARD
    assert copy_rows_stored[1]["html_compressed"] == b"\x00\\\t\n\xff"


@postgresql_only
def test_a_changed_snapshot_is_not_written_from_its_old_text(report_template):
    """The snapshot's text is used only while the value is that snapshot: a context
    replaced after building is serialized anew."""
    email = emails(report_template)[0]
    assert type(email.context) is JSONSnapshot
    email.context = {"name": "replaced"}
    with transaction.atomic():
        copy_rows(connection, Email, [email])
    assert Email.objects.get(idempotency_key=email.idempotency_key).context == {
        "name": "replaced"}


def test_the_snapshot_text_is_the_snapshot(report_template):
    email = emails(report_template)[0]
    assert json.loads(email.context.json) == email.context
