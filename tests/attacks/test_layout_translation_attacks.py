"""Attacks on layout translations, the translated footer and the logo upload (preview and
save): template injection, hostile language codes, bad URLs, polyglot images, big files."""

from __future__ import annotations

import base64

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

import transactional_mail
from tests.admin_clients import staff_client
from tests.factories import PNG, make_layout, make_template
from tests.test_admin_history import change_form_data
from tests.test_admin_layout_preview import PREVIEW, fields
from transactional_mail import delivery
from transactional_mail.admin.layout_translations import field_name
from transactional_mail.models import Email, Layout
from transactional_mail.rendering import render_email
from transactional_mail.rendering.validation import translation_problems

pytestmark = pytest.mark.django_db

TOKEN = "c4k9-1f2e3d4c5b6a"
RESET_URL = f"https://shop.example.com/reset/MQ/{TOKEN}/"


@pytest.fixture
def layout():
    layout = make_layout(
        legal_text="Why you get this email.",
        html="<html><body>{{ content }}<p>{{ brand.legal_text }}</p><p>{{ brand.footer_address }}"
             "</p><p>{{ brand.footer_html }}</p></body></html>")
    make_template("order_confirmation", layout=layout)
    make_template("order_confirmation", layout=layout, language="fr")
    return layout


def test_translated_values_are_not_template_code_in_the_email(layout, esp):
    """A translated address or legal text holding template code is shown as text: it never
    reads the email's context (a secret)."""
    layout.translations = {"fr": {"footer_address": "{{ reset_url }}",
                                  "legal_text": "{% for c in reset_url %}{{ c }}{% endfor %}",
                                  "footer_html": "<b>{{ reset_url }}{{ content }}</b>"}}
    layout.full_clean()
    layout.save()
    layout.publish()
    template = make_template("password_reset", layout=layout, language="fr",
                             html="<p>x</p>", category="account")
    rendered = render_email(template.current_revision, layout.current_revision,
                            {"reset_url": RESET_URL}, language="fr")
    assert TOKEN not in rendered.html and TOKEN not in rendered.text
    assert "{{ reset_url }}" in rendered.html  # shown as typed


@pytest.mark.parametrize("code", ["<script>", "FR", "fr_FR", "../fr", "", "f" * 200,
                                  "fr-", " fr"])
def test_a_language_code_that_is_not_one_is_refused(layout, code):
    layout.translations = {code: {"legal_text": "x"}}
    problems = translation_problems(layout)
    assert problems and "not a language code" in str(problems[0])


def test_a_language_code_with_a_trailing_newline_is_refused(layout):
    layout.translations = {"fr\n": {"legal_text": "x"}}
    assert translation_problems(layout)


@pytest.mark.parametrize("code", ["<img src=x onerror=alert(1)>", "FR", "../x"])
def test_the_preview_with_a_hostile_language_code_answers_errors_not_500(admin_client, code):
    response = admin_client.post(PREVIEW, {**fields(), field_name(code, "legal_text"): "x",
                                           "language": code})
    assert response.status_code == 200
    data = response.json()
    assert data["errors"]
    assert "<img" not in str(data.get("html", ""))


@pytest.mark.parametrize("url", ["javascript://%0aalert(1)", "javascript:alert(1)",
                                 "data:text/html,<script>alert(1)</script>",
                                 "file:///etc/passwd"])
def test_a_translated_help_link_must_be_http(layout, admin_client, url):
    page = f"/admin/transactional_mail/layout/{layout.pk}/change/"
    response = admin_client.post(page, change_form_data(admin_client, page, **{
        field_name("fr", "help_url"): url}))
    assert response.status_code == 200  # the form again, with the error
    layout.refresh_from_db()
    assert not layout.translations
    preview = admin_client.post(PREVIEW, {**fields(), field_name("fr", "help_url"): url,
                                          "language": "fr"}).json()
    assert preview["errors"]


def test_a_translated_footer_gets_the_checks_of_the_default_footer(layout):
    layout.translations = {"fr": {"footer_html": "<style>@import url(http://127.0.0.1/x.css);"
                                                 "</style>"}}
    with pytest.raises(ValidationError):
        layout.full_clean()
    layout.translations = {"fr": {"footer_html": '<p style="background:url(file:///etc/pass'
                                                 'wd)">x</p>'}}
    with pytest.raises(ValidationError):
        layout.full_clean()


