"""Hostile recipients yielded by a schedule: each is skipped with its reason, and none can
stop the run (a recipient that fails the run again at every retry would block the
schedule for good: the next tick resumes the unfinished period first)."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from tests.factories import published
from tests.periodic.conftest import MONDAY, weekly
from transactional_mail.models import Email, ScheduleRun
from transactional_mail.periodic import runs
from transactional_mail.periodic.definitions import parse_schedule
from transactional_mail.periodic.runs import run

#: What ``hostile`` yields; each test sets it.
ITEMS: list = []


def hostile(period):
    yield ("first@example.com", {"name": "First"})
    yield from ITEMS
    yield ("last@example.com", {"name": "Last"})


def _run(settings, items, batch_size=1000):
    ITEMS[:] = items
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "SCHEDULE_BATCH_SIZE": batch_size}
    schedule = parse_schedule("weekly_report", weekly(
        recipients="tests.attacks.test_schedule_recipients.hostile"))
    return run(schedule, MONDAY)


def _queued() -> list[str]:
    return sorted(address for email in Email.objects.all() for address in email.to)


ODD_ADDRESSES = [
    pytest.param(5, id="an int"),
    pytest.param(None, id="None"),
    pytest.param("", id="blank"),
    pytest.param(["  ", ""], id="a list of blanks"),
    pytest.param(b"bytes@example.com", id="bytes"),
    pytest.param(["a@example.com", 5], id="a list holding an int"),
    pytest.param("lone\udc80surrogate@example.com", id="a lone surrogate"),
    pytest.param(["ok@example.com", "x\ud800@example.com"], id="a surrogate in a list"),
]


@pytest.mark.parametrize("address", ODD_ADDRESSES)
def test_an_odd_address_is_skipped_not_the_run(settings, report_template, enqueued, address):
    tally = _run(settings, [(address, {"name": "Odd"})])

    assert (tally.outcome, tally.done, tally.queued, tally.skipped) == ("done", 3, 2, 1)
    assert _queued() == ["first@example.com", "last@example.com"]
    record = ScheduleRun.objects.get()
    assert record.recipients_skipped == 1 and "to" in record.last_error


ODD_LANGUAGES = [
    pytest.param(5, id="an int"),
    pytest.param("fr\x00", id="a NUL"),
    pytest.param("fr\udc80", id="a lone surrogate"),
    pytest.param("fr\tca", id="a tab"),
    pytest.param("f\x85r", id="a C1 control"),
    pytest.param(["fr"], id="a list"),
]


@pytest.mark.parametrize("language", ODD_LANGUAGES)
def test_an_odd_language_is_skipped_not_the_run(settings, report_template, enqueued,
                                                language):
    tally = _run(settings, [("odd@example.com", {"name": "Odd"}, language)])

    assert (tally.outcome, tally.queued, tally.skipped) == ("done", 2, 1)
    assert "language" in ScheduleRun.objects.get().last_error


def test_other_languages_are_still_accepted_and_stored_exactly(settings, report_template,
                                                               enqueued):
    """A language no template has falls back to the default template, as before; COPY's
    escapes in it are stored as text."""
    tally = _run(settings, [("pt@example.com", {"name": "Pt"}, " pt_BR "),
                            ("zh@example.com", {"name": "Zh"}, "zh-Hans"),
                            ("fr@example.com", {"name": "Fr"}, "français"),
                            ("esc@example.com", {"name": "Esc"}, "fr\\N\\.")])

    assert (tally.queued, tally.skipped) == (6, 0)
    assert set(Email.objects.values_list("language", flat=True)) == {
        "", "pt-br", "zh-hans", "français", "fr\\n\\."}


HOSTILE_TEXT = ["tab\there", "new\nline", "cr\rhere", "back\\slash", "\\N", "\\.", "\\.\n",
                "\n\\.\n", "end\\", "\t\t", "é ☃ 𝄞", "\u2028\u0085\x7f", "\\\t\\n",
                "x" * 200_000]


def test_hostile_text_in_a_context_is_stored_exactly(settings, report_template, enqueued):
    """COPY's text format gives tab, newline, CR and backslash a meaning (and ``\\.`` ends
    the data): none may shift a column or end the stream early."""
    items = [(f"u{i}@example.com", {"name": text, text[:50]: text, "list": [text]})
             for i, text in enumerate(HOSTILE_TEXT)]
    tally = _run(settings, items)

    assert (tally.queued, tally.skipped) == (len(HOSTILE_TEXT) + 2, 0)
    for i, text in enumerate(HOSTILE_TEXT):
        email = Email.objects.get(to=[f"u{i}@example.com"])
        assert email.context == {"name": text, text[:50]: text, "list": [text]}
        assert (email.template_key, email.category, email.status) == (
            "weekly_report", "reports", "queued")


def test_odd_json_values_are_stored_as_bulk_create_would(settings, report_template, enqueued):
    """Non-string keys that collide once written as JSON ("1" and 1, "null" and None): the
    row holds what Python's own reading of the JSON holds, the last value."""
    from decimal import Decimal

    context = {1: "int", "1": "str", None: "none", "null": "text", 2.5: "float",
               "d": Decimal("1E+5"), "nan": Decimal("NaN"), "big": 10 ** 300,
               "neg0": -0.0, "tiny": 5e-324}
    tally = _run(settings, [("odd@example.com", context)])

    assert (tally.queued, tally.skipped) == (3, 0)
    stored = Email.objects.get(to=["odd@example.com"]).context
    assert stored == {"1": "str", "null": "text", "2.5": "float", "d": "1E+5",
                      "nan": "NaN", "big": 10 ** 300, "neg0": -0.0, "tiny": 5e-324}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "\x00", {"k\x00": 1},
                                   "\ud800", object()])
