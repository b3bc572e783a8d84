"""Durations as settings and definitions spell them: ``timedelta``, seconds, or ``"15m"``.

A trigger's ``delay``, a digest's ``window`` and a frequency cap's ``period`` read the
same way.
"""

from __future__ import annotations

import datetime
import re

from .exceptions import InvalidEmailOption

_DELAY_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DELAY_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_delay(delay: datetime.timedelta | str | int | float) -> datetime.timedelta:
    """``timedelta``, seconds, or ``"90s"``, ``"15m"``, ``"2h"``, ``"7d"``, ``"1w"``."""
    if isinstance(delay, datetime.timedelta):
        return delay
    if isinstance(delay, (int, float)) and not isinstance(delay, bool):
        return datetime.timedelta(seconds=delay)
    if isinstance(delay, str):
        match = _DELAY_PATTERN.match(delay)
        if match:
            return datetime.timedelta(**{_DELAY_UNITS[match[2]]: float(match[1])})
    raise InvalidEmailOption(
        f"delay={delay!r} is not a delay: use a timedelta, a number of seconds, "
        'or a string like "90s", "15m", "2h", "7d" or "1w".'
    )
