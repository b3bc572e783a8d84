"""Secrets in a context (``send(secret_keys=...)``): rendered into the message, never
readable from the log, never resent.

The attacker of these tests has the send log's view permission (or the database's
rows) and wants a live reset link.
"""

from __future__ import annotations

import datetime
import io
import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.utils import timezone

import transactional_mail
from tests.esp_server import INVALID_TO, bounce_event, click_event, post_webhook, refused
from tests.factories import make_layout, make_template
from tests.testapp.models import Customer
from transactional_mail import delivery, resending, tasks
from transactional_mail.exceptions import InvalidEmailOption
from transactional_mail.models import Email, EmailAttempt, EmailStatus
from transactional_mail.redaction import (
    REDACTED,
    redact_context,
    redact_text,
    redact_url,
    secret_values,
)
from transactional_mail.triggers.checks import definition_problems

LOG = "/admin/transactional_mail/email/"
#: A reset link with the characters escaping changes: & and a space.
RESET_URL = "https://shop.example.com/reset/MQ/c4k9-1f2e3d4c5b6a/?next=/my orders&x=1"
CODE = "493817"
CONTEXT = {"user": {"name": "Ann", "email": "ann@example.com"}, "reset_url": RESET_URL,
           "code": CODE, "link_valid_hours": 1}


def leaks(text: str) -> list[str]:
    """The forms of the secrets found in ``text``."""
    forms = ["c4k9-1f2e3d4c5b6a", CODE]
    return [form for form in forms if form in text]


@pytest.fixture
def template(db):
    return make_template(
        "password_reset",
        subject="Your code is {{ code }}",
        html=('<p>Hi {{ user.name }},</p><p><a class="button" href="{{ reset_url }}">Choose '
              "a new password</a></p><p>Or paste {{ reset_url }}; code {{ code }}.</p>"),
        category="account",
        layout=make_layout(),
    )


def queue(**options) -> Email:
    return transactional_mail.send("password_reset", "ann@example.com", CONTEXT,
                                   secret_keys=["reset_url", "code"], **options)


def stored(email: Email) -> Email:
    return Email.objects.get(pk=email.pk)


def everything_stored(email: Email) -> str:
    """Every text the database holds about ``email``."""
    row = stored(email)
    attempts = " ".join(EmailAttempt.objects.filter(email_id=email.pk)
                        .values_list("error", flat=True))
    events = " ".join(json.dumps([event.click_url, event.raw, event.description])
                      for event in row.events.all())
    return " ".join([row.subject, row.html_body, row.text_body, row.last_error,
                     json.dumps(row.context), attempts, events])


# --- the pure functions ----------------------------------------------------------------


def test_every_spelling_of_a_secret_is_redacted():
    text = (f"{RESET_URL} | https://shop.example.com/reset/MQ/c4k9-1f2e3d4c5b6a/?next=/my "
            "orders&amp;x=1 | https%3A%2F%2Fshop.example.com%2Freset%2FMQ%2Fc4k9-1f2e3d4c5b6a"
            "%2F%3Fnext%3D%2Fmy%20orders%26x%3D1 | https%3A//shop.example.com/reset/MQ/"
            "c4k9-1f2e3d4c5b6a/%3Fnext%3D/my%20orders%26x%3D1")
    redacted = redact_text(text, [RESET_URL])
    assert leaks(redacted) == []
    assert redacted.count(REDACTED) == 4


def test_the_context_loses_its_secret_keys_and_their_copies_elsewhere():
    context = {"reset_url": RESET_URL, "code": 123456, "note": f"link: {RESET_URL}",
               "user": {"name": "Ann"}}
    assert redact_context(context, ["reset_url", "code"]) == {
        "reset_url": REDACTED, "code": REDACTED, "note": f"link: {REDACTED}",
        "user": {"name": "Ann"}}
    assert secret_values(context, ["code"]) == ["123456"]
    assert secret_values(redact_context(context, ["code"]), ["code"]) == []


