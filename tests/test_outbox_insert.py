"""The new Email row written by ``outbox_insert`` is the row ``Model.save()`` writes."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection

from tests.factories import ORDER_CONTEXT, make_template
from transactional_mail import outbox_insert
from transactional_mail.api import build_email
from transactional_mail.models import Email

pytestmark = pytest.mark.django_db


#: A context whose JSON text (written as it is, cast to jsonb) holds what needs quoting.
HOSTILE_CONTEXT = {**ORDER_CONTEXT, "note": "O'Brien said \"hi\" \\ %s %(x)s ::jsonb",
                   "unicode": "é ü 🙂 \t\n", "nested": [{"a": None, "b": 1.5, "c": True}]}


#: Every option set (parameters), and none (the empty values written as SQL literals).
SHAPES = {
    "full": dict(cc=["cc@example.com"], headers={"X-Order": "A-1"}, tags=["orders"],
                 metadata={"order": 7}, secret_keys=["order"], is_test=True,
                 attachments=[("a.txt", b"tab\there", "text/plain")], delay=60,
                 context=HOSTILE_CONTEXT),
    "bare": {},
}


def new_email(context=ORDER_CONTEXT, **options) -> Email:
    return build_email("order_confirmation", ["Ann <ann@example.com>"], context, **options)


def columns(email: Email) -> dict:
    row = Email.objects.filter(pk=email.pk).values()[0]
    return {name: value for name, value in row.items() if name != "id"}


@pytest.mark.parametrize("shape", SHAPES)
def test_the_row_is_the_one_save_writes(shape):
    make_template()
    saved, inserted = new_email(**SHAPES[shape]), new_email(**SHAPES[shape])
    saved.save(using="default")
    outbox_insert.insert(inserted, "default")
    assert inserted.pk is not None and inserted.pk != saved.pk
    assert not inserted._state.adding and inserted._state.db == "default"
    saved_columns, inserted_columns = columns(saved), columns(inserted)
    for name in ("created_at", "updated_at", "status_changed_at", "next_attempt_at"):  # now
        if name in saved_columns:
            gap = inserted_columns.pop(name) - saved_columns.pop(name)
            assert datetime.timedelta(0) <= gap < datetime.timedelta(seconds=5)
    assert inserted_columns == saved_columns
    assert Email.objects.get(pk=inserted.pk).context == SHAPES[shape].get("context",
                                                                          ORDER_CONTEXT)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the prepared INSERT is "
                    "PostgreSQL's; elsewhere insert() is save() (the test above)")
def test_no_model_signals_are_sent_for_the_row():
    """As bulk_create: the app's own signals are the ones to connect to (docs)."""
    from django.db.models.signals import post_save, pre_save

    make_template()
    received = []

    def receiver(sender, **kwargs):
        received.append(sender)

    pre_save.connect(receiver, sender=Email)
    post_save.connect(receiver, sender=Email)
    try:
        outbox_insert.insert(new_email(), "default")
    finally:
        pre_save.disconnect(receiver, sender=Email)
        post_save.disconnect(receiver, sender=Email)
    assert received == []
