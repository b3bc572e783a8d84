"""Publishing a task the way ``apply_async`` does, with its options worked out once per process.

A delivery task is published in the ``on_commit`` callback of the request that queued its
emails, so its cost is paid by that request. ``Task.apply_async`` reads about eight Celery
settings per call, and a Celery app configured from Django settings (``namespace=
"CELERY"``) resolves each of them through several names, most of them missing: those
lookups were two thirds of a publish (about 200 of 300 µs on the development machine).
The task, its options and those settings are the same for every delivery task, so
:func:`publish` works them out once per process (again after Django's settings change),
asks Celery's router for the route of each message (a routing function may read the
arguments), then builds the message with Celery's own ``create_task_message`` and sends
it with Celery's own ``send_task_message``, which fires the ``before_task_publish``
and ``after_task_publish`` signals as ``apply_async`` does: the message is the one
``apply_async`` would send (tests/test_publishing.py compares them).

``apply_async`` itself is still used where its extra work matters: eager mode
(``task_always_eager``), countdowns (RabbitMQ quorum queues deliver those natively),
publishes from inside a running task (the message records its parent task), a task whose
options ask for a result or an expiry, and, from the first failure on, a task whose message
could not be built this way (a Celery whose internals moved, a failing router).
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
class _Options:
    """What Celery works out for a task from its settings before any message."""

    exec_options: dict[str, Any]  # the task's own options, before routing
    ignore_result: bool
    time_limit: float | None
    soft_time_limit: float | None
    sent_event: bool
    repr_maxlevels: int


#: Per (app, task, queue): the options, or None where apply_async must build the message
#: (the task stores results or its messages expire, or building one failed once).
#: Keyed by the app itself, not its id(): an id is reused once its app is gone.
_options: dict[tuple[Any, str, str], _Options | None] = {}
_options_lock = threading.Lock()


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
    message, routing = built
    app.amqp.send_task_message(producer, task.name, message, retry=False, **routing)


def _message(task, args: tuple, queue: str) -> tuple[Any, dict[str, Any]] | None:
    """The task message as Task.apply_async -> Celery.send_task build it, and its routing
    options; None when apply_async must build it (see the module's docstring)."""
    app = task.app
    key = (app, task.name, queue)
    try:
        options = _options[key] if key in _options else _work_out_options(task, queue, key)
        if options is None:
            return None
        # The router may read the arguments (a routing function): asked every time.
        routing = app.amqp.router.route(dict(options.exec_options), task.name, args, {}, task)
        message = app.amqp.create_task_message(
            uuid(), task.name, args, {},
            time_limit=options.time_limit, soft_time_limit=options.soft_time_limit,
            reply_to=app.thread_oid, create_sent_event=options.sent_event,
            ignore_result=options.ignore_result, kwargsrepr="{}",
            argsrepr=saferepr(args, app.amqp.argsrepr_maxsize, maxlevels=options.repr_maxlevels),
            **routing,
        )  # fmt: skip
    except Exception:
        # A Celery whose internals moved, a router that fails: apply_async does it all
        # again, as Celery would (and raises what a misconfiguration raises), from now on.
        logger.warning("Publishing %s through apply_async from now on: building its message "
                       "directly failed.", task.name, exc_info=True)
        with _options_lock:
            _options[key] = None
        return None
    return message, routing


def _work_out_options(task, queue: str, key: tuple[Any, str, str]) -> _Options | None:
    """The task's options, as Celery.send_task works them out from apply_async's."""
    exec_options = dict(task._get_exec_options(), **({"queue": queue} if queue else {}))
    exec_options.setdefault("ignore_result", task.ignore_result)
    time_limit = exec_options.pop("time_limit", None)
    soft_time_limit = exec_options.pop("soft_time_limit", None)
    expires = exec_options.pop("expires", None)
    ignore_result = exec_options.pop("ignore_result")
    options = None
    if ignore_result and expires is None:
        conf = task.app.conf
        options = _Options(
            exec_options=exec_options,
            ignore_result=ignore_result,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            sent_event=conf.task_send_sent_event,
            repr_maxlevels=conf.task_repr_maxlevels,
        )
    with _options_lock:
        _options[key] = options
    return options


def forget_options(**kwargs) -> None:
    """Forget the options worked out so far (Django's settings changed: Celery's may have)."""
    with _options_lock:
        _options.clear()


setting_changed.connect(forget_options, dispatch_uid="transactional_mail.publishing")
