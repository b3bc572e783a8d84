"""Soft bounces in a row: counted per address, ended by a delivery, a suppression at the limit.

A soft bounce (a full mailbox, a server that is down) says nothing certain about an
address, but one that soft-bounces ``SOFT_BOUNCE_LIMIT`` times with no delivery in
between is as good as gone, and mailing it on hurts the sender's reputation. Only events
the ESP reports as bounces count (Anymail's ``bounced`` with a soft outcome): a
``deferred`` event (the ESP is still trying) is not a bounce.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from ..conf import get_setting
from ..models import Email, SoftBounceStreak, Suppression, SuppressionReason


def record_soft_bounce(address: str, email: Email | None, source: str) -> bool:
    """Count one soft bounce of ``address`` (normalised); suppress it for every category
    when the streak reaches ``SOFT_BOUNCE_LIMIT``. Return whether it was suppressed now.

    Runs inside the webhook's transaction. The count is one conditional UPDATE, so two
    workers handling two bounces at once both count.
    """
    if not SoftBounceStreak.objects.filter(address=address).update(count=F("count") + 1):
        try:
            with transaction.atomic():
                SoftBounceStreak.objects.create(address=address, count=1)
        except IntegrityError:  # a concurrent webhook created it first
            SoftBounceStreak.objects.filter(address=address).update(count=F("count") + 1)
    count = SoftBounceStreak.objects.filter(address=address).values_list(
        "count", flat=True).first() or 0
    if count < get_setting("SOFT_BOUNCE_LIMIT"):
        return False
    # The streak becomes the suppression: if staff lift it, the address starts afresh.
    SoftBounceStreak.objects.filter(address=address).delete()
    try:
        with transaction.atomic():
            _, created = Suppression.objects.get_or_create(
                address=address, category="",
                defaults={"reason": SuppressionReason.SOFT_BOUNCES, "email": email,
                          "source": f"{count} soft bounces in a row; last: {source}"[:255]},
            )
    except IntegrityError:
        return False  # a concurrent webhook suppressed it
    return created


def record_delivery(address: str) -> None:
    """A delivery to ``address`` ends its soft bounce streak."""
    SoftBounceStreak.objects.filter(address=address).delete()
