"""Triggers: settings -> ``Trigger`` objects -> receivers -> outbox rows."""

from .definitions import (  # noqa: F401  (a step of the split into one module per concept)
    EVENTS,
    Plan,
    cancellation_reason,
    connect,
    definition_problems,
    dry_run,
    parse_trigger,
    private_path_problems,
    sync_trigger_rows,
)