def test_a_url_is_cut_to_its_origin():
    assert redact_url(RESET_URL) == f"https://shop.example.com/{REDACTED}"
    assert redact_url("not a url") == REDACTED


# --- send() ----------------------------------------------------------------------------


def test_send_stores_the_secret_keys(template):
    assert queue().secret_keys == ["reset_url", "code"]


def test_a_secret_key_the_context_lacks_is_refused(template):
    with pytest.raises(InvalidEmailOption, match="'reset_link', which the context does not"):
        transactional_mail.send("password_reset", "ann@example.com", CONTEXT,
                                secret_keys=["reset_link"])
    assert not Email.objects.exists()


# --- delivery ---------------------------------------------------------------------------


def test_the_esp_gets_the_secret_and_the_log_keeps_none(template, esp):
    email = queue()
    assert delivery.deliver(email.pk).status == EmailStatus.SENT
    [request] = esp.requests
    assert "c4k9-1f2e3d4c5b6a" in request.json["HtmlBody"]
    assert RESET_URL in request.json["TextBody"]
    assert request.json["Subject"] == f"Your code is {CODE}"
    row = stored(email)
    assert row.context["reset_url"] == REDACTED and row.context["code"] == REDACTED
    assert row.context["user"] == {"name": "Ann", "email": "ann@example.com"}
    assert row.subject == f"Your code is {REDACTED}"
    assert REDACTED in row.html_body and REDACTED in row.text_body
    assert leaks(everything_stored(email)) == []


def test_a_retry_renders_the_secret_again_but_stores_no_copy(template, esp):
    esp.add_response(500, {"ErrorCode": 100, "Message": f"Error near {RESET_URL}"})
    email = queue()
    assert delivery.deliver(email.pk).status == EmailStatus.QUEUED
    row = stored(email)
    assert row.context["reset_url"] == RESET_URL  # needed for the retry
    assert leaks(" ".join([row.subject, row.html_body, row.text_body, row.last_error])) == []
    assert leaks(EmailAttempt.objects.get(email_id=email.pk).error) == []

    Email.objects.filter(pk=email.pk).update(next_attempt_at=timezone.now())
    assert delivery.deliver(email.pk).status == EmailStatus.SENT
    assert RESET_URL in esp.requests[-1].json["TextBody"]
    assert leaks(everything_stored(email)) == []


def test_a_permanent_failure_redacts_the_context(template, esp):
    esp.add_response(422, refused(INVALID_TO, "ann@example.com"))
    email = queue()
    assert delivery.deliver(email.pk).status == EmailStatus.FAILED
    assert leaks(everything_stored(email)) == []


def test_an_email_cancelled_in_the_admin_loses_its_secrets(template, admin_client):
    email = queue()
    admin_client.post(LOG, {"action": "cancel_scheduled", "_selected_action": [email.pk]})
    assert stored(email).status == EmailStatus.CANCELLED
    assert leaks(everything_stored(email)) == []


def test_an_email_the_sweep_gives_up_on_loses_its_secrets(template, settings, enqueued):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "MAX_ATTEMPTS": 3}
    email = queue()
    Email.objects.filter(pk=email.pk).update(
        status=EmailStatus.SENDING, claimed_at=timezone.now() - datetime.timedelta(hours=1),
        attempts=3)
    assert tasks.sweep_outbox()["failed"] == 1
    assert stored(email).status == EmailStatus.FAILED
    assert leaks(everything_stored(email)) == []


# --- the admin ---------------------------------------------------------------------------


@pytest.fixture
def viewer(client):
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_email", "resend_email", "cancel_email"]))
    client.force_login(user)
    return client


def test_the_detail_page_hides_the_secrets_of_a_queued_email(template, viewer):
    email = queue()
    html = viewer.get(f"{LOG}{email.pk}/change/").content.decode()
    assert leaks(html) == []
    assert "reset_url, code" in html  # which keys are secret is shown


