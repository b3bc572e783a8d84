"""Outcomes: the table of what each ESP event means, and the docs page that lists it."""

from __future__ import annotations

import pytest

from transactional_mail.tracking import outcomes

pytestmark = pytest.mark.django_db


def test_the_docs_table_is_the_classifier_table():
    """docs/statuses-and-outbox.md lists exactly RAW_OUTCOMES: ESP, raw kind, status,
    suppression."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "statuses-and-outbox.md"
            ).read_text()
    section = text.split("<!-- esp-outcomes -->")[1]
    documented = {}
    for line in section.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("ESP", "---") or set(cells[0]) <= {"-", ":"}:
            continue
        esp, kind, _anymail_type, status, suppression = cells
        documented[(esp, kind)] = (status if status != "—" else None,
                                   suppression if suppression != "—" else None)
    expected = {
        (esp, kind): (outcome.status, outcome.suppression)
        for esp, table in outcomes.RAW_OUTCOMES.items() if esp != "SendinBlue"
        for kind, outcome in table.items()
    }
    assert documented == expected


def test_classify_survives_payloads_of_another_shape():
    """Raw events of an unexpected shape fall back on Anymail's normalised type."""
    from anymail.signals import AnymailTrackingEvent

    for esp, raw in [("Amazon SES", {"eventType": "Bounce", "bounce": ["x"]}),
                     ("SparkPost", {"msys": ["x"]}), ("Mailgun", {"event-data": "x"}),
                     ("Postmark", ["not", "a", "dict"]), ("Resend", {"data": None}),
                     ("Unisender Go", {"status": "hard_bounced", "delivery_info": 3})]:
        event = AnymailTrackingEvent(event_type="bounced", esp_event=raw)
        assert outcomes.classify(event, esp) is outcomes.HARD, esp
