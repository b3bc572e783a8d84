"""The admin's drafts, publishing and history (transactional_mail.admin.history).

Staff are untrusted authors here: every view and action is tried without the permission
it needs, without CSRF, with the wrong method, and with markup in the content shown.
"""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.db.models.fields.files import FieldFile
from django.test import Client

import transactional_mail
from tests.factories import PNG, make_layout, make_template
from transactional_mail import delivery
from transactional_mail.models import EmailTemplate, Layout, TemplateRevision

pytestmark = pytest.mark.django_db

ADMIN = "/admin/transactional_mail"


def change_form_data(client, url: str, **changes) -> dict:
    """The POST data of the admin change form at ``url`` as shown, with ``changes``."""
    response = client.get(url)
    assert response.status_code == 200
    data = {}
    form = response.context["adminform"].form
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, FieldFile):
            continue  # a file input posts nothing unless a file is chosen
        if isinstance(value, (dict, list)):
            value = json.dumps(value)
        data[name] = "" if value is None else value
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name in formset.management_form.fields:
            data[f"{formset.prefix}-{name}"] = formset.management_form[name].value()
        for subform in formset.forms:
            for name in subform.fields:
                value = subform[name].value()
                data[subform.add_prefix(name)] = "" if value is None else value
    data.update(changes)
    return data