def test_an_unstorable_context_value_is_skipped(settings, report_template, enqueued, value):
    tally = _run(settings, [("odd@example.com", {"v": value})])

    assert (tally.outcome, tally.queued, tally.skipped) == ("done", 2, 1)


def test_a_row_the_database_refuses_is_skipped_not_the_batch(settings, report_template,
                                                             enqueued, monkeypatch):
    """Whatever validation missed (here a language too long for its column, set after
    validation): the other rows of the batch are inserted, the bad one is skipped and
    recorded, and the run finishes instead of failing at every retry."""
    build = runs._build

    def build_one_bad(schedule, label, recipient):
        email = build(schedule, label, recipient)
        if recipient.to == "bad@example.com":
            email.language = "x" * 16 if connection.vendor == "postgresql" else "en\x00"
        return email

    monkeypatch.setattr(runs, "_build", build_one_bad)
    if connection.vendor != "postgresql":
        pytest.skip("SQLite stores any text in any column")
    tally = _run(settings, [("a@example.com", {}), ("bad@example.com", {}),
                            ("b@example.com", {})])

    assert (tally.outcome, tally.done, tally.queued, tally.skipped) == ("done", 5, 4, 1)
    assert tally.already_queued == 0
    assert _queued() == ["a@example.com", "b@example.com", "first@example.com",
                         "last@example.com"]
    record = ScheduleRun.objects.get()
    assert (record.status, record.recipients_skipped, record.emails_queued) == ("done", 1, 4)
    assert "bad@example.com" in record.last_error and "database" in record.last_error
    delivered = sorted(pk for ids in published(enqueued) for pk in ids)
    assert delivered == sorted(Email.objects.values_list("pk", flat=True))


