"""The layout preview (admin/layout_preview.py): the page and the preview endpoint, with
the attempts a hostile or unauthorised user would make."""

from __future__ import annotations

import base64

import pytest

from tests.admin_clients import assert_needs_login_post_csrf_and_same_origin, staff_client
from tests.factories import ORDER_CONTEXT, PNG, make_layout, make_template
from transactional_mail.default_layout import default_layout_values
from transactional_mail.models import Layout

pytestmark = pytest.mark.django_db

PREVIEW = "/admin/transactional_mail/layout/preview/"


def staff(username="sam", perms=("view_layout",)):
    return staff_client(username, perms)


def fields(**overrides):
    values = {**default_layout_values(), "logo_url": "https://cdn.example.com/logo.png",
              "primary_color": "#1a73e8", "background_color": "#f4f4f5",
              "text_color": "#1f2937", "font_family": "Helvetica, Arial, sans-serif",
              "footer_address": "1 High Street", "legal_text": "", "help_url": ""}
    values.update(overrides)
    return values


# --- The page ------------------------------------------------------------------------------


def test_change_page_has_the_preview(admin_client):
    layout = make_layout()
    template = make_template(layout=layout)
    html = admin_client.get(f"/admin/transactional_mail/layout/{layout.pk}/change/"
                            ).content.decode()
    assert 'id="tm-layout-preview" hidden' in html  # shown by layout-preview.js
    assert f'data-preview-url="{PREVIEW}"' in html
    assert "transactional_mail/layout-preview.js" in html
    assert html.count('sandbox=""') == 4 and "allow-scripts" not in html
    assert f'<option value="{template.pk}">order_confirmation</option>' in html


def test_add_page_has_the_preview(admin_client):
    html = admin_client.get("/admin/transactional_mail/layout/add/").content.decode()
    assert 'id="tm-layout-preview"' in html


def test_templates_are_offered_only_to_who_may_view_them():
    layout = make_layout()
    make_template(layout=layout)
    html = staff().get(f"/admin/transactional_mail/layout/{layout.pk}/change/").content.decode()
    assert 'id="tm-layout-preview"' in html and "order_confirmation" not in html


# --- The preview -------------------------------------------------------------------------


def test_preview_renders_the_unsaved_layout_around_the_sample(admin_client):
    layout = make_layout()
    data = admin_client.post(PREVIEW, fields(primary_color="#123456")).json()
    assert data["errors"] == []
    assert data["subject"] == "Your order A-1001 is confirmed"
    html = data["html"]
    assert "Thanks for your order, Ann!" in html and "Canvas tote bag" in html
    assert "background-color:#123456" in html.replace(" ", "")  # inlined like the worker
    assert "1 High Street" in html
    layout.refresh_from_db()
    assert layout.revisions.count() == 1  # nothing saved


def test_the_dark_html_turns_the_dark_mode_rules_on(admin_client):
    data = admin_client.post(PREVIEW, fields()).json()
    assert "prefers-color-scheme: dark" in data["html"]
    dark = data["dark_html"]
    assert "prefers-color-scheme" not in dark and "#111827" in dark
    assert '<meta name="color-scheme" content="dark">' in dark


def test_preview_around_a_chosen_template_renders_its_draft(admin_client):
    template = make_template(sample_context=ORDER_CONTEXT)
    template.subject = "Draft {{ order.number }}"
    template.save()
    data = admin_client.post(PREVIEW, fields(template=str(template.pk))).json()
    assert data["subject"] == "Draft A-1001"
    assert "Hello Ann," in data["html"] and "Thanks for your order" not in data["html"]


def test_a_chosen_non_essential_template_shows_the_unsubscribe_line(admin_client, settings):
    """The default layout's footer line, as its emails will show it; not for essential
    mail, nor around the built-in sample."""
    settings.TRANSACTIONAL_MAIL = {
        **settings.TRANSACTIONAL_MAIL,
        "CATEGORIES": {"orders": {"essential": True}, "reviews": {"essential": False}}}
    review = make_template("review_request", category="reviews", sample_context=ORDER_CONTEXT)
    order = make_template(category="orders", sample_context=ORDER_CONTEXT)
    link = "/mail/unsubscribe/preview/"
    assert link in admin_client.post(PREVIEW, fields(template=str(review.pk))).json()["html"]
    assert link not in admin_client.post(PREVIEW, fields(template=str(order.pk))).json()["html"]
    assert link not in admin_client.post(PREVIEW, fields()).json()["html"]


def test_a_chosen_template_needs_the_templates_view_permission():
    template = make_template(sample_context=ORDER_CONTEXT)
    response = staff().post(PREVIEW, fields(template=str(template.pk)))
    assert response.status_code == 403 and "Hello" not in response.content.decode()
    allowed = staff("tia", perms=("view_layout", "view_emailtemplate"))
    assert allowed.post(PREVIEW, fields(template=str(template.pk))).status_code == 200


@pytest.mark.parametrize("template", ["999999", "x", "1 OR 1=1"])
def test_an_unknown_template_is_refused(admin_client, template):
    response = admin_client.post(PREVIEW, fields(template=template))
    assert response.status_code == 400 and "does not exist" in response.content.decode()