def test_the_detail_page_hides_secrets_an_email_waiting_for_a_retry_holds(template, viewer,
                                                                         esp):
    esp.add_response(500, {"ErrorCode": 100, "Message": f"Error near {RESET_URL}"})
    email = queue()
    delivery.deliver(email.pk)
    # Rows written before redaction existed, or by hand: the page hides them anyway.
    Email.objects.filter(pk=email.pk).update(subject=f"code {CODE}",
                                             last_error=f"near {RESET_URL}")
    EmailAttempt.objects.filter(email_id=email.pk).update(error=f"near {RESET_URL}")
    html = viewer.get(f"{LOG}{email.pk}/change/").content.decode()
    assert leaks(html) == []
    assert stored(email).context["reset_url"] == RESET_URL


def test_the_list_and_the_recipient_page_show_no_secret(template, viewer, esp):
    esp.add_response(500, {"ErrorCode": 100, "Message": "busy"})
    email = queue()
    delivery.deliver(email.pk)  # a subject is stored now, with the code in it
    assert leaks(viewer.get(LOG).content.decode()) == []
    page = viewer.get(f"{LOG}recipient/", {"address": "ann@example.com"})
    assert leaks(page.content.decode()) == []


@pytest.mark.parametrize("lookup", ["context__icontains", "subject__contains",
                                    "context__reset_url__startswith"])
def test_the_list_cannot_be_filtered_on_secrets(template, viewer, lookup):
    """A lookup guessing the link character by character is refused, not answered."""
    queue()
    response = viewer.get(LOG, {lookup: "https://shop.example.com/reset/MQ/c"})
    listed = getattr(response, "context_data", None) or {}
    assert response.status_code in (302, 400)
    assert "cl" not in listed


@pytest.mark.parametrize("term", [RESET_URL, CODE, "c4k9-1f2e3d4c5b6a"])
def test_the_search_finds_no_email_by_its_secret(template, viewer, term):
    """The search box reads addresses and ids, never the context: no oracle either."""
    queue()
    response = viewer.get(LOG, {"q": term})
    assert list(response.context["cl"].result_list) == []


def test_resend_of_an_email_with_secrets_is_refused_with_the_reason(template, viewer, esp):
    email = queue()
    delivery.deliver(email.pk)
    page = viewer.get(f"{LOG}{email.pk}/change/").content.decode()
    assert 'name="tm-resend"' not in page
    assert "it held secrets (reset_url, code), which are not kept; issue a new one" in page
    response = viewer.post(LOG, {"action": "resend_selected", "_selected_action": [email.pk]},
                           follow=True)
    messages = [str(message) for message in response.context["messages"]]
    assert any("not queued again: it held secrets (reset_url, code)" in m for m in messages)
    viewer.post(f"{LOG}{email.pk}/action/resend/")
    assert stored(email).status == EmailStatus.SENT
    assert resending.resend_ids(Email.objects.all(), force=True) == []


def test_retry_failed_refuses_an_email_with_secrets(template, esp):
    esp.add_response(422, refused(INVALID_TO, "ann@example.com"))
    email = queue()
    delivery.deliver(email.pk)
    out = io.StringIO()
    call_command("resend_emails", "--failed", stdout=out)
    assert "Queued 0 email(s)" in out.getvalue()
    assert (f"Skipped email {email.pk} (failed: it held secrets (reset_url, code), which are "
            "not kept; issue a new one)") in out.getvalue()
    out = io.StringIO()
    call_command("resend_emails", str(email.pk), "--force", stdout=out)
    assert "Queued 0 email(s)" in out.getvalue()
    assert stored(email).status == EmailStatus.FAILED


# --- tracking ---------------------------------------------------------------------------


