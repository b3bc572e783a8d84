"""Publishing from a thread (``PUBLISH_IN_BACKGROUND``) with a real Redis broker and a real
prefork worker: every email is sent once, requests share tasks, and a process that exits
before its thread published still hands its emails over."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from celery.signals import after_task_publish

from tests.integration.helpers import CONTEXT, describe, send_committed, settle
from tests.workers import REPO_ROOT, wait_for
from transactional_mail import background_publish
from transactional_mail.models import Email, EmailStatus

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def background(settings, monkeypatch):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "PUBLISH_IN_BACKGROUND": True}
    monkeypatch.setattr(background_publish, "_publisher", None)  # this test's own thread
    monkeypatch.setattr(background_publish, "GATHER", 0.2)
    yield
    background_publish.flush()


def test_emails_of_separate_requests_share_tasks_and_are_each_sent_once(
    redis_worker, esp, welcome_template, background
):
    published = []

    def count(sender=None, body=None, **kwargs):
        if sender == "transactional_mail.deliver":
            published.append(body[0])

    after_task_publish.connect(count, weak=False)
    try:
        emails = [send_committed("welcome", [f"user{n}@example.com"], CONTEXT)
                  for n in range(20)]
        wait_for(lambda: Email.objects.filter(status=EmailStatus.SENT).count() == 20, 60,
                 message=lambda: "; ".join(describe(email.pk) for email in emails))
    finally:
        after_task_publish.disconnect(count)
    settle()
    assert esp.accepted_counts() == {str(email.pk): 1 for email in emails}
    # The thread published the 20 committed emails in a few tasks, not one per request.
    assert sorted(email_id for task in published for email_id in task) == sorted(
        email.pk for email in emails)
    assert 1 <= len(published) < 10


PRODUCER = textwrap.dedent("""
    import django
    django.setup()
    import tests.celery_app  # the site's Celery app, as a project's __init__ imports it
    from django.db import transaction
    from transactional_mail import background_publish, send
    background_publish.GATHER = 60  # the thread cannot publish before the exit
    with transaction.atomic():
        email = send("welcome", ["exit@example.com"], {"name": "Ann", "order": {}})
    assert background_publish.publisher(None).waiting() == 1
    print(email.pk)
""")


def test_ids_waiting_at_exit_are_published_by_the_exiting_process(
    redis_worker, esp, welcome_template, make_env, services
):
    """No beat, no sweep here: only the producer's exit can have published the task."""
    env = make_env("redis", PUBLISH_IN_BACKGROUND=True)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-c", PRODUCER], env=env, capture_output=True,
                            text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    email_id = int(result.stdout.split()[-1])
    wait_for(lambda: Email.objects.get(pk=email_id).status == EmailStatus.SENT, 30,
             message=lambda: f"{describe(email_id)}; the producer said: {result.stderr}")
    assert esp.accepted_counts() == {str(email_id): 1}


def test_a_broker_down_when_the_thread_publishes_loses_nothing(
    redis_worker, broker_switch, send_task, esp, welcome_template, background
):
    """The thread's publish fails (logged); the commit neither raised nor waited, the row
    waits in the outbox and the sweep sends it."""
    broker_switch.down()
    email = send_committed("welcome", ["down@example.com"], CONTEXT)
    background_publish.flush()  # what the thread would do: the publish fails, logged
    assert Email.objects.get(pk=email.pk).status == EmailStatus.QUEUED

    def swept():
        if Email.objects.get(pk=email.pk).status == EmailStatus.SENT:
            return True
        send_task("redis", "transactional_mail.sweep_outbox")
        return False

    wait_for(swept, 30, interval=1.0, message=lambda: describe(email.pk))
    settle()
    assert esp.accepted_counts() == {str(email.pk): 1}