def staff(django_user_model, *codenames: str, username: str = "staff"):
    user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(
        content_type__app_label="transactional_mail", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture
def template():
    return make_template(layout=make_layout())


@pytest.fixture
def editor(django_user_model):
    """May view and change templates, not publish them."""
    return staff(django_user_model, "view_emailtemplate", "change_emailtemplate",
                 username="editor")


@pytest.fixture
def publisher(django_user_model):
    return staff(django_user_model, "view_emailtemplate", "change_emailtemplate",
                 "publish_emailtemplate", "view_layout", "change_layout", "publish_layout",
                 username="publisher")


def edit(client, template, **changes):
    url = f"{ADMIN}/emailtemplate/{template.pk}/change/"
    return client.post(url, change_form_data(client, url, **changes))


# ---- saving: a draft, with its author and note ------------------------------------------


def test_saving_in_the_admin_records_a_draft_with_its_author_and_note(template, editor):
    user, client = editor
    response = edit(client, template, subject="New {{ order.number }}",
                    revision_note="Shorter subject")
    assert response.status_code == 302
    template.refresh_from_db()
    draft = template.current_revision
    assert (draft.number, draft.subject, draft.created_by, draft.note) == (
        2, "New {{ order.number }}", user, "Shorter subject")
    assert template.published_revision.number == 1  # customers still get revision 1


def test_the_change_list_shows_and_filters_unpublished_changes(template, admin_client):
    clean = make_template("welcome", subject="Hi")
    template.subject = "Draft"
    template.save()
    never = make_template("never", subject="Hi", publish=False)
    page = admin_client.get(f"{ADMIN}/emailtemplate/")
    assert "unpublished changes" in page.content.decode().lower()
    assert set(page.context["cl"].result_list) == {template, clean, never}
    unpublished = admin_client.get(f"{ADMIN}/emailtemplate/", {"unpublished": "yes"})
    assert set(unpublished.context["cl"].result_list) == {template, never}
    published = admin_client.get(f"{ADMIN}/emailtemplate/", {"unpublished": "no"})
    assert list(published.context["cl"].result_list) == [clean]


@pytest.mark.parametrize(("field", "value", "line"), [
    ("subject", "Order {{ order.number }} confirmed {{ order.number ", 1),
    ("html", "<p>Hi</p>\n<p>{% if x</p>", 2),
    ("text", "Hi\n\nthere {{ name", 3),
])
def test_an_unclosed_opener_shows_on_the_form_and_nothing_is_saved(template, admin_client,
                                                                   field, value, line):
    response = edit(admin_client, template, **{field: value})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors[field]
    assert errors[0].startswith(f"Line {line}: ") and "is not closed" in errors[0]
    assert template.revisions.count() == 1


# ---- publishing ---------------------------------------------------------------------------


def test_a_publisher_publishes_the_draft_from_the_change_form(template, publisher, esp):
    template.subject = "Draft {{ order.number }}"
    template.save()
    user, client = publisher
    page = client.get(f"{ADMIN}/emailtemplate/{template.pk}/change/")
    assert b"Publish draft #2" in page.content
    response = client.post(f"{ADMIN}/emailtemplate/{template.pk}/publish/")
    assert response.status_code == 302
    assert response["Location"] == f"{ADMIN}/emailtemplate/{template.pk}/change/"
    template.refresh_from_db()
    assert template.published_revision.number == 2
    entry = LogEntry.objects.get(object_id=str(template.pk))
    assert (entry.user, entry.action_flag, entry.get_change_message()) == (
        user, CHANGE, "Published revision #2.")
    delivery.deliver(transactional_mail.send("order_confirmation", "a@example.com",
                                             {"order": {"number": "7"}}).pk)
    assert esp.requests[0].json["Subject"] == "Draft 7"
    assert b"Publish draft" not in client.get(
        f"{ADMIN}/emailtemplate/{template.pk}/change/").content


def test_without_the_publish_permission_nothing_publishes(template, editor):
    """No button, a 403 on the URL, and the action is not offered (nor run if posted)."""
    template.subject = "Draft"
    template.save()
    _user, client = editor
    assert b"Publish draft" not in client.get(
        f"{ADMIN}/emailtemplate/{template.pk}/change/").content
    assert client.post(f"{ADMIN}/emailtemplate/{template.pk}/publish/").status_code == 403
    assert b"publish_selected" not in client.get(f"{ADMIN}/emailtemplate/").content
    client.post(f"{ADMIN}/emailtemplate/", {"action": "publish_selected",
                                            "_selected_action": [template.pk]})
    template.refresh_from_db()
    assert template.published_revision.number == 1
    assert not LogEntry.objects.exists()


def test_publishing_needs_post_and_csrf(template, django_user_model):
    template.subject = "Draft"
    template.save()
    user, _client = staff(django_user_model, "view_emailtemplate", "change_emailtemplate",
                          "publish_emailtemplate")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(f"{ADMIN}/emailtemplate/{template.pk}/publish/").status_code == 405
    assert client.post(f"{ADMIN}/emailtemplate/{template.pk}/publish/").status_code == 403
    template.refresh_from_db()
    assert template.published_revision.number == 1


def test_the_publish_action_publishes_each_selected_draft_and_logs_it(template, publisher):
    other = make_template("welcome", subject="Hi", publish=False)
    template.subject = "Draft"
    template.save()
    _user, client = publisher
    response = client.post(f"{ADMIN}/emailtemplate/", {
        "action": "publish_selected", "_selected_action": [template.pk, other.pk]})
    assert response.status_code == 302
    assert not any(t.has_unpublished_changes for t in EmailTemplate.objects.all())
    assert LogEntry.objects.count() == 2


def test_a_template_whose_layout_was_never_published_is_not_published(publisher):
    template = make_template(layout=make_layout(publish=False), publish=False)
    _user, client = publisher
    response = client.post(f"{ADMIN}/emailtemplate/{template.pk}/publish/", follow=True)
    assert "publish the layout first" in response.content.decode()
    template.refresh_from_db()
    assert template.published_revision is None


def test_a_missing_object_is_a_404(publisher):
    _user, client = publisher
    assert client.post(f"{ADMIN}/emailtemplate/999/publish/").status_code == 404
    assert client.get(f"{ADMIN}/emailtemplate/999/revisions/").status_code == 404


# ---- history --------------------------------------------------------------------------------


def test_the_history_lists_every_revision_with_author_time_note_and_state(template, editor):
    user, client = editor
    edit(client, template, subject="Second", revision_note="Friendlier")
    page = client.get(f"{ADMIN}/emailtemplate/{template.pk}/revisions/")
    assert page.status_code == 200
    html = page.content.decode()
    assert [r.number for r in page.context["revisions"]] == [2, 1]
    assert "Friendlier" in html and "editor" in html
    assert 'class="published"' in html and 'class="draft"' in html
    assert html.count("Restore as new draft") == 1  # not offered for the draft itself
    assert f'href="{ADMIN}/emailtemplate/{template.pk}/revisions/"' in client.get(
        f"{ADMIN}/emailtemplate/{template.pk}/change/").content.decode()


def test_notes_and_authors_are_shown_escaped(template, django_user_model, admin_client):
    author = django_user_model.objects.create(username="<b>eve</b>")
    template.subject, template.revision_author = "Second", author
    template.revision_note = "<img src=x onerror=alert(1)>"
    template.save()
    html = admin_client.get(f"{ADMIN}/emailtemplate/{template.pk}/revisions/").content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
    assert "&lt;b&gt;eve&lt;/b&gt;" in html and "<b>eve</b>" not in html


def test_a_viewer_sees_the_history_but_cannot_restore(template, django_user_model):
    template.subject = "Second"
    template.save()
    _user, client = staff(django_user_model, "view_emailtemplate")
    page = client.get(f"{ADMIN}/emailtemplate/{template.pk}/revisions/")
    assert page.status_code == 200 and b"Restore as new draft" not in page.content
    assert client.post(
        f"{ADMIN}/emailtemplate/{template.pk}/revisions/1/restore/").status_code == 403
    assert template.revisions.count() == 2


def test_without_view_permission_the_history_is_refused(template, django_user_model):
    _user, client = staff(django_user_model, "view_layout")
    for url in ("revisions/", "revisions/1/", "revisions/diff/?a=1&b=1"):
        assert client.get(f"{ADMIN}/emailtemplate/{template.pk}/{url}").status_code == 403


def test_one_revision_shows_its_content_escaped(template, admin_client):
    template.html = "<p>{{ x }}</p><script>alert('x')</script>"
    template.save()
    page = admin_client.get(f"{ADMIN}/emailtemplate/{template.pk}/revisions/2/")
    html = page.content.decode()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert f'href="{ADMIN}/emailtemplate/{template.pk}/revisions/">Revisions</a>' in html
    assert admin_client.get(
        f"{ADMIN}/emailtemplate/{template.pk}/revisions/9/").status_code == 404


def test_the_diff_compares_subject_html_and_text_side_by_side_escaped(template, admin_client):
    template.subject = "Order {{ order.number }} shipped"
    template.html = '<p>Hi</p><img src=x onerror="alert(1)"><script>alert(2)</script>'
    template.save()
    page = admin_client.get(f"{ADMIN}/emailtemplate/{template.pk}/revisions/diff/",
                            {"a": "2", "b": "1"})
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<table class="diff"') == 2  # subject and HTML; the text is unchanged
    assert "No change." in html
    text = re.sub(r"<[^>]+>", "", html).replace("&nbsp;", " ")
    assert "{{ order.number }} confirmed" in text and "{{ order.number }} shipped" in text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize("query", [{}, {"a": "1"}, {"a": "x", "b": "1"}, {"a": "1", "b": "7"}])
def test_the_diff_needs_two_existing_revisions(template, admin_client, query):
    page = admin_client.get(f"{ADMIN}/emailtemplate/{template.pk}/revisions/diff/", query)
    assert page.status_code == 404


def test_restore_records_a_new_draft_with_the_old_content(template, editor):
    user, client = editor
    template.subject, template.html = "Second", "<p>Second</p>"
    template.save()
    response = client.post(f"{ADMIN}/emailtemplate/{template.pk}/revisions/1/restore/")
    assert response.status_code == 302
    template.refresh_from_db()
    draft = template.current_revision
    first = TemplateRevision.objects.get(template=template, number=1)
    assert (draft.number, draft.subject, draft.html, draft.created_by) == (
        3, first.subject, first.html, user)
    assert draft.note == "Restored from revision #1."
    assert template.published_revision.number == 1  # a draft, not published
    assert LogEntry.objects.get().get_change_message() == "Restored from revision #1."


def test_restore_needs_post_csrf_and_change_permission(template, django_user_model):
    template.subject = "Second"
    template.save()
    user, _client = staff(django_user_model, "view_emailtemplate", "change_emailtemplate")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = f"{ADMIN}/emailtemplate/{template.pk}/revisions/1/restore/"
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403  # no CSRF token
    assert template.revisions.count() == 2


def test_restoring_a_revision_todays_validation_refuses_saves_nothing(template, admin_client):
    """An old revision stored before a rule existed is refused on restore, with the reason."""
    TemplateRevision.objects.filter(pk=template.current_revision_id).update(
        subject="Order {{ order.number ")
    template.subject = "Fixed"
    template.save()
    response = admin_client.post(
        f"{ADMIN}/emailtemplate/{template.pk}/revisions/1/restore/", follow=True)
    assert "was not restored" in response.content.decode()
    assert "is not closed" in response.content.decode()
    assert template.revisions.count() == 2


def test_restoring_the_current_content_adds_no_revision(template, admin_client):
    response = admin_client.post(
        f"{ADMIN}/emailtemplate/{template.pk}/revisions/1/restore/", follow=True)
    assert "already has the content" in response.content.decode()
    assert template.revisions.count() == 1


# ---- layouts ------------------------------------------------------------------------------


def test_layouts_have_drafts_publishing_and_history_too(publisher, django_user_model):
    layout = make_layout()
    _user, client = publisher
    url = f"{ADMIN}/layout/{layout.pk}/change/"
    response = client.post(url, change_form_data(client, url, footer_html="New footer",
                                                 revision_note="New address"))
    assert response.status_code == 302
    layout.refresh_from_db()
    assert layout.has_unpublished_changes and layout.current_revision.note == "New address"
    diff = client.get(f"{ADMIN}/layout/{layout.pk}/revisions/diff/", {"a": 1, "b": 2})
    assert "New&nbsp;footer" in diff.content.decode()  # HtmlDiff keeps spaces so
    _editor, editor_client = staff(django_user_model, "view_layout", "change_layout",
                                   "publish_emailtemplate", username="layout-editor")
    assert editor_client.post(f"{ADMIN}/layout/{layout.pk}/publish/").status_code == 403
    assert client.post(f"{ADMIN}/layout/{layout.pk}/publish/").status_code == 302
    assert Layout.objects.get(pk=layout.pk).published_revision.footer_html == "New footer"


@pytest.mark.parametrize(("field", "value"), [
    ("primary_color", "not-a-colour"), ("text_color", "#12"),
    ("font_family", "Arial; color: red"),
])
def test_a_bad_brand_value_shows_on_the_layout_form(admin_client, field, value):
    layout = make_layout()
    url = f"{ADMIN}/layout/{layout.pk}/change/"
    response = admin_client.post(url, change_form_data(admin_client, url, **{field: value}))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field]
    assert layout.revisions.count() == 1


