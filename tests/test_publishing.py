"""Publishing deliver tasks: Celery's own message without apply_async's settings lookups,
and one task for the emails of one transaction."""

from __future__ import annotations

from unittest import mock

import pytest
from celery import Celery
from celery.signals import before_task_publish
from django.db import transaction
from kombu import Exchange, Producer, Queue

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_template, published
from transactional_mail import publishing, tasks
from transactional_mail.models import Email

pytestmark = pytest.mark.django_db

#: What differs between two messages of the same task: their ids.
PER_MESSAGE = {"id", "root_id", "correlation_id"}


@pytest.fixture
def template():
    return make_template()


def queue(address="ann@example.com", **options) -> Email:
    return transactional_mail.send("order_confirmation", address, ORDER_CONTEXT, **options)


def sent_message(publish_it) -> dict:
    """What kombu's Producer.publish was given by ``publish_it(producer)``, ids left out."""
    app = tasks.deliver.app
    with mock.patch.object(Producer, "publish") as kombu_publish, \
            app.producer_or_acquire() as producer:
        publish_it(producer)
    [call] = kombu_publish.call_args_list
    message = {**call.kwargs, "body": call.args[0]}
    message["headers"] = {k: v for k, v in message["headers"].items() if k not in PER_MESSAGE}
    return {k: v for k, v in message.items() if k not in PER_MESSAGE}


@pytest.mark.parametrize("queue_name", ["", "mail"], ids=["default-queue", "QUEUE-setting"])
def test_the_message_is_the_one_apply_async_sends(queue_name):
    def lean(producer):
        publishing.publish(tasks.deliver, (7, 8), producer=producer, queue=queue_name)

    def celery(producer):
        options = {"queue": queue_name} if queue_name else {}
        tasks.deliver.apply_async((7, 8), producer=producer, retry=False, **options)

    ours, celerys = sent_message(lean), sent_message(celery)
    assert ours == celerys
    assert ours["body"][0] == (7, 8)
    assert ours["headers"]["task"] == "transactional_mail.deliver"
    assert ours["routing_key"] == (queue_name or tasks.deliver.app.conf.task_default_queue)


def test_publish_signals_fire_as_with_apply_async():
    seen = []

    def receiver(sender, headers, **kwargs):
        seen.append((sender, headers["task"]))

    before_task_publish.connect(receiver, weak=False, dispatch_uid="test_publishing")
    try:
        sent_message(lambda producer: publishing.publish(tasks.deliver, (1,), producer=producer))
    finally:
        before_task_publish.disconnect(dispatch_uid="test_publishing")
    assert seen == [("transactional_mail.deliver", "transactional_mail.deliver")]


@pytest.mark.parametrize("case", ["countdown", "eager"])
def test_countdowns_and_eager_mode_take_apply_async(case):
    app = tasks.deliver.app
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = case == "eager"
    try:
        with mock.patch.object(tasks.deliver, "apply_async") as apply_async, \
                app.producer_or_acquire() as producer:
            publishing.publish(tasks.deliver, (3,), producer=producer,
                               countdown=30.0 if case == "countdown" else 0.0)
    finally:
        app.conf.task_always_eager = eager
    apply_async.assert_called_once()
    assert apply_async.call_args.args == ((3,),)
    assert apply_async.call_args.kwargs.get("countdown") == (30.0 if case == "countdown" else None)


def test_options_are_worked_out_again_after_a_settings_change(settings):
    with tasks.deliver.app.producer_or_acquire() as producer, \
            mock.patch.object(Producer, "publish"):
        publishing.publish(tasks.deliver, (1,), producer=producer)
        assert publishing._options
        settings.CELERY_TASK_DEFAULT_QUEUE = "elsewhere"
        assert not publishing._options


def test_a_router_reading_the_arguments_routes_each_message_as_apply_async_does():
    """A routing function sees each message's arguments (it may route on them)."""
    app = tasks.deliver.app

    def by_first_id(name, args, kwargs, options, task=None, **kw):
        if name == tasks.deliver.name:
            return {"queue": "odd" if args[0] % 2 else "even"}
        return None

    def new_router():  # Celery keeps its router once made: make it again
        app.amqp.flush_routes()
        app.amqp.__dict__.pop("router", None)
        publishing.forget_options()

    routes = app.conf.task_routes
    app.conf.task_routes = (by_first_id,)
    new_router()
    try:
        for first in (7, 8):
            def lean(producer, first=first):
                publishing.publish(tasks.deliver, (first, 9), producer=producer)

            def celery(producer, first=first):
                tasks.deliver.apply_async((first, 9), producer=producer, retry=False)

            ours = sent_message(lean)
            assert ours == sent_message(celery)
            assert ours["routing_key"] == ("odd" if first % 2 else "even")
    finally:
        app.conf.task_routes = routes
        new_router()