def test_a_translated_value_rendered_into_the_css_gets_the_css_checks(layout):
    layout.css = '.legal:after { content: "{{ brand.legal_text }}"; }'
    layout.full_clean()  # the default legal text is harmless
    hostile = 'x"; } .a { background: url(file:///etc/passwd); } .b { content: "'
    layout.legal_text = hostile
    with pytest.raises(ValidationError):  # the default value is refused...
        layout.full_clean()
    layout.legal_text = "Why you get this email."
    layout.translations = {"fr": {"legal_text": hostile}}
    with pytest.raises(ValidationError):  # ...the same value as a translation is not
        layout.full_clean()


def test_an_oversize_translated_footer_is_refused_by_the_budget(layout, admin_client, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "RENDER_MAX_CHARS": 20_000}
    page = f"/admin/transactional_mail/layout/{layout.pk}/change/"
    response = admin_client.post(page, change_form_data(admin_client, page, **{
        field_name("fr", "footer_html"): "<p>" + "x" * 30_000 + "</p>"}))
    assert response.status_code == 200
    layout.refresh_from_db()
    assert not layout.translations


def test_view_only_staff_cannot_write_translations_through_the_change_form(layout):
    client = staff_client("viewer", ("view_layout",))
    page = f"/admin/transactional_mail/layout/{layout.pk}/change/"
    response = client.post(page, {"name": "x", field_name("fr", "legal_text"): "pwned"})
    assert response.status_code in (302, 403)
    layout.refresh_from_db()
    assert not layout.translations


# --- logo ------------------------------------------------------------------------------

POLYGLOTS = [
    PNG + b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
    PNG + b"<html><script>alert(document.domain)</script></html>",
    b"GIF89a/*<script>alert(1)</script>*/=1;",
]


@pytest.mark.parametrize("content", POLYGLOTS)
def test_a_polyglot_logo_is_previewed_only_as_the_image_type_of_its_magic(admin_client,
                                                                         content):
    for name in ("logo.png", "logo.svg", "logo.html"):
        data = admin_client.post(PREVIEW, {**fields(), "logo_file": SimpleUploadedFile(
            name, content, content_type="image/svg+xml")}).json()
        assert data["errors"] == []
        assert "data:image/svg" not in data["html"] and "data:text/html" not in data["html"]
        assert base64.b64encode(content).decode() in data["html"]
        assert "<script>" not in data["html"] and "onload=" not in data["html"]


@pytest.mark.parametrize("name", ["logo.svg", "logo.html", "logo.png.html", "logo"])
def test_a_polyglot_logo_is_never_stored_under_a_name_served_as_markup(settings, tmp_path,
                                                                      name):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.MEDIA_URL = "https://media.example.com/"
    layout = Layout(name="L", html="<html><body>{{ content }}</body></html>",
                    logo_file=SimpleUploadedFile(name, POLYGLOTS[0]))
    with pytest.raises(ValidationError) as caught:
        layout.full_clean()
    assert "logo_file" in caught.value.message_dict
    assert not list(tmp_path.rglob("*"))


def test_a_huge_upload_to_the_preview_is_refused(admin_client):
    big = PNG + b"\0" * 5_000_000
    data = admin_client.post(PREVIEW, {**fields(), "logo_file": SimpleUploadedFile(
        "logo.png", big)}).json()
    assert data["errors"][0]["part"] == "logo_file"
    assert "over 1 MB" in data["errors"][0]["message"]


def test_the_preview_endpoint_needs_layout_permission():
    client = staff_client("nobody", ())
    assert client.post(PREVIEW, fields()).status_code == 403


def test_the_translation_never_reaches_a_sent_email_s_subject(layout, esp):
    layout.translations = {"fr": {"legal_text": "Légal"}}
    layout.save()
    layout.publish()
    make_template("password_reset", layout=layout, language="fr", html="<p>x</p>",
                  subject="Sujet", category="account")
    email = transactional_mail.send("password_reset", "a@example.com", {}, language="fr")
    delivery.deliver(email.pk)
    assert Email.objects.get(pk=email.pk).subject == "Sujet"
    assert "Légal" in esp.requests[0].json["HtmlBody"]


def test_the_preview_stops_receiving_an_oversize_logo(monkeypatch):
    from django.core.files import uploadhandler

    received = {"bytes": 0}
    original = uploadhandler.TemporaryFileUploadHandler.receive_data_chunk

    def counting(self, raw_data, start):
        received["bytes"] += len(raw_data)
        return original(self, raw_data, start)

    monkeypatch.setattr(uploadhandler.TemporaryFileUploadHandler, "receive_data_chunk",
                        counting)
    client = staff_client("viewer2", ("view_layout",))
    big = PNG + b"\0" * 10_000_000
    data = client.post(PREVIEW, {**fields(), "logo_file": SimpleUploadedFile(
        "logo.png", big)}).json()
    assert "over 1 MB" in data["errors"][0]["message"]
    assert received["bytes"] <= 2 * 1_000_000