# ---- the send log links to the revision ---------------------------------------------------


def test_the_send_log_links_to_the_exact_revision_an_email_used(template, admin_client):
    email = transactional_mail.send("order_confirmation", "a@example.com",
                                    {"order": {"number": "1"}})
    delivery.deliver(email.pk)
    template.subject = "Later"
    template.save()
    page = admin_client.get(f"{ADMIN}/email/{email.pk}/change/")
    assert (f'href="{ADMIN}/emailtemplate/{template.pk}/revisions/1/"'
            in page.content.decode())


# ---- the layout's logo upload -------------------------------------------------------------



@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    settings.MEDIA_URL = "https://cdn.example.com/media/"
    return tmp_path


def post_logo(client, layout, name="logo.png", content=PNG):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = f"{ADMIN}/layout/{layout.pk}/change/"
    data = change_form_data(client, url, logo_file=SimpleUploadedFile(name, content))
    return client.post(url, data)


def test_an_uploaded_logo_goes_to_the_default_storage_and_becomes_the_logo_url(
        admin_client, media):
    layout = make_layout()
    assert post_logo(admin_client, layout).status_code == 302
    layout.refresh_from_db()
    assert layout.logo_file.name.startswith("transactional_mail/logos/logo")
    assert (media / layout.logo_file.name).read_bytes() == PNG
    assert layout.current_revision.logo_url == (
        f"https://cdn.example.com/media/{layout.logo_file.name}")
    assert layout.has_unpublished_changes  # a new logo is a draft like any change


