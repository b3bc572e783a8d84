"""The plain first admin: every page loads, the log is view-only and searchable."""

from __future__ import annotations

import pytest

import transactional_mail
from tests.factories import make_layout, make_template
from transactional_mail.models import Email, Trigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def email():
    make_template(layout=make_layout())
    return transactional_mail.send("order_confirmation", "ann@example.com",
                                   {"order": {"number": "A-1"}})


@pytest.mark.parametrize("page", [
    "/admin/transactional_mail/email/",
    "/admin/transactional_mail/emailtemplate/",
    "/admin/transactional_mail/layout/",
    "/admin/transactional_mail/suppression/",
    "/admin/transactional_mail/trigger/",
])
def test_changelists_load(admin_client, email, page):
    assert admin_client.get(page).status_code == 200


@pytest.mark.parametrize(("term", "found"), [
    ("ann@example.com", True), ("bob@example.com", False), ("not-a-number", False),
])
def test_send_log_search(admin_client, email, term, found):
    response = admin_client.get("/admin/transactional_mail/email/", {"q": term})
    assert response.status_code == 200
    assert (email in response.context["cl"].result_list) is found


def test_search_by_id(admin_client, email):
    response = admin_client.get("/admin/transactional_mail/email/", {"q": str(email.pk)})
    assert list(response.context["cl"].result_list) == [email]


def test_send_log_is_view_only(admin_client, email):
    change = admin_client.get(f"/admin/transactional_mail/email/{email.pk}/change/")
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert admin_client.post(f"/admin/transactional_mail/email/{email.pk}/delete/",
                             {"post": "yes"}).status_code == 403
    assert Email.objects.filter(pk=email.pk).exists()


def test_template_change_page_lists_revisions(admin_client, email):
    template = make_template("welcome", subject="Hi")
    template.subject = "Hello"
    template.save()
    page = admin_client.get(f"/admin/transactional_mail/emailtemplate/{template.pk}/change/")
    assert page.status_code == 200
    assert b"Hello" in page.content and b"Hi" in page.content


def test_send_log_page_shows_what_was_sent_and_when(admin_client, email):
    email.text_body = "Thank you, Ann! Order A-1."
    email.html_body = "<p>Thank you, <b>Ann</b>!</p>"
    email.save()
    page = admin_client.get(f"/admin/transactional_mail/email/{email.pk}/change/")
    html = page.content.decode()
    assert "Thank you, Ann! Order A-1." in html
    assert "&lt;p&gt;Thank you, &lt;b&gt;Ann&lt;/b&gt;!&lt;/p&gt;" in html  # in srcdoc, escaped
    assert "Created at" in html and "Status changed at" in html


def test_send_log_filters_by_status_template_trigger_category_date_and_test(admin_client,
                                                                             email):
    """Each filter's choices come from the templates, the triggers and the settings."""
    Trigger.objects.create(key="welcome")
    changelist = admin_client.get("/admin/transactional_mail/email/")
    specs = {str(spec.title) for spec in changelist.context["cl"].filter_specs}
    assert specs == {"status", "template", "trigger", "category", "created", "test email"}


def test_template_whose_sample_renders_over_budget_is_a_form_error(admin_client):
    """The change form shows the budget error on the field, and nothing is saved."""
    doubling = "\n".join(["{% with a=a|add:a %}"] * 25) + "{{ a }}" + "{% endwith %}" * 25
    response = admin_client.post("/admin/transactional_mail/emailtemplate/add/", {
        "key": "bomb", "language": "", "subject": "Hi", "html": doubling, "text": "",
        "category": "", "layout": "", "sample_context": '{"a": "0123456789abcdef"}',
        "revisions-TOTAL_FORMS": "0", "revisions-INITIAL_FORMS": "0",
    })
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["html"]
    assert error.startswith("Line 17: the render was stopped")
    assert "RENDER_MAX_CHARS" in error


def test_layout_css_importing_a_stylesheet_is_a_form_error(admin_client):
    response = admin_client.post("/admin/transactional_mail/layout/add/", {
        "name": "Brand", "html": "{{ content }}",
        "css": "p { color: red }\n@import url(https://x.test/a.css);",
        "logo_url": "", "primary_color": "#000000", "background_color": "#ffffff",
        "text_color": "#000000", "footer_html": "",
    })
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["css"]
    assert error.startswith("Line 2: @import is not allowed")
