"""Triggers: emails bound in settings to model events and signals (the names the docs use).

One module per concept, down the data flow: ``syntax`` (what a definition may say),
``checks`` (its mistakes), ``definitions`` (settings -> ``Trigger``), ``firing`` (one event
-> outbox rows), ``receivers`` (the signals that fire), ``cancellation`` (the send-time
re-check) and ``dry_runs``. Code imports each name from the module that defines it.
"""

from .dry_runs import dry_run
from .firing import Plan

__all__ = ["Plan", "dry_run"]
