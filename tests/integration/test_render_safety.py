"""Hostile templates against a real worker: no fetch, no runaway render.

The revisions are written with ``QuerySet.update()``, around the checks on save, as rows
saved before those checks existed would be. The worker must neither fetch a stylesheet
nor let a template exhaust it, and must go on delivering.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fetch_trap import FetchTrap
from tests.integration.helpers import (
    CONTEXT,
    WORKER_MAIL_SETTINGS,
    send_committed,
    settle,
    wait_for_status,
)
from transactional_mail.models import EmailTemplate, LayoutRevision, TemplateRevision

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

#: 25 nested doublings: 512 MiB of output (1.6 GB of memory) without the budget.
DOUBLING = "\n".join(["{% with a=a|add:a %}"] * 25) + "{{ a }}" + "{% endwith %}" * 25


@pytest.fixture
def trap():
    trap = FetchTrap()
    yield trap
    trap.close()


def test_a_stylesheet_never_makes_the_worker_fetch(redis_worker, esp, welcome_template, trap):
    """@import in the layout's CSS, in a template's <style> and in context data rendered
    into a <style>: the email is sent with the other rules inlined, and neither the
    listener nor the file is touched."""
    LayoutRevision.objects.filter(pk=welcome_template.layout.current_revision_id).update(
        css=trap.imports() + ".box { color: #123456; }"
    )
    TemplateRevision.objects.filter(pk=welcome_template.current_revision_id).update(
        html=(
            f"<style>{trap.imports()} h1 {{ color: #654321 }}</style>"
            "<style>{{ css }}</style><h1>Hello {{ name }}</h1>"
        )
    )
    email = send_committed("welcome", ["ann@example.com"], {**CONTEXT, "css": trap.imports()})

    email = wait_for_status(email, "sent")

    [request] = esp.requests_for(email.pk)
    body = request.json["HtmlBody"]
    assert "#123456" in body and "#654321" in body
    assert "@import" not in body
    trap.assert_untouched()


def _peak_rss_of_children(pid: int) -> int:
    """The highest resident set (kB) any child of ``pid`` (the prefork pool) reached."""
    peak = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid) and "VmHWM" in fields:
            peak = max(peak, int(fields["VmHWM"].split()[0]))
    return peak


def test_a_template_bomb_fails_once_and_the_worker_goes_on(
    scratch_broker, spawn_worker, esp, welcome_template
):
    """The bomb fails permanently after one attempt, naming the budget; the worker's
    memory stays bounded, it is not retried (by the task or the sweep), and the worker
    delivers the next email."""
    worker = spawn_worker("redis-scratch", name="bomb-worker")
    bomb_template = EmailTemplate.objects.create(key="bomb", subject="Hi", html="<p>Hi</p>")
    bomb_template.publish()
    TemplateRevision.objects.filter(pk=bomb_template.current_revision_id).update(html=DOUBLING)

    bomb = send_committed("bomb", ["ann@example.com"], {"a": "0123456789abcdef"})
    bomb = wait_for_status(bomb, "failed")

    assert bomb.attempts == 1
    assert "[permanent]" in bomb.last_error
    assert "RENDER_MAX_CHARS" in bomb.last_error
    settle(2 * WORKER_MAIL_SETTINGS["RETRY_BACKOFF_MAX"] + WORKER_MAIL_SETTINGS["SWEEP_INTERVAL"])
    bomb.refresh_from_db()
    assert (bomb.status, bomb.attempts) == ("failed", 1)
    assert esp.requests_for(bomb.pk) == []

    assert worker.alive
    # A prefork child of a fresh worker is about 100 MB; the bomb took 1.6 GB.
    assert _peak_rss_of_children(worker.proc.pid) < 400_000
    email = send_committed("welcome", ["ann@example.com"], CONTEXT)
    wait_for_status(email, "sent")
    assert len(esp.accepted_for(email.pk)) == 1
