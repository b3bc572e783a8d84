"""Tracking: Anymail's webhook events -> EmailEvent rows, statuses and suppressions.

One module per concept: ``raw_kinds`` (reading an ESP's raw event), ``outcomes`` (what
each event means), ``recipient_keys`` (the dedup key of a recipient) and ``receiver`` (the
receiver of ``anymail.signals.tracking`` that writes it all). Code imports each name from
the module that defines it.
"""

from .outcomes import RAW_OUTCOMES

__all__ = ["RAW_OUTCOMES"]
