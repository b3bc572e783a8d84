"""The layout form's footer in other languages (admin/layout_translations.py): a fieldset
per language the templates are written in; mistakes on the field at fault; emails in
that language get the translated footer."""

from __future__ import annotations

import pytest

from tests.factories import make_layout, make_template
from tests.test_admin_history import change_form_data
from transactional_mail.admin.layout_translations import field_name
from transactional_mail.models import Layout
from transactional_mail.rendering import render_email

pytestmark = pytest.mark.django_db

ADMIN = "/admin/transactional_mail/layout"


@pytest.fixture
def layout():
    layout = make_layout(legal_text="Why you get this email.",
                         html="<html><body>{{ content }}<p>{{ brand.legal_text }}</p>"
                              "<p>{{ brand.footer_html }}</p></body></html>")
    make_template("order_confirmation", layout=layout)
    make_template("order_confirmation", layout=layout, language="fr")
    make_template("order_confirmation", layout=layout, language="de")
    return layout


def change_url(layout) -> str:
    return f"{ADMIN}/{layout.pk}/change/"


def test_a_fieldset_per_language_of_the_templates(layout, admin_client):
    page = admin_client.get(change_url(layout)).content.decode()
    assert "Footer in French (fr)" in page and "Footer in German (de)" in page
    assert f'name="{field_name("fr", "legal_text")}"' in page
    assert 'name="translations"' not in page  # the JSON itself is not edited by staff


def test_the_change_page_looks_the_template_languages_up_once(layout, admin_client):
    """The fieldsets, the form and the preview's language list share one lookup."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(change_url(layout)).content.decode()
    assert "Footer in French (fr)" in page
    lookups = [query["sql"] for query in queries.captured_queries
               if "DISTINCT" in query["sql"] and '"language"' in query["sql"]]
    assert len(lookups) == 1, lookups


def test_saving_a_translation_records_a_draft_and_french_emails_show_it(layout,
                                                                        admin_client):
    url = change_url(layout)
    response = admin_client.post(url, change_form_data(admin_client, url, **{
        field_name("fr", "legal_text"): "Pourquoi vous recevez cet e-mail.",
        field_name("fr", "help_url"): "help.example.com/fr/",
    }))
    assert response.status_code == 302
    layout.refresh_from_db()
    assert layout.translations == {"fr": {"legal_text": "Pourquoi vous recevez cet e-mail.",
                                          "help_url": "https://help.example.com/fr/"}}
    revision = layout.current_revision
    assert revision.translations == layout.translations and layout.has_unpublished_changes
    french = make_template("welcome", layout=layout, language="fr").current_revision
    assert "Pourquoi vous recevez" in render_email(french, revision, {}, language="fr").html
    assert "Why you get this email." in render_email(french, revision, {}, language="en").html


def test_the_form_shows_the_saved_translation_and_blank_values_are_dropped(layout,
                                                                           admin_client):
    layout.translations = {"fr": {"legal_text": "Mentions"}, "it": {"legal_text": "Note"}}
    layout.save()
    url = change_url(layout)
    data = change_form_data(admin_client, url)
    assert data[field_name("fr", "legal_text")] == "Mentions"
    assert data[field_name("it", "legal_text")] == "Note"  # kept: the layout has it
    data[field_name("it", "legal_text")] = " "
    assert admin_client.post(url, data).status_code == 302
    layout.refresh_from_db()
    assert layout.translations == {"fr": {"legal_text": "Mentions"}}


def test_a_footer_that_does_not_compile_is_an_error_on_its_field(layout, admin_client):
    url = change_url(layout)
    response = admin_client.post(url, change_form_data(admin_client, url, **{
        field_name("de", "footer_html"): "<p>{% if %}</p>",
        field_name("de", "help_url"): "not a url",
    }))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "line 1" in " ".join(errors[field_name("de", "footer_html")]).lower()
    assert errors[field_name("de", "help_url")]
    assert Layout.objects.get(pk=layout.pk).revisions.count() == 1  # nothing saved


def test_a_translated_footer_over_budget_is_refused(layout, admin_client, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "RENDER_MAX_CHARS": 50_000}
    url = change_url(layout)
    response = admin_client.post(url, change_form_data(admin_client, url, **{
        field_name("fr", "footer_html"):
            "{% for a in 'xxxxxxxxxx' %}{% for b in 'xxxxxxxxxx' %}{% for c in 'xxxxxxxxxx' %}"
            "{% for d in 'xxxxxxxxxx' %}<p>long line of footer</p>{% endfor %}{% endfor %}"
            "{% endfor %}{% endfor %}",
    }))
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors[field_name("fr", "footer_html")]
    assert "50,000" in error or "50000" in error, error


def test_a_view_only_user_sees_no_editable_translation(layout, django_user_model, client):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", "v@example.com", "pw",
                                                 is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_layout"))
    client.force_login(user)
    layout.translations = {"fr": {"legal_text": "Mentions <b>légales</b>"}}
    layout.save()
    page = client.get(change_url(layout)).content.decode()
    assert "Footer in French (fr)" in page
    assert f'name="{field_name("fr", "legal_text")}"' not in page
    assert "Mentions &lt;b&gt;légales&lt;/b&gt;" in page  # shown, escaped


def test_the_history_diff_shows_translations_as_json(layout, admin_client):
    layout.translations = {"fr": {"legal_text": "Mentions <légales>"}}
    layout.save()
    page = admin_client.get(f"{ADMIN}/{layout.pk}/revisions/diff/?a=1&b=2").content.decode()
    assert "Footer in other languages" in page
    assert "&lt;légales&gt;" in page and "<légales>" not in page  # escaped, as text
