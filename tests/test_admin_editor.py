"""The template editor (admin/editor.py): the page, the preview and the test send endpoints,
with the attempts a hostile or unauthorised user would make."""

from __future__ import annotations

import json

import pytest
from django.test import Client

import transactional_mail
from tests.admin_clients import assert_needs_login_post_csrf_and_same_origin, staff_client
from tests.factories import ORDER_CONTEXT, make_layout, make_template
from transactional_mail import delivery
from transactional_mail.admin.editor import TEST_SENDS_PER_MINUTE
from transactional_mail.models import Email

pytestmark = pytest.mark.django_db

PREVIEW = "/admin/transactional_mail/emailtemplate/preview/"


def send_test_url(template):
    return f"/admin/transactional_mail/emailtemplate/{template.pk}/send-test/"


def staff(username="sam", email="sam@example.com", perms=("view_emailtemplate",)):
    return staff_client(username, perms, email)


def fields(**overrides):
    values = {"subject": "Order {{ order.number }}", "html": "<p>Hi {{ customer.name }}</p>",
              "text": "Hi {{ customer.name }}", "layout": "", "language": "",
              "sample_context": json.dumps(ORDER_CONTEXT)}
    values.update(overrides)
    return values


@pytest.fixture
def template():
    return make_template(sample_context=ORDER_CONTEXT)


# --- The page ------------------------------------------------------------------------------


def test_change_page_has_the_editor_and_its_vendored_files(admin_client, template):
    page = admin_client.get(f"/admin/transactional_mail/emailtemplate/{template.pk}/change/")
    html = page.content.decode()
    assert 'id="tm-editor" hidden' in html  # shown by editor.js: without JS, plain textareas
    assert "transactional_mail/vendor/codemirror/codemirror.js" in html
    assert "transactional_mail/editor.js" in html
    assert '<textarea name="subject"' in html and 'data-tm-mode="html"' in html
    assert 'sandbox=""' in html and "allow-scripts" not in html
    assert 'data-send-url="/admin/transactional_mail/emailtemplate/' in html


def test_add_page_has_a_preview_but_no_test_send(admin_client):
    html = admin_client.get("/admin/transactional_mail/emailtemplate/add/").content.decode()
    assert f'data-preview-url="{PREVIEW}"' in html and 'id="tm-test-send"' not in html


def test_the_page_still_saves_without_javascript(admin_client, template):
    response = admin_client.post(
        f"/admin/transactional_mail/emailtemplate/{template.pk}/change/",
        {**fields(subject="New {{ order.number }}"), "key": template.key, "category": "",
         "revisions-TOTAL_FORMS": "0", "revisions-INITIAL_FORMS": "0"})
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.subject == "New {{ order.number }}"


# --- Preview ---------------------------------------------------------------------------


def test_preview_renders_unsaved_sources(admin_client, template):
    data = admin_client.post(PREVIEW, fields(html="<p>Hi {{ customer.name }} {{ coupon }}</p>"),
                             ).json()
    assert data["subject"] == "Order A-1001"
    assert "<p>Hi Ann </p>" in data["html"] and data["text"] == "Hi Ann"
    assert data["errors"] == []
    [warning] = data["warnings"]
    assert warning["code"] == "missing_variable" and "coupon" in warning["message"]
    assert "order.number" in data["variables"]
    template.refresh_from_db()
    assert template.subject == "Order {{ order.number }} confirmed"  # nothing saved


def test_preview_in_a_layout(admin_client):
    layout = make_layout(footer_html="Shop Ltd")
    data = admin_client.post(PREVIEW, fields(layout=str(layout.pk))).json()
    assert "Shop Ltd" in data["html"] and 'style="' in data["html"]  # inlined like the worker


@pytest.mark.parametrize("category, shown", [("reviews", True), ("orders", False),
                                              ("undeclared", False)])
def test_preview_shows_the_unsubscribe_line_of_non_essential_mail(admin_client, settings,
                                                                  category, shown):
    """As the email will: the layout's {% if unsubscribe_url %} line, with stand-in links
    whose token opens nothing."""
    settings.TRANSACTIONAL_MAIL = {
        **settings.TRANSACTIONAL_MAIL, "BASE_URL": "https://shop.example.com",
        "CATEGORIES": {"orders": {"essential": True}, "reviews": {"essential": False}}}
    layout = make_layout(footer_html='{% if unsubscribe_url %}<a href="{{ unsubscribe_url }}">'
                                     'Unsubscribe</a>{% endif %}')
    data = admin_client.post(PREVIEW, fields(layout=str(layout.pk), category=category)).json()
    assert data["errors"] == []
    link = "https://shop.example.com/mail/unsubscribe/preview/"
    assert (link in data["html"]) is shown
    assert ("Unsubscribe" in data["html"]) is shown
    if shown:  # clicked in the preview, or posted: the invalid-link page, no suppression
        from transactional_mail.models import Suppression

        answer = Client().post(link.removeprefix("https://shop.example.com"))
        assert answer.status_code == 400
        assert not Suppression.objects.exists()


