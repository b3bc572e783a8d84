"""The retry policy: how long to wait before the next delivery attempt, and when to stop."""

from __future__ import annotations

import random

from .conf import get_setting


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 for the first).

    Exponential backoff from ``RETRY_BACKOFF``, capped at ``RETRY_BACKOFF_MAX``, with
    "equal jitter" (a random point in the upper half) so that emails failing together
    do not retry together. An ESP's ``Retry-After`` is a floor, never shortened.
    """
    exponential = get_setting("RETRY_BACKOFF") * 2 ** (attempt - 1)
    ceiling = min(get_setting("RETRY_BACKOFF_MAX"), exponential)
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def attempts_exhausted(attempts: int) -> bool:
    """True when no further attempt is allowed after ``attempts`` attempts."""
    return attempts >= get_setting("MAX_ATTEMPTS")
