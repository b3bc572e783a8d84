"""The example shop's scheduled mail: the weekly order report and the comment digest.

Run by ``tests/test_example_project.py`` in a subprocess with the example's settings, on a
scratch ``SHOP_DATA_DIR``, after the demo's setup; prints what happened as JSON.

- ``python example_scheduled.py report``: staff of every kind, then ``manage.py
  run_schedule weekly_order_report`` twice (the second run finds the period done), the
  beat row ``migrate`` installed, and the report's emails with the variables the
  ``weekly_report`` starter uses that their context lacks, in every language;
- ``python example_scheduled.py comments``: customers comment on the mug through the
  shop's view; the windows are closed with the app's own ``close_due_windows`` as the beat
  task would when they are due; the digest emails, rendered as the worker would.
"""

from __future__ import annotations

import html
import io
import json
import os
import re
import sys
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_site.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_celery_beat.models import PeriodicTask  # noqa: E402
from shop.models import Comment  # noqa: E402

from transactional_mail.api import parse_delay  # noqa: E402
from transactional_mail.models import DigestWindow, Email, EmailTemplate  # noqa: E402
from transactional_mail.rendering import render_email  # noqa: E402
from transactional_mail.rendering.preview import missing_variables  # noqa: E402
from transactional_mail.triggers.digests import close_due_windows  # noqa: E402


def setup() -> None:
    call_command("demo", "--setup-only", verbosity=0)


def missing(template_key: str, context: dict) -> dict[str, list[str]]:
    """``{language: [message, ...]}``: what each language's published ``template_key``
    uses that ``context`` lacks (subject, preheader, HTML, text)."""
    found = {}
    for template in EmailTemplate.objects.filter(key=template_key).select_related(
            "published_revision"):
        revision = template.published_revision
        found[template.language or "default"] = [
            f"{part}: {message.message}"
            for part in ("subject", "preheader", "html", "text")
            for message in missing_variables(getattr(revision, part), context, part=part)
        ]
    return found


UNSUBSCRIBE_URL = "http://127.0.0.1:8000/mail/unsubscribe/token/"


def rendered(email: Email) -> dict:
    """The queued email rendered as the worker will: its template's published revision
    (the default language's: the emails of these tests have none), in its layout, with
    the email's context; the subject and the text part."""
    template = EmailTemplate.objects.select_related("layout").get(key=email.template_key,
                                                                  language="")
    # Non-essential mail: the worker passes the email's own links to the layout's footer.
    result = render_email(template.published_revision, template.layout.published_revision,
                          email.context, unsubscribe_url=UNSUBSCRIBE_URL,
                          preferences_url=UNSUBSCRIBE_URL + "preferences/")
    return {"subject": result.subject, "text": result.text, "html": result.html,
            "unsubscribe_link": f'href="{UNSUBSCRIBE_URL}"' in result.html}


def report() -> None:
    setup()
    User = get_user_model()
    User.objects.create_user("grace", "grace@example.com", "x", is_staff=True,
                             first_name="Grace", last_name="Hopper")
    User.objects.create_user("gone", "gone@example.com", "x", is_staff=True, is_active=False)
    User.objects.create_user("noaddress", "", "x", is_staff=True)
    User.objects.create_user("customer", "customer@example.com", "x")  # not staff
    runs = []
    for _ in range(2):
        out = io.StringIO()
        call_command("run_schedule", "weekly_order_report", stdout=out)
        runs.append(out.getvalue().strip().splitlines()[-1])
    emails = Email.objects.filter(idempotency_key__startswith="schedule:").order_by("pk")
    row = PeriodicTask.objects.select_related("crontab").get(
        name="transactional_mail.schedule:weekly_order_report")
    print(json.dumps({
        "runs": runs,
        "emails": [{"to": email.to, "template": email.template_key, "status": email.status,
                    "category": email.category, "context": email.context,
                    **rendered(email)} for email in emails],
        "missing": missing("weekly_report", emails[0].context),
        "beat": {"task": row.task, "enabled": row.enabled, "kwargs": json.loads(row.kwargs),
                 "crontab": [row.crontab.minute, row.crontab.hour, row.crontab.day_of_week,
                             str(row.crontab.timezone)]},
    }))


def flash(response) -> list[str]:
    """The flash messages on the page a redirected post lands on."""
    listed = re.search(r'<ul class="messages">(.*?)</ul>', response.content.decode(), re.S)
    return [html.unescape(item) for item in re.findall(r"<li[^>]*>(.*?)</li>",
                                                       listed.group(1) if listed else "")]


def comments() -> None:
    setup()
    browser = Client(HTTP_HOST="localhost")
    said = {}

    def post(name: str, email: str, text: str, product: str = "mug") -> None:
        response = browser.post("/comment/", {"comment-email": email, "comment-product": product,
                                              "comment-text": text}, follow=True)
        said[name] = flash(response) if response.status_code == 200 else [
            response.status_code, re.findall(r'<ul class="errorlist[^>]*><li>(.*?)</li>',
                                             response.content.decode())]

    # The seed has Ada and Camille on the mug: each comment tells the other one.
    post("camille first", "camille@example.com", "Does it fit in a dishwasher?")
    post("camille again", "camille@example.com", "Answering myself: it does.")
    post("ada", "ada@example.com", "Mine went through a hundred washes.")
    post("camille third", "camille@example.com", "Thanks <b>Ada</b>!")
    post("stickers, nobody else", "ada@example.com", "Great stickers.", product="stickers")
    post("a stranger", "stranger@example.com", "Spam, spam, spam.")
    at_once = list(Email.objects.filter(trigger_key="comment_digest").values_list("pk", flat=True))
    # Per open window: its recipient, its events, and those still waiting (the first
    # went out at once).
    open_windows = [
        [window.recipient, window.items.count(), window.items.filter(email__isnull=True).count()]
        for window in DigestWindow.objects.filter(closed_at__isnull=True).order_by("recipient")]
    # Nothing is due yet: a sweep now sends nothing.
    early = close_due_windows()
    due = timezone.now() + parse_delay(settings.SHOP_DIGEST_WINDOW) + timedelta(seconds=1)
    closed = close_due_windows(now=due)
    again = close_due_windows(now=due)  # a second sweep (or a redelivered task): nothing
    emails = Email.objects.filter(trigger_key="comment_digest").order_by("pk")
    print(json.dumps({
        "said": said,
        "at_once": len(at_once),
        "open_windows": open_windows,
        "sweeps": [early, closed, again],
        "emails": [{"to": email.to, "status": email.status, "category": email.category,
                    "count": email.context["count"],
                    "titles": [item["title"] for item in email.context["items"]],
                    "digest": (email.idempotency_key or "").startswith("digest:"),
                    **rendered(email)} for email in emails],
        "missing": missing("comment_digest", emails.last().context),
        "comments": Comment.objects.count(),
    }))


if __name__ == "__main__":
    {"report": report, "comments": comments}[sys.argv[1]]()