@pytest.mark.parametrize(("name", "content", "media_url", "error"), [
    ("logo.svg", b"<svg onload='alert(1)'/>", "https://cdn.example.com/media/", "extension"),
    ("logo.png", PNG, "/media/", "relative URL"),
    ("logo.png", b"x" * 1_000_001, "https://cdn.example.com/media/", "over 1 MB"),
    ("logo.png", b"<html><script>alert(1)</script>", "https://cdn.example.com/media/",
     "not a PNG, JPEG, GIF or WebP image"),
])
def test_a_logo_upload_that_would_not_show_in_mail_is_refused_on_the_form(
        admin_client, media, settings, name, content, media_url, error):
    settings.MEDIA_URL = media_url
    layout = make_layout()
    response = post_logo(admin_client, layout, name, content)
    assert response.status_code == 200
    assert error in " ".join(response.context["adminform"].form.errors["logo_file"])
    assert layout.revisions.count() == 1
    assert not list(media.rglob("logo*"))


def test_the_diff_includes_the_preheader(template, admin_client):
    template.preheader = "Arriving {{ order.eta }}"
    template.save()
    page = admin_client.get(f"{ADMIN}/emailtemplate/{template.pk}/revisions/diff/",
                            {"a": "1", "b": "2"})
    html = page.content.decode()
    assert html.count('<table class="diff"') == 1 and "Arriving" in html