def test_a_refused_row_does_not_copy_its_data_into_the_runs_error(settings, report_template,
                                                                   enqueued, monkeypatch):
    """PostgreSQL's refusal of a row (a check) details the whole failing row, context
    and all: the run's last error, shown to view-only staff, keeps its first line only."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite does not detail the failing row")
    build = runs._build

    def build_one_bad(schedule, label, recipient):
        email = build(schedule, label, recipient)
        if recipient.to == "bad@example.com":
            email.subject_variant = -1  # a positive column: a check constraint
        return email

    monkeypatch.setattr(runs, "_build", build_one_bad)
    tally = _run(settings, [("bad@example.com", {"reset_url": "https://x/SECRET-TOKEN"})])

    assert (tally.outcome, tally.queued, tally.skipped) == ("done", 2, 1)
    error = ScheduleRun.objects.get().last_error
    assert "check constraint" in error
    assert "SECRET-TOKEN" not in error and "\n" not in error


def test_a_source_reusing_one_context_dict_gives_each_email_its_own(settings,
                                                                   report_template, enqueued):
    """A generator that refills one dict (and one address list) for every recipient: each
    email holds them as they were when yielded, as send() would, not the batch's last
    recipient's data (a batch is read whole before its emails are built)."""
    schedule = parse_schedule("weekly_report", weekly(
        recipients="tests.attacks.test_schedule_recipients.reusing_one_dict"))
    run(schedule, MONDAY)

    contexts = {email.to[0]: email.context for email in Email.objects.all()}
    assert contexts == {"ann@example.com": {"name": "ann", "seen": ["ann"]},
                        "bob@example.com": {"name": "bob", "seen": ["ann", "bob"]},
                        "cat@example.com": {"name": "cat", "seen": ["ann", "bob", "cat"]}}


def reusing_one_dict(period):
    context, to = {}, []
    for name in ("ann", "bob", "cat"):
        context["name"] = name
        context.setdefault("seen", []).append(name)
        to[:] = [f"{name}@example.com"]
        yield to, context


def test_the_key_of_several_addresses_ignores_their_case_and_order():
    """The key sorted the addresses before lower-casing them: ["B@x", "a@x"] and
    ["b@x", "A@x"] (the same two mailboxes) got two keys, so two emails a period."""
    schedule = parse_schedule("weekly_report", weekly())
    keys = {runs.idempotency_key(schedule, "p", to) for to in (
        ["B@example.com", "a@example.com"], ["b@example.com", "A@example.com"],
        ["a@example.com", " b@example.com"], [" A@EXAMPLE.COM", "b@example.com "])}
    assert len(keys) == 1
    assert runs.idempotency_key(schedule, "p", "Ann@Example.com ") == runs.idempotency_key(
        schedule, "p", ["ann@example.com"])


def test_a_context_too_big_for_the_database_is_skipped_not_the_run(settings, report_template,
                                                                    enqueued):
    """A JSON string over PostgreSQL's 256 MB limit: the server's refusal is a "program
    limit exceeded" (an OperationalError to Django, like a lost connection), which failed
    the batch at every retry."""
    if connection.vendor != "postgresql" or not os.environ.get("TM_TEST_HEAVY"):
        pytest.skip("PostgreSQL's limit, 2 GB of memory and 30 s: set TM_TEST_HEAVY=1 "
                    "(test_a_program_limit_refuses_a_row checks the same decision cheaply)")
    huge = "x" * (2**28)  # one byte over jsonb's longest string
    tally = _run(settings, [("huge@example.com", {"blob": huge})])
    del huge

    assert (tally.outcome, tally.queued, tally.skipped) == ("done", 2, 1)
    error = ScheduleRun.objects.get().last_error
    assert "too long" in error and "xxxx" not in error


def test_a_program_limit_refuses_a_row_and_a_lost_connection_does_not():
    """The decision the heavy test above proves on a real server: PostgreSQL's "program
    limit exceeded" (SQLSTATE class 54) is a row it cannot hold; a lost connection (an
    OperationalError as well) is not, and fails the batch whole, to be retried."""
    from django.db import OperationalError

    def wrapped(sqlstate):
        err = OperationalError("refused")
        err.__cause__ = type("DriverError", (Exception,), {"sqlstate": sqlstate})()
        return err

    assert runs._refuses_a_row(wrapped("54000"))
    assert not runs._refuses_a_row(wrapped("08006"))  # connection failure
    assert not runs._refuses_a_row(OperationalError("server closed the connection"))
