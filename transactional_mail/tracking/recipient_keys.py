"""Recipient keys: the dedup key of one recipient of one event, which holds no address.

Amazon SES gives every recipient of a bounce the same event id; the key tells them apart
without storing the address, so an erased address leaves nothing that leads back to it.
"""

from __future__ import annotations

from django.utils.crypto import salted_hmac

from ..models.suppression import normalize_address

#: The salt of the key (derived from SECRET_KEY) that hashes an event's recipient. It
#: names the function's first home and never changes: every stored key depends on it.
RECIPIENT_KEY_SALT = "transactional_mail.tracking.recipient_key"


def recipient_key(esp_name: str, event_id: str, recipient: str) -> str:
    """The dedup key of one recipient of one event: an HMAC that does not hold the address.

    Keyed with a key derived from SECRET_KEY and bound to the event, so the column can
    neither be reversed nor used to link one address's events once the address is erased.
    """
    address = normalize_address(recipient) if recipient else ""
    if not address:
        return ""
    value = "\x00".join([esp_name, event_id, address])
    return salted_hmac(RECIPIENT_KEY_SALT, value, algorithm="sha256").hexdigest()