def test_a_transaction_publishes_one_task_for_its_emails(
    template, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        emails = [queue(f"user{i}@example.com") for i in range(3)]
        assert enqueued.call_count == 0
    assert published(enqueued) == [tuple(email.pk for email in emails)]


def test_a_scheduled_email_gets_a_task_of_its_own(
    template, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        now, later = queue(), queue("bob@example.com", delay="60s")
    assert sorted(published(enqueued)) == sorted([(now.pk,), (later.pk,)])
    countdowns = sorted(call.kwargs["countdown"] for call in enqueued.call_args_list)
    assert countdowns[0] == 0.0 and 55 <= countdowns[1] <= 60


def queue_around_an_undone_savepoint() -> tuple[Email, Email]:
    """In one transaction: an email, one undone with its savepoint, another; return the
    two that were committed."""
    with transaction.atomic():
        first = queue()
        with pytest.raises(RuntimeError), transaction.atomic():
            queue("undone@example.com")
            raise RuntimeError("this part of the request failed")
        return first, queue("bob@example.com")


def test_a_rolled_back_savepoint_drops_only_its_emails(
    template, enqueued, django_capture_on_commit_callbacks
):
    """The savepoint's email loses its callback; the others' callbacks still publish every
    id in one task (the undone email's id finds no row: one claim for nothing)."""
    with django_capture_on_commit_callbacks(execute=True):
        first, last = queue_around_an_undone_savepoint()
    [ids] = published(enqueued)
    assert {first.pk, last.pk} <= set(ids)
    assert set(Email.objects.values_list("pk", flat=True)) == {first.pk, last.pk}


def test_a_batch_whose_only_callback_was_rolled_back_is_not_reused(
    template, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():
            queue("undone@example.com")
            raise RuntimeError("this part of the request failed")
        kept = queue("bob@example.com")
    assert published(enqueued) == [(kept.pk,)]


def test_emails_of_a_savepoint_that_rolled_back_alone_publish_nothing(
    template, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic(), \
            pytest.raises(RuntimeError), transaction.atomic():
        queue()
        raise RuntimeError("undone")
    enqueued.assert_not_called()


def test_the_next_transaction_starts_a_new_task(
    template, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        first = queue()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        second = queue("bob@example.com")
    assert published(enqueued) == [(first.pk,), (second.pk,)]


def test_a_big_transaction_is_published_in_tasks_of_batch_size(
    template, enqueued, settings, django_capture_on_commit_callbacks
):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "BATCH_SIZE": 2}
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        emails = [queue(f"user{i}@example.com") for i in range(5)]
    ids = [email.pk for email in emails]
    assert published(enqueued) == [tuple(ids[0:2]), tuple(ids[2:4]), tuple(ids[4:])]


def test_the_broker_down_at_commit_names_the_emails_left_to_the_sweep(
    template, caplog, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    with mock.patch.object(publishing, "publish", side_effect=OperationalError("refused")), \
            django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        emails = [queue(f"user{i}@example.com") for i in range(2)]
    assert f"Could not enqueue email(s) {emails[0].pk}, {emails[1].pk}" in caplog.text
    assert Email.objects.filter(status="queued").count() == 2


@pytest.mark.parametrize("error", [TypeError("unexpected keyword argument"),
                                   IndexError("a router reading args[3]")])
def test_a_message_that_cannot_be_built_directly_goes_through_apply_async(caplog, error):
    """From the first failure on (logged once), as a Celery whose internals moved or a
    failing router would need."""
    publishing.forget_options()
    try:
        with mock.patch.object(tasks.deliver.app.amqp, "create_task_message",
                               side_effect=error) as build, \
                mock.patch.object(tasks.deliver, "apply_async") as apply_async, \
                tasks.deliver.app.producer_or_acquire() as producer:
            publishing.publish(tasks.deliver, (5,), producer=producer)
            publishing.publish(tasks.deliver, (6,), producer=producer)
        assert [call.args for call in apply_async.call_args_list] == [((5,),), ((6,),)]
        assert build.call_count == 1
        assert caplog.text.count("through apply_async from now on") == 1
    finally:
        publishing.forget_options()


def test_an_id_given_again_in_one_transaction_is_delivered_once_and_keeps_its_retry(
    template, esp, enqueued, django_capture_on_commit_callbacks
):
    """SQLite gives the id of an email undone with its savepoint to the next email of the
    transaction: the task lists each id once, so the batch does not deliver that row twice
    (the second pass used to replace the first's retry). (Found by an attack.)"""
    with django_capture_on_commit_callbacks(execute=True):
        first, last = queue_around_an_undone_savepoint()
    [ids] = published(enqueued)
    assert len(ids) == len(set(ids)) and {first.pk, last.pk} <= set(ids)
    enqueued.reset_mock()

    esp.add_response(200)  # the first email
    esp.add_response(503)  # the last one: a transient failure, retried
    tasks.deliver(*ids)
    row = Email.objects.get(pk=last.pk)
    assert (row.status, row.attempts) == ("queued", 1)
    assert published(enqueued) == [(last.pk,)]


# --- The same message as apply_async's, whatever the Celery settings ---------------------

CONFIGS = {
    "routes-priority": {"task_routes": {"t.deliver": {"queue": "mail", "priority": 7}},
                        "task_queue_max_priority": 10},
    "custom-exchange": {"task_default_exchange": "tm-ex", "task_default_exchange_type": "topic",
                        "task_default_routing_key": "tm.rk"},
    "task-queues-topic": {"task_queues": [Queue("mailq", Exchange("mailx", type="topic"),
                                                routing_key="mail.#")],
                          "task_default_queue": "mailq"},
    "pickle": {"task_serializer": "pickle", "accept_content": ["pickle", "json"]},
    "msgpack": {"task_serializer": "msgpack"},
    "compression": {"task_compression": "zlib"},
    "protocol-1": {"task_protocol": 1},
    "default-priority": {"task_default_priority": 3},
    "delivery-mode": {"task_default_delivery_mode": "transient"},
    "annotations": {"task_annotations": {"t.deliver": {"time_limit": 30,
                                                       "soft_time_limit": 20}}},
    "sent-event": {"task_send_sent_event": True},
    "repr-levels": {"task_repr_maxlevels": 1},
}


def _fresh_app(conf: dict):
    app = Celery("other-settings", broker="memory://", set_as_current=False)
    app.conf.update(task_ignore_result=True, **conf)

    @app.task(name="t.deliver", ignore_result=True, shared=False)
    def deliver(email_id, *more_ids):
        return None

    app.finalize()
    return app, app.tasks["t.deliver"]


def _captured(app, publish_it) -> dict:
    with mock.patch.object(Producer, "publish") as kombu_publish, \
            app.producer_or_acquire() as producer:
        publish_it(producer)
    # A sent event (task_send_sent_event) is a second publish, to celeryev: compared too.
    calls = kombu_publish.call_args_list
    events = [c.args[0] for c in calls if c.kwargs.get("exchange") == "celeryev"]
    [call] = [c for c in calls if c.kwargs.get("exchange") != "celeryev"]
    body = call.args[0]
    if isinstance(body, dict):  # protocol 1 carries the id in the body
        body = {k: v for k, v in body.items() if k != "id"}
    message = {**call.kwargs, "body": body,
               "events": [{k: v for k, v in e.items()
                           if k not in {"uuid", "root_id", "timestamp", "local_received",
                                        "clock", "pid", "utcoffset"}} for e in events]}
    message["headers"] = {k: v for k, v in message["headers"].items() if k not in PER_MESSAGE}
    for key in ("declare",):
        message[key] = [repr(entity) for entity in message.get(key) or []]
    message["exchange"] = repr(message.get("exchange"))
    return {k: v for k, v in message.items() if k not in PER_MESSAGE}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_the_message_is_apply_asyncs_under_other_celery_settings(name):
    """On fresh Celery apps, each with other settings that shape a message."""
    app, task = _fresh_app(CONFIGS[name])
    ours = _captured(app, lambda p: publishing.publish(task, (7, 8), producer=p))
    celerys = _captured(app, lambda p: task.apply_async((7, 8), producer=p, retry=False))
    assert ours == celerys


def test_an_app_never_gets_the_options_of_another_that_had_its_id():
    """The options are cached per app object: an app made where a collected one lived
    (same id()) gets its own (a flaky run once sent json with pickle's options). Every id
    is made the same here, as the worst case of reuse."""
    with mock.patch.object(publishing, "id", lambda obj: 1, create=True):
        for name in ("pickle", "compression"):
            app, task = _fresh_app(CONFIGS[name])
            ours = _captured(app, lambda p, task=task: publishing.publish(task, (7,), producer=p))
            celerys = _captured(app, lambda p, task=task: task.apply_async((7,), producer=p,
                                                                           retry=False))
            assert ours == celerys, name
