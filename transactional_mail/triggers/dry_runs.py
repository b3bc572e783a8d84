"""Dry runs: which triggers an event would fire, for whom and with what, writing nothing.

``manage.py dry_run_triggers`` prints them; ``dry_run()`` returns them as ``Plan`` objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .definitions import all_triggers, field_value
from .firing import Plan, plan
from .syntax import UNSET


def dry_run(instance: Any, event: str, *, old_values: Mapping[str, Any] | None = None,
            signal: str | None = None, extra: Mapping[str, Any] | None = None) -> list[Plan]:
    """Which triggers would fire for ``instance`` and ``event``, for whom, with what context.

    Writes nothing and sends nothing. ``event`` is created, updated, deleted or changed
    (``old_values`` gives the values before the change), or "signal" with ``signal``
    naming the signal's dotted path.
    """
    plans = []
    for trigger in all_triggers().values():
        if event == "signal":
            if trigger.signal is None or trigger.definition.get("signal") != signal:
                continue
        elif trigger.model is None or not isinstance(instance, trigger.model):
            continue
        elif trigger.on == "changed":
            if event not in ("changed", "updated"):
                continue
            old = (old_values or {}).get(trigger.field, UNSET)
            new = field_value(instance, trigger.field)
            if old is UNSET:
                plans.append(Plan(trigger=trigger.key, template=trigger.template, fires=False,
                                  reason=f"the old value of {trigger.field!r} is not given: "
                                         f"--old {trigger.field}=VALUE"))
                continue
            if old == new or (
                trigger.from_value is not UNSET and old != trigger.from_value
            ) or (trigger.to_value is not UNSET and new != trigger.to_value):
                plans.append(Plan(trigger=trigger.key, template=trigger.template, fires=False,
                                  reason=f"{trigger.field!r} did not change as required"))
                continue
        elif trigger.on != event:
            continue
        try:
            plans.append(plan(trigger, instance, extra))
        except Exception as err:
            plans.append(Plan(trigger=trigger.key, template=trigger.template, fires=False,
                              reason=f"it fails, and would log a failed email: "
                                     f"{type(err).__name__}: {err}"))
    return plans