def test_preview_errors_name_the_line(admin_client):
    data = admin_client.post(PREVIEW, fields(html="<p>\n{% load static %}")).json()
    [error] = data["errors"]
    assert (error["part"], error["line"]) == ("html", 2)
    assert data["html"] == ""


def test_preview_over_budget_is_stopped(admin_client, settings):
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_CHARS": 10_000}
    bomb = "\n".join(["{% with a=a|add:a %}"] * 25) + "{{ a }}" + "{% endwith %}" * 25
    data = admin_client.post(PREVIEW, fields(html=bomb, sample_context='{"a": "x"}')).json()
    [error] = data["errors"]
    assert error["code"] == "budget" and "RENDER_MAX_CHARS" in error["message"]


@pytest.mark.parametrize(("context", "message"), [
    ('{"a": ', "not valid JSON"),
    ("[1]", "must be a JSON object"),
    ('{"a": ' + "[" * 500 + "]" * 500 + "}", "levels deep"),
    ('{"a": NaN}', "NaN is not JSON data"),
])
def test_preview_refuses_a_bad_context_with_a_clear_message(admin_client, context, message):
    response = admin_client.post(PREVIEW, fields(sample_context=context))
    assert response.status_code == 400
    assert message in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("layout", ["999999", "x", "1 OR 1=1"])
def test_preview_refuses_an_unknown_layout(admin_client, layout):
    response = admin_client.post(PREVIEW, fields(layout=layout))
    assert response.status_code == 400 and "layout" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("language", ["../../../../etc", "fr\x00", "x" * 500])
def test_preview_ignores_what_is_not_a_language_code(admin_client, language):
    data = admin_client.post(PREVIEW, fields(language=language)).json()
    assert data["subject"] == "Order A-1001"


def test_preview_renders_in_the_language(admin_client):
    data = admin_client.post(PREVIEW, fields(
        html='{{ when|as_datetime|date:"F" }}', sample_context='{"when": "2026-11-29"}',
        language="fr")).json()
    assert "novembre" in data["html"]


def test_preview_needs_view_or_add_permission(template):
    assert staff(perms=()).post(PREVIEW, fields()).status_code == 403
    assert staff("vic", perms=("view_emailtemplate",)).post(PREVIEW, fields()).status_code == 200
    assert staff("ada", perms=("add_emailtemplate",)).post(PREVIEW, fields()).status_code == 200
    other = staff("lou", perms=("view_email", "view_layout", "change_layout"))
    assert other.post(PREVIEW, fields()).status_code == 403


def test_preview_needs_a_login_post_csrf_and_same_origin(admin_user):
    assert_needs_login_post_csrf_and_same_origin(PREVIEW, fields(), admin_user)


def test_preview_html_is_data_not_markup_in_the_admin(admin_client):
    """The preview's HTML travels as a JSON string (shown in a sandboxed srcdoc)."""
    response = admin_client.post(PREVIEW, fields(html="<script>alert(1)</script>"))
    assert response["Content-Type"] == "application/json"
    assert response.json()["html"] == "<script>alert(1)</script>"


# --- Test send -------------------------------------------------------------------------


def test_test_send_to_ones_own_address_through_the_outbox(template, enqueued):
    client = staff()
    response = client.post(send_test_url(template), {"sample_context": '{"order": {"number": 7}}'})
    assert response.status_code == 200, response.content
    email = Email.objects.get(pk=response.json()["email_id"])
    assert email.to == ["sam@example.com"] and email.tags == ["test"]
    assert email.metadata["test"] == "1"
    assert email.metadata["revision_id"] == str(template.current_revision_id)
    assert email.context == {"order": {"number": 7}}
    assert email.template_key == template.key


