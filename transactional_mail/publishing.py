"""Publishing a task the way ``apply_async`` does, with its route worked out once per process.

A delivery task is published in the ``on_commit`` callback of the request that queued its
emails, so its cost is paid by that request. ``Task.apply_async`` reads about eight Celery
settings per call, and a Celery app configured from Django settings (``namespace=
"CELERY"``) resolves each of them through several names, most of them missing: those
lookups were two thirds of a publish (about 200 of 300 µs on the development machine).
The task, its route and those settings are the same for every delivery task, so
:func:`publish` asks Celery's router for the route once per process (again after Django's
settings change), then builds the message with Celery's own ``create_task_message`` and
sends it with Celery's own ``send_task_message``, which fires the ``before_task_publish``
and ``after_task_publish`` signals as ``apply_async`` does: the message is the one
``apply_async`` would send (tests/test_publishing.py compares them).

``apply_async`` itself is still used where its extra work matters: eager mode
(``task_always_eager``), countdowns (RabbitMQ quorum queues deliver those natively),
publishes from inside a running task (the message records its parent task), and a task
whose options ask for a result or an expiry.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from celery.utils import uuid
from celery.utils.saferepr import saferepr
from django.core.signals import setting_changed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Route:
    """What Celery works out for a task before any message: its routing and options."""

    options: dict[str, Any]
    ignore_result: bool
    time_limit: float | None
    soft_time_limit: float | None
    sent_event: bool
    repr_maxlevels: int


_routes: dict[tuple[int, str, str], _Route | None] = {}
_routes_lock = threading.Lock()


def publish(task, args: tuple, *, producer, countdown: float = 0.0, queue: str = "") -> None:
    """Publish ``task(*args)`` with ``producer`` (not retried: the caller handles errors)."""
    app = task.app
    built = None
    if not (countdown or app.conf.task_always_eager or app.current_worker_task is not None):
        built = _message(task, args, queue)
    if built is None:
        options: dict[str, Any] = {"queue": queue} if queue else {}
        if countdown:
            options["countdown"] = countdown
        task.apply_async(args, producer=producer, retry=False, **options)
        return
    message, options = built
    app.amqp.send_task_message(producer, task.name, message, retry=False, **options)


def _message(task, args: tuple, queue: str) -> tuple[Any, dict[str, Any]] | None:
    """The task message as Task.apply_async -> Celery.send_task build it, and its routing
    options; None when apply_async must build it (see the module's docstring)."""
    app = task.app
    try:
        route = _route(task, queue)
        if route is None:
            return None
        message = app.amqp.create_task_message(
            uuid(), task.name, args, {},
            time_limit=route.time_limit, soft_time_limit=route.soft_time_limit,
            reply_to=app.thread_oid, create_sent_event=route.sent_event,
            ignore_result=route.ignore_result, kwargsrepr="{}",
            argsrepr=saferepr(args, app.amqp.argsrepr_maxsize, maxlevels=route.repr_maxlevels),
            **route.options,
        )  # fmt: skip
    except (AttributeError, KeyError, TypeError):
        # A Celery whose internals moved: apply_async still works, only slower.
        logger.warning("Publishing %s through apply_async: this Celery's task message API "
                       "is not the one this app knows.", task.name, exc_info=True)
        return None
    return message, route.options


def _route(task, queue: str) -> _Route | None:
    """The task's route and options, as Celery.send_task works them out; None when the
    task needs apply_async's full path (it stores results, or its messages expire)."""
    key = (id(task.app), task.name, queue)
    if key in _routes:
        return _routes[key]
    options = dict(task._get_exec_options(), **({"queue": queue} if queue else {}))
    options.setdefault("ignore_result", task.ignore_result)
    time_limit = options.pop("time_limit", None)
    soft_time_limit = options.pop("soft_time_limit", None)
    expires = options.pop("expires", None)
    ignore_result = options.pop("ignore_result")
    route = None
    if ignore_result and expires is None:
        conf = task.app.conf
        route = _Route(
            options=task.app.amqp.router.route(options, task.name, (), {}, task),
            ignore_result=ignore_result,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            sent_event=conf.task_send_sent_event,
            repr_maxlevels=conf.task_repr_maxlevels,
        )
    with _routes_lock:
        _routes[key] = route
    return route


def forget_routes(**kwargs) -> None:
    """Forget the routes worked out so far (Django's settings changed: Celery's may have)."""
    with _routes_lock:
        _routes.clear()


setting_changed.connect(forget_routes, dispatch_uid="transactional_mail.publishing")
