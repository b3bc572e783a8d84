"""The budget every render of a staff-edited template runs under.

A template is a small program: ``{% with a=a|add:a %}`` nested 25 times, ``make_list``
then ``join``, or loops over string literals turn a kilobyte of source into gigabytes
and minutes of work. So each render gets a :class:`RenderBudget` and is *stopped* (with
:class:`~transactional_mail.exceptions.RenderLimitExceeded`) the moment it goes over one
of three limits, read from the settings when the render starts:

``RENDER_MAX_CHARS``
    Characters the render may output, all parts together (the restricted engine charges
    each node's output as it is produced, so a loop is stopped mid-way), and the size of
    any single value a filter makes (``add``, ``join``, ``make_list``, ``wordwrap``...),
    checked on each result and, for ``join``, *before* joining: a doubling string is
    stopped at the first value over the limit, having allocated at most twice it.
``RENDER_MAX_ITERATIONS``
    Loop iterations, all ``{% for %}`` loops together (nested loops multiply), charged
    when a loop starts, before its first iteration.
``RENDER_MAX_SECONDS``
    Wall-clock time, checked at every charge: the backstop for work the counters do not
    see (expensive filters on large values in a loop that outputs nothing).

The budget in force is held in a context variable, so the wrapped filters of
:mod:`transactional_mail.rendering.library` and the nodes of
:mod:`transactional_mail.rendering.engine` find it without a reference (filters do not
get the template context). :func:`render_budget` opens one; a restricted template
rendered outside any opens its own for that render.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from ..conf import get_setting
from ..exceptions import RenderLimitExceeded

__all__ = ["RenderBudget", "current_budget", "render_budget", "value_size"]

_budget: ContextVar[RenderBudget | None] = ContextVar(
    "transactional_mail_render_budget", default=None
)


class RenderBudget:
    """What one render may still spend; every ``charge_*`` raises when it is overspent."""

    __slots__ = ("chars", "deadline", "iterations", "max_chars", "max_iterations", "max_seconds")

    def __init__(self, max_chars: int, max_iterations: int, max_seconds: float) -> None:
        self.max_chars = max_chars
        self.max_iterations = max_iterations
        self.max_seconds = max_seconds
        self.deadline = time.monotonic() + max_seconds
        self.chars = 0
        self.iterations = 0

    def charge_output(self, chars: int) -> None:
        """Count ``chars`` more characters of output (0: check what is already counted)."""
        if chars > 0:
            self.chars += chars
        if self.chars > self.max_chars:
            raise RenderLimitExceeded(
                "RENDER_MAX_CHARS", self.max_chars, "the email's output is longer than"
            )
        if time.monotonic() > self.deadline:
            self._out_of_time()

    def charge_value(self, size: int, made_by: str) -> None:
        """Refuse a value of ``size`` characters (see :func:`value_size`) made by a filter."""
        if size > self.max_chars:
            raise RenderLimitExceeded(
                "RENDER_MAX_CHARS", self.max_chars, f"{made_by} makes a value longer than"
            )
        if time.monotonic() > self.deadline:
            self._out_of_time()

    def charge_iterations(self, count: int) -> None:
        """Count the ``count`` iterations of a loop about to start."""
        self.iterations += count
        if self.iterations > self.max_iterations:
            raise RenderLimitExceeded(
                "RENDER_MAX_ITERATIONS", self.max_iterations, "the loops run more iterations than"
            )
        if time.monotonic() > self.deadline:
            self._out_of_time()

    def _out_of_time(self) -> None:
        raise RenderLimitExceeded(
            "RENDER_MAX_SECONDS", self.max_seconds, "the render takes longer than"
        )


#: ``current_budget()``: the budget of the render in progress, or None outside a render.
#: (The context variable's own ``get``: the engine calls it for every node it renders.)
current_budget: Callable[[], RenderBudget | None] = _budget.get


@contextlib.contextmanager
def render_budget() -> Iterator[RenderBudget]:
    """Run the renders inside the block under one fresh budget, from the settings."""
    budget = RenderBudget(
        get_setting("RENDER_MAX_CHARS"),
        get_setting("RENDER_MAX_ITERATIONS"),
        get_setting("RENDER_MAX_SECONDS"),
    )
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def value_size(value: Any, limit: int) -> int:
    """The characters ``value`` would print as: its text, or its items' text, recursively.

    A list counts its items (one each) and their sizes, so a list doubled by ``add`` (whose
    items are shared references, cheap to hold but not to print or join) counts what
    printing it would cost. Numbers, dates and other scalars count 0. Counting stops as
    soon as the size is over ``limit`` (the cost is bounded by the limit).
    """
    if isinstance(value, str):
        return len(value)
    if not isinstance(value, (list, tuple, Mapping)):
        return 0
    size = 0
    stack = [value]
    while stack and size <= limit:
        item = stack.pop()
        if isinstance(item, str):
            size += len(item)
        elif isinstance(item, (list, tuple)):
            size += len(item)
            stack.extend(item)
        elif isinstance(item, Mapping):
            size += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
    return size
