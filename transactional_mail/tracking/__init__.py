"""Tracking: Anymail's webhook events -> EmailEvent rows, statuses, suppressions."""

from .outcomes import (  # noqa: F401  (a step of the split into one module per concept)
    HARD,
    RAW_OUTCOMES,
    STATUS_RANK,
    TEXT_MAX_CHARS,
    classify,
    handle_tracking_event,
    raw_kinds,
    recipient_key,
)
