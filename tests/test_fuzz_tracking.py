"""Property-based: whatever order (and however often) an ESP's webhooks arrive in, an
email ends in the same status, with the same suppressions.

Each example posts real Postmark payloads through Anymail's tracking view to a fresh
email and compares the outcome with an oracle: the highest-ranked status the events
imply (webhooks only move a status forward).
"""

from __future__ import annotations

import itertools
import uuid

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from tests.esp_server import (
    bounce_event,
    click_event,
    delivery_event,
    open_event,
    post_webhook,
    spam_complaint_event,
)
from transactional_mail.models import Email, EmailStatus, Suppression
from transactional_mail.tracking.receiver import STATUS_RANK

pytestmark = pytest.mark.django_db

_event_ids = itertools.count(9_000_000)

#: Each kind of webhook: (payload builder, the status it implies, whether it suppresses).
KINDS = {
    "delivered": (lambda e: delivery_event(e), EmailStatus.DELIVERED, False),
    "soft_bounce": (
        lambda e: bounce_event(e, type="SoftBounce", event_id=next(_event_ids)),
        EmailStatus.DEFERRED,
        False,
    ),
    "transient": (
        lambda e: bounce_event(e, type="Transient", event_id=next(_event_ids)),
        EmailStatus.DEFERRED,
        False,
    ),
    "hard_bounce": (
        lambda e: bounce_event(e, type="HardBounce", event_id=next(_event_ids)),
        EmailStatus.BOUNCED,
        True,
    ),
    "complaint": (
        lambda e: spam_complaint_event(e, event_id=next(_event_ids)),
        EmailStatus.COMPLAINED,
        True,
    ),
    "open": (lambda e: open_event(e), None, False),
    "click": (lambda e: click_event(e), None, False),
}

_addresses = itertools.count()


def sent_email() -> Email:
    now = timezone.now()
    return Email.objects.create(
        template_key="order_confirmation",
        from_email="shop@example.com",
        to=[f"fuzz{next(_addresses)}@example.com"],
        status=EmailStatus.SENT,
        esp_name="Postmark",
        esp_message_id=str(uuid.uuid4()),
        next_attempt_at=now,
        sent_at=now,
    )


def expected(kinds: list[str]) -> tuple[str, bool]:
    statuses = [KINDS[kind][1] for kind in kinds if KINDS[kind][1] is not None]
    status = max([EmailStatus.SENT, *statuses], key=STATUS_RANK.__getitem__)
    return status, any(KINDS[kind][2] for kind in kinds)


@given(
    kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=5),
    data=st.data(),
)
def test_any_order_and_any_replays_end_in_the_same_status(client, kinds, data):
    email = sent_email()
    payloads = [KINDS[kind][0](email) for kind in kinds]
    # Each event at least once, in any order, some of them replayed.
    order = data.draw(st.permutations(range(len(payloads))), label="order")
    replays = data.draw(st.lists(st.sampled_from(order), max_size=3), label="replays")
    for index in [*order, *replays]:
        assert post_webhook(client, payloads[index]).status_code == 200

    status, suppressed = expected(kinds)
    row = Email.objects.get(pk=email.pk)
    assert row.status == status
    assert Suppression.objects.filter(address=email.to[0]).exists() is suppressed
    assert row.events.count() == len(payloads)  # replays are stored once