@pytest.mark.parametrize(("overrides", "field", "line", "words"), [
    ({"primary_color": "not-a-colour"}, "primary_color", None, "not a CSS colour"),
    ({"primary_color": "red; background: url(x)"}, "primary_color", None, "not a CSS colour"),
    ({"font_family": "Arial; color: red"}, "font_family", None, "not a font stack"),
    ({"help_url": "javascript:alert(1)"}, "help_url", None, "valid URL"),
    ({"html": "<html>\n<body>\n{% load static %}{{ content }}"}, "html", 3, "{% load %}"),
    ({"html": "<p>no slot</p>"}, "html", None, "content slot"),
    ({"css": "p { color: red; }\n@import url(http://10.0.0.1/x.css);"}, "css", 2, "@import"),
    ({"footer_html": "<p>\n{% if %}</p>"}, "footer_html", 2, ""),
])
def test_mistakes_are_errors_with_their_field_and_line(admin_client, overrides, field, line,
                                                       words):
    response = admin_client.post(PREVIEW, fields(**overrides))
    assert response.status_code == 200
    data = response.json()
    assert data["html"] == "" and data["dark_html"] == ""
    [error] = data["errors"]
    assert (error["part"], error["line"]) == (field, line)
    assert words in error["message"]


def test_a_layout_over_budget_is_stopped(admin_client, settings):
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_CHARS": 10_000}
    bomb = ("<html><body>\n" + "{% with a=brand.name|add:brand.name %}" * 1
            + "\n".join(["{% with a=a|add:a %}"] * 25) + "{{ a }}" + "{% endwith %}" * 26
            + "{{ content }}</body></html>")
    data = admin_client.post(PREVIEW, fields(html=bomb)).json()
    [error] = data["errors"]
    assert error["code"] == "budget" and "RENDER_MAX_CHARS" in error["message"]
    assert error["part"] == "html" and error["line"]


def test_a_chosen_template_over_budget_is_stopped(admin_client, settings):
    bomb = "\n".join(["{% with a=a|add:a %}"] * 25) + "{{ a }}" + "{% endwith %}" * 25
    template = make_template(html="<p>ok</p>", sample_context={"a": "x"})
    template.html = bomb  # as a revision saved before the budget existed
    type(template).objects.filter(pk=template.pk).update(html=bomb)
    template.current_revision.__class__.objects.filter(pk=template.current_revision_id).update(
        html=bomb)
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_CHARS": 10_000}
    data = admin_client.post(PREVIEW, fields(template=str(template.pk))).json()
    [error] = data["errors"]
    assert error["code"] == "budget" and error["part"] == "template html"


def test_preview_needs_view_or_add_permission():
    assert staff(perms=()).post(PREVIEW, fields()).status_code == 403
    assert staff("vic", perms=("view_layout",)).post(PREVIEW, fields()).status_code == 200
    assert staff("ada", perms=("add_layout",)).post(PREVIEW, fields()).status_code == 200
    other = staff("lou", perms=("view_emailtemplate", "change_emailtemplate", "view_email"))
    assert other.post(PREVIEW, fields()).status_code == 403


def test_preview_needs_a_login_post_csrf_and_same_origin(admin_user):
    assert_needs_login_post_csrf_and_same_origin(PREVIEW, fields(), admin_user)


def test_preview_html_is_data_not_markup_in_the_admin(admin_client):
    """The layout's HTML travels as a JSON string (shown in a sandboxed srcdoc)."""
    html = "<html><body><script>alert(1)</script>{{ content }}</body></html>"
    response = admin_client.post(PREVIEW, fields(html=html))
    assert response["Content-Type"] == "application/json"
    assert "<script>alert(1)</script>" in response.json()["html"]


def test_an_oversized_field_is_refused(admin_client):
    data = admin_client.post(PREVIEW, fields(legal_text="x" * 300_000)).json()
    [error] = data["errors"]
    assert error["part"] == "legal_text" and "at most" in error["message"]


def test_a_footer_that_does_not_compile_is_a_form_error_on_save(admin_client):
    """Saving checks the CSS by rendering it with the footer: a broken footer is named on
    its field (it used to escape as a TemplateSyntaxError, a server error)."""
    response = admin_client.post("/admin/transactional_mail/layout/add/", {
        **fields(name="Broken", footer_html="<p>\n{% if %}</p>"), "revision_note": ""})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["footer_html"] and "Line 2" in errors["footer_html"][0]
    assert not Layout.objects.filter(name="Broken").exists()


# --- A logo chosen for upload, previewed before it is saved ------------------------------