def test_a_click_on_the_reset_link_is_stored_without_it(template, esp, client):
    email = queue()
    delivery.deliver(email.pk)
    email.refresh_from_db()
    assert post_webhook(client, click_event(email, url=RESET_URL)).status_code == 200
    [event] = email.events.all()
    assert event.click_url == f"https://shop.example.com/{REDACTED}"
    assert leaks(everything_stored(email)) == []


def test_a_bounce_quoting_the_message_is_stored_without_its_links(template, esp, client):
    email = queue()
    delivery.deliver(email.pk)
    email.refresh_from_db()
    payload = {**bounce_event(email), "Content": f"Choose a new password: {RESET_URL}"}
    assert post_webhook(client, payload).status_code == 200
    [event] = email.events.all()
    assert event.raw["Content"].startswith(
        f"Choose a new password: https://shop.example.com/{REDACTED}")
    assert leaks(everything_stored(email)) == []


def test_clicks_on_other_emails_keep_their_url(esp, client, db):
    make_template()
    email = transactional_mail.send("order_confirmation", "ann@example.com",
                                    {"order": {"number": "1"}})
    delivery.deliver(email.pk)
    email.refresh_from_db()
    post_webhook(client, click_event(email, url="https://shop.example.com/o/1"))
    assert email.events.get().click_url == "https://shop.example.com/o/1"


# --- triggers ---------------------------------------------------------------------------


def test_a_trigger_marks_its_secret_keys(template, settings):
    definition = {"model": "testapp.Customer", "on": "created", "template": "password_reset",
                  "to": "email", "context": "tests.test_redaction.reset_context",
                  "secret_keys": ["reset_url"]}
    assert definition_problems("reset", definition) == []
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "TRIGGERS": {"reset": definition}}
    Customer.objects.create(name="Ann", email="ann@example.com")
    assert Email.objects.get(trigger_key="reset").secret_keys == ["reset_url"]


def test_a_trigger_s_secret_key_its_context_lacks_fails_that_email(template, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "TRIGGERS": {"reset": {
        "model": "testapp.Customer", "on": "created", "template": "password_reset",
        "to": "email", "context": "tests.test_redaction.reset_context",
        "secret_keys": ["reset_link"]}}}
    Customer.objects.create(name="Ann", email="ann@example.com")
    email = Email.objects.get(trigger_key="reset")
    assert email.status == EmailStatus.FAILED
    assert "secret_keys names 'reset_link', which the context does not have" in \
        email.last_error


def reset_context(customer) -> dict:
    return {"user": {"name": customer.name}, "reset_url": RESET_URL}


@pytest.mark.parametrize("value", ["reset_url", [""], [1]])
def test_a_trigger_s_secret_keys_must_be_a_list_of_keys(value):
    definition = {"model": "testapp.Customer", "on": "created",
                  "template": "password_reset", "to": "email", "secret_keys": value}
    [(message, hint)] = definition_problems("reset", definition)
    assert message.startswith("'secret_keys' is ")
    assert hint == "For example ['reset_url'] or ['code']."


def test_a_real_object_preview_never_shows_a_trigger_s_secret(settings, db):
    """The preview builds the trigger's context for a real customer: a live secret."""
    from tests.test_admin_editor import PREVIEW, staff
    from tests.test_admin_real_preview import real

    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "TRIGGERS": {"reset": {
        "model": "testapp.Customer", "on": "updated", "template": "password_reset",
        "to": "email", "context": "tests.test_redaction.reset_context",
        "secret_keys": ["reset_url"]}}}
    template = make_template("password_reset", html="<p>{{ reset_url }}</p>",
                             category="account")
    customer = Customer.objects.create(name="Ann", email="ann@example.com")
    data = staff(perms=("view_emailtemplate", "view_email")).post(
        PREVIEW, real(template, customer)).json()
    assert data["errors"] == []
    assert data["context"]["reset_url"] == REDACTED
    assert leaks(json.dumps(data)) == []
