"""Raw kinds: an ESP's raw event read most specific first."""

from __future__ import annotations

import pytest

from transactional_mail.tracking import raw_kinds

pytestmark = pytest.mark.django_db


def test_raw_kinds_are_most_specific_first():
    assert raw_kinds.raw_kinds("Mailgun", {"event-data": {
        "event": "failed", "severity": "permanent", "reason": "old"}}) == [
        "failed/permanent/old", "failed/permanent/*", "failed/permanent", "failed/*", "failed"]
    assert raw_kinds.raw_kinds("Mailgun", {"event-data": {"event": "failed"}}) == ["failed"]
    assert raw_kinds.raw_kinds("Nobody", {"event": "x"}) == []