def test_a_test_send_renders_the_draft_while_customers_get_the_published_revision(
    template, esp, enqueued
):
    """Preview and test send use the draft; a customer's email keeps the published one."""
    template.subject = "DRAFT {{ order.number }}"
    template.save()  # a draft: not published
    response = staff().post(send_test_url(template),
                            {"sample_context": json.dumps(ORDER_CONTEXT)})
    test_email = Email.objects.get(pk=response.json()["email_id"])
    assert test_email.is_test
    customer_email = transactional_mail.send("order_confirmation", "cus@example.com",
                                             ORDER_CONTEXT)
    assert delivery.deliver(test_email.pk).status == "sent"
    assert delivery.deliver(customer_email.pk).status == "sent"
    subjects = {request.json["To"]: request.json["Subject"] for request in esp.requests}
    assert subjects == {"sam@example.com": "DRAFT A-1001",
                        "cus@example.com": "Order A-1001 confirmed"}


def test_test_send_reaches_the_esp(template, esp, enqueued):
    response = staff().post(send_test_url(template),
                            {"sample_context": json.dumps(ORDER_CONTEXT)})
    email_id = response.json()["email_id"]
    assert delivery.deliver(email_id).status == "sent"
    [request] = esp.requests_for(email_id)
    assert request.json["To"] == "sam@example.com"
    assert request.json["Subject"] == "Order A-1001 confirmed"
    assert request.json["Metadata"]["test"] == "1"


def test_another_address_needs_the_permission(template, enqueued):
    response = staff().post(send_test_url(template), {"to": "victim@example.com"})
    assert response.status_code == 403 and "own address" in response.json()["errors"][0][
        "message"]
    assert not Email.objects.exists()
    allowed = staff("ops", perms=("view_emailtemplate", "send_test_emailtemplate"))
    response = allowed.post(send_test_url(template), {"to": "qa@example.com"})
    assert response.status_code == 200
    assert Email.objects.get().to == ["qa@example.com"]


@pytest.mark.parametrize("to", [
    "sam@example.com, victim@example.com",
    "Sam <sam@example.com>\r\nBcc: victim@example.com",
    "SAM@example.com\nBcc: victim@example.com",
])
def test_own_address_cannot_be_stretched_to_others(template, enqueued, to):
    response = staff().post(send_test_url(template), {"to": to})
    assert response.status_code == 403
    assert not Email.objects.exists()


def test_a_hostile_address_is_refused_even_with_the_permission(template, enqueued):
    client = staff(perms=("view_emailtemplate", "send_test_emailtemplate"))
    response = client.post(send_test_url(template), {"to": "a@example.com\nBcc: b@example.com"})
    assert response.status_code == 400
    assert not Email.objects.exists()


def test_a_user_without_an_address_is_told(template, enqueued):
    response = staff(email="").post(send_test_url(template))
    assert response.status_code == 400 and "no email address" in response.content.decode()


def test_test_sends_are_rate_limited_per_user(template, enqueued):
    client = staff()
    statuses = [client.post(send_test_url(template)).status_code
                for _ in range(TEST_SENDS_PER_MINUTE + 2)]
    assert statuses == [200] * TEST_SENDS_PER_MINUTE + [429, 429]
    assert Email.objects.count() == TEST_SENDS_PER_MINUTE
    assert staff("other", "other@example.com").post(send_test_url(template)).status_code == 200


def test_test_send_refusals(template, enqueued, admin_user):
    assert staff("nobody", perms=()).post(send_test_url(template)).status_code == 403
    client = staff()
    assert client.get(send_test_url(template)).status_code == 405
    assert client.post(send_test_url(template), headers={"Sec-Fetch-Site": "cross-site"}
                       ).status_code == 403
    assert client.post(send_test_url(template), {"sample_context": "[]"}).status_code == 400
    missing = "/admin/transactional_mail/emailtemplate/999999/send-test/"
    assert client.post(missing).status_code == 403
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(admin_user)
    assert csrf.post(send_test_url(template)).status_code == 403
    assert not Email.objects.exists()


def test_the_form_has_the_preheader_and_the_preview_renders_it(admin_client, template):
    page = admin_client.get(f"/admin/transactional_mail/emailtemplate/{template.pk}/change/")
    assert 'name="preheader"' in page.content.decode()
    layout = make_layout(html='<html><body><div class="preheader">{{ brand.preheader }}</div>'
                              "{{ content }}</body></html>")
    data = admin_client.post(PREVIEW, fields(layout=str(layout.pk),
                                             preheader="For {{ customer.name }} {{ coupon }}")
                             ).json()
    assert '<div class="preheader">For Ann</div>' in data["html"]  # one line, trimmed
    [warning] = data["warnings"]
    assert warning["part"] == "preheader" and "coupon" in warning["message"]