def logo(name: str, content: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile
    return SimpleUploadedFile(name, content)


def test_a_logo_chosen_for_upload_is_previewed_as_a_data_uri(admin_client):
    data = admin_client.post(PREVIEW, {**fields(), "logo_file": logo("logo.png", PNG)}).json()
    assert data["errors"] == []
    encoded = base64.b64encode(PNG).decode()
    assert f'src="data:image/png;base64,{encoded}"' in data["html"]
    assert "cdn.example.com/logo.png" not in data["html"]  # in place of the logo URL
    assert f"data:image/png;base64,{encoded}" in data["dark_html"]
    assert not Layout.objects.exclude(logo_file="").exists()  # nothing stored


@pytest.mark.parametrize(("content", "error"), [
    (b"<svg onload='alert(1)'/>", "not a PNG, JPEG, GIF or WebP image"),
    (b"<html><script>alert(1)</script>", "not a PNG, JPEG, GIF or WebP image"),
    (PNG + b"x" * 1_000_000, "over 1 MB"),
])
def test_a_logo_that_is_not_a_small_image_is_named_and_not_shown(admin_client, content,
                                                                  error):
    data = admin_client.post(PREVIEW, {**fields(), "logo_file": logo("logo.png",
                                                                     content)}).json()
    [problem] = data["errors"]
    assert problem["part"] == "logo_file" and error in problem["message"]
    assert data["html"] == ""


def test_a_logo_of_exactly_the_largest_size_is_previewed(admin_client, settings):
    from transactional_mail.rendering.brand import LOGO_MAX_BYTES

    # Its data: URI is shown in the preview twice (light and dark).
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "RENDER_MAX_CHARS": 10 * LOGO_MAX_BYTES}

    content = PNG + b"\0" * (LOGO_MAX_BYTES - len(PNG))
    data = admin_client.post(PREVIEW, {**fields(), "logo_file": logo("logo.png",
                                                                     content)}).json()
    assert data["errors"] == []
    assert base64.b64encode(content).decode() in data["html"]


@pytest.fixture
def bytes_read(monkeypatch):
    """How many bytes of the request body the view read (the test client's stream)."""
    from django.test.client import FakePayload

    read = {"bytes": 0}
    original = FakePayload.read

    def counting(self, *args, **kwargs):
        content = original(self, *args, **kwargs)
        read["bytes"] += len(content)
        return content

    monkeypatch.setattr(FakePayload, "read", counting)
    return read


def test_the_preview_stops_reading_the_request_past_the_largest_logo(admin_client,
                                                                     bytes_read):
    """The upload stops one byte past the limit: the rest of a big post is never read
    from the connection (nor spooled to a temporary file)."""
    from transactional_mail.rendering.brand import LOGO_MAX_BYTES

    data = admin_client.post(PREVIEW, {**fields(), "logo_file": logo(
        "logo.png", PNG + b"\0" * 20_000_000)}).json()
    [problem] = data["errors"]
    assert problem["part"] == "logo_file" and "over 1 MB" in problem["message"]
    assert bytes_read["bytes"] < LOGO_MAX_BYTES + 500_000


def test_a_file_in_another_field_is_not_received(admin_client, bytes_read):
    """Only the logo is received: a file posted in another field stops the upload (the
    fields posted before it are previewed)."""
    data = admin_client.post(PREVIEW, {**fields(), "other": logo("x.png", b"\0" * 5_000_000)}
                             ).json()
    assert data["errors"] == []
    assert bytes_read["bytes"] < 500_000


# --- The footer in other languages ---------------------------------------------------------


def test_the_preview_shows_an_unsaved_translation_in_the_chosen_language(admin_client):
    data = {**fields(legal_text="Why you get this."), "language": "fr",
            "translation__fr__legal_text": "Pourquoi vous recevez ceci.",
            "translation__fr__help_url": "help.example.com/fr/"}
    french = admin_client.post(PREVIEW, data).json()
    assert french["errors"] == []
    assert "Pourquoi vous recevez ceci." in french["html"]
    assert 'href="https://help.example.com/fr/"' in french["html"]
    assert 'lang="fr"' in french["html"]
    default = admin_client.post(PREVIEW, {**data, "language": ""}).json()
    assert "Why you get this." in default["html"] and "Pourquoi" not in default["html"]


def test_a_mistake_in_a_translation_is_named_with_its_language(admin_client):
    data = {**fields(), "language": "de", "translation__de__footer_html": "<p>{% if %}</p>"}
    [error] = admin_client.post(PREVIEW, data).json()["errors"]
    assert error["part"] == "de footer_html"


def test_the_language_choice_lists_the_templates_languages(admin_client):
    layout = make_layout()
    make_template("welcome", layout=layout, language="it")
    page = admin_client.get(f"/admin/transactional_mail/layout/{layout.pk}/change/")
    assert '<option value="it">Italian (it)</option>' in page.content.decode()


def test_a_long_template_list_is_cut_and_says_so(admin_client, monkeypatch):
    from transactional_mail.admin import layout_preview

    monkeypatch.setattr(layout_preview, "MAX_TEMPLATE_CHOICES", 2)
    layout = make_layout()
    for key in ("a_first", "b_second"):
        make_template(key, layout=layout)
    url = f"/admin/transactional_mail/layout/{layout.pk}/change/"
    assert "more templates" not in admin_client.get(url).content.decode()
    make_template("c_third", layout=layout)
    page = admin_client.get(url).content.decode()
    assert ">a_first<" in page and ">b_second<" in page and ">c_third<" not in page
    assert "… more templates: the first 2 by key are listed" in page
