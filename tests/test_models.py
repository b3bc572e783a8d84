"""Models: revisions, validation on save, the log's copies, and migrations in sync."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db.models import ProtectedError

import transactional_mail
from tests.factories import PNG, make_layout, make_template
from tests.fetch_trap import FetchTrap
from transactional_mail import delivery
from transactional_mail.models import (
    Email,
    EmailTemplate,
    Layout,
    LayoutRevision,
    Suppression,
    TemplateRevision,
)
from transactional_mail.models.templates import language_fallbacks

pytestmark = pytest.mark.django_db


def test_every_change_records_an_immutable_revision():
    template = make_template()
    first = template.current_revision
    assert first.number == 1 and first.subject == template.subject
    template.subject = "New subject"
    template.save()
    assert template.current_revision.number == 2
    assert EmailTemplate.objects.get().current_revision.subject == "New subject"
    template.save()  # no change, no revision
    assert template.revisions.count() == 2
    with pytest.raises(ValueError, match="immutable"):
        first.subject = "rewritten history"
        first.save()


def test_saving_records_a_draft_that_publishing_makes_the_one_emails_use():
    template = make_template(publish=False)
    assert template.published_revision is None and template.has_unpublished_changes
    assert template.publish() is True
    assert not template.has_unpublished_changes
    assert template.publish() is False  # nothing new to publish
    first = template.current_revision
    template.subject = "Draft"
    template.save()
    assert template.has_unpublished_changes
    row = EmailTemplate.objects.get()
    assert (row.current_revision.subject, row.published_revision) == ("Draft", first)
    assert row.published_revision.is_published and not row.current_revision.is_published
    row.publish()
    assert EmailTemplate.objects.get().published_revision.subject == "Draft"


def test_a_revision_records_its_author_and_note_only_when_given(django_user_model):
    """Code paths without a user leave the author empty; the note goes with one save."""
    editor = django_user_model.objects.create(username="editor")
    template = make_template()
    assert template.current_revision.created_by is None
    template.subject, template.revision_author, template.revision_note = "B", editor, "why"
    template.save()
    assert (template.current_revision.created_by, template.current_revision.note) == (
        editor, "why")
    template.subject = "C"
    template.save()
    assert (template.current_revision.created_by, template.current_revision.note) == (None, "")
    layout = make_layout()
    layout.footer_html, layout.revision_author = "New", editor
    layout.save()
    assert layout.current_revision.created_by == editor


def test_restoring_copies_an_old_revisions_content_as_a_new_draft():
    template = make_template(subject="One", category="orders")
    first = template.current_revision
    template.subject, template.category = "Two", "other"
    template.save()
    template.restore_values(first)
    template.save()
    assert template.current_revision.number == 3
    assert (template.current_revision.subject, template.current_revision.category) == (
        "One", "orders")
    assert template.published_revision == first  # restoring does not publish


def test_layout_changes_record_layout_revisions():
    layout = make_layout()
    layout.primary_color = "#ff0000"
    layout.save()
    assert list(layout.revisions.values_list("number", "primary_color")) == [
        (2, "#ff0000"), (1, "#1a73e8")]


def test_deleting_a_template_keeps_the_revisions_logged_emails_use(mailoutbox):
    template = make_template()
    email = transactional_mail.send("order_confirmation", "a@example.com")
    delivery.deliver(email.pk)
    email.refresh_from_db()
    assert email.template_revision is not None
    template.delete()
    revision = TemplateRevision.objects.get(pk=email.template_revision_id)
    assert revision.template is None
    assert revision.key == "order_confirmation"
    assert Email.objects.get(pk=email.pk).template_revision == revision


def test_a_revision_used_by_an_email_cannot_be_deleted(mailoutbox):
    make_template()
    email = transactional_mail.send("order_confirmation", "a@example.com")
    delivery.deliver(email.pk)
    email.refresh_from_db()
    with pytest.raises(ProtectedError):
        email.template_revision.delete()


def test_a_layout_in_use_cannot_be_deleted():
    layout = make_layout()
    make_template(layout=layout)
    with pytest.raises(ProtectedError):
        layout.delete()
    assert LayoutRevision.objects.filter(layout=layout).count() == 1


@pytest.mark.parametrize(("field", "source", "line"), [
    ("html", "<p>ok</p>\n<p>{% debug %}</p>", 2),
    ("html", "<p>\n\n{% load static %}</p>", 3),
    ("html", '{% include "admin/base.html" %}', 1),
    ("subject", "Hi {{ name|safe }}", 1),
    ("text", "Line one\n{% if x %}unclosed", 2),
    ("subject", "Order {{ order.number }} confirmed {{ order.number ", 1),
    ("html", "<p>Hi</p>\n<p>{{ name </p>", 2),
    ("text", "Hi\n\n{% if x", 3),
])
def test_forbidden_or_broken_templates_are_refused_on_save_naming_the_line(field, source, line):
    template = EmailTemplate(key="bad", subject="Hi", html="<p>Hi</p>")
    setattr(template, field, source)
    with pytest.raises(ValidationError) as info:
        template.full_clean()
    assert f"Line {line}" in " ".join(info.value.message_dict[field])
    with pytest.raises(ValidationError):
        template.save()
    assert EmailTemplate.objects.count() == 0
    assert TemplateRevision.objects.count() == 0


@pytest.fixture
def trap():
    trap = FetchTrap()
    yield trap
    trap.close()


def test_stylesheets_that_would_load_a_resource_are_refused_on_save_and_never_fetched(trap):
    """@import in a layout's CSS or a template's <style> is refused, naming the line,
    without the listener or the file ever being read (full_clean used to fetch both)."""
    layout = Layout(
        name="Evil",
        html="<html><head></head><body>{{ content }}</body></html>",
        css="h1 { color: red }\n" + trap.imports(),
    )
    with pytest.raises(ValidationError) as info:
        layout.full_clean()
    [message] = info.value.message_dict["css"]
    assert message.startswith("Line 2: @import is not allowed")
    with pytest.raises(ValidationError):
        layout.save()

    template = EmailTemplate(
        key="evil", subject="Hi", html=f"<p>x</p>\n<style>\n{trap.imports()}</style>"
    )
    with pytest.raises(ValidationError) as info:
        template.full_clean()
    assert info.value.message_dict["html"][0].startswith("Line 3: @import is not allowed")
    with pytest.raises(ValidationError):
        template.save()
    template.html = '<link rel="stylesheet" href="https://fonts.example.com/x.css"><p>x</p>'
    with pytest.raises(ValidationError, match="link rel"):
        template.full_clean()
    assert not Layout.objects.exclude(name="Default").exists()  # the shipped one, only
    assert not EmailTemplate.objects.exists()

    # A layout stored before the check (or with update()) is neither fetched when a
    # template using it is validated, nor when an email is rendered.
    layout = make_layout()
    Layout.objects.filter(pk=layout.pk).update(css=trap.imports() + "p { color: red }")
    LayoutRevision.objects.filter(pk=layout.current_revision_id).update(
        css=trap.imports() + "p { color: red }"
    )
    layout.refresh_from_db()
    template = make_template(layout=layout)
    template.full_clean()
    email = transactional_mail.send("order_confirmation", "ann@example.com", {})
    delivery.deliver(email.pk)
    email.refresh_from_db()
    assert email.status == "sent"
    assert 'style="color:red"' in email.html_body
    trap.assert_untouched()


DOUBLING = "\n".join(["{% with a=a|add:a %}"] * 25) + "{{ a }}" + "{% endwith %}" * 25


def test_a_template_whose_sample_context_renders_over_budget_is_refused():
    """The sample context is rendered on save: a bomb it sets off is refused, naming the
    budget and the line; the same template with a harmless sample is accepted."""
    template = EmailTemplate(
        key="bomb", subject="Hi", html="<p>Hi</p>\n" + DOUBLING,
        sample_context={"a": "0123456789abcdef"},
    )
    with pytest.raises(ValidationError) as info:
        template.full_clean()
    [message] = info.value.message_dict["html"]
    assert message.startswith("Line 18: the render was stopped: |add makes a value longer")
    assert "RENDER_MAX_CHARS" in message
    with pytest.raises(ValidationError):
        template.save()
    assert not EmailTemplate.objects.exists()

    template.subject = "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    template.html = "<p>Hi</p>"
    template.sample_context = {"s": "x" * 1000}
    with pytest.raises(ValidationError) as info:
        template.full_clean()
    assert "RENDER_MAX_ITERATIONS" in info.value.message_dict["subject"][0]

    template.sample_context = {"s": "x" * 10}
    template.full_clean()
    template.save()


@pytest.mark.parametrize("field", ["html", "css", "footer_html"])
def test_a_layout_that_renders_over_budget_is_refused(field):
    """A layout renders with its brand values on save (its CSS in the request, too)."""
    bomb = "{% with a=brand.name %}\n" + DOUBLING + "{% endwith %}"
    values = {"html": "{{ content }}", "css": "", "footer_html": ""}
    values[field] += "\n" + bomb
    layout = Layout(name="0123456789abcdef", **values)
    with pytest.raises(ValidationError) as info:
        layout.full_clean()
    [message] = info.value.message_dict[field]
    assert message.startswith("Line 19: the render was stopped")
    assert "RENDER_MAX_CHARS" in message


def test_key_must_be_a_slug():
    with pytest.raises(ValidationError) as info:
        EmailTemplate(key="order confirmation", subject="Hi", html="<p>Hi</p>").full_clean()
    assert "key" in info.value.message_dict


def test_layout_without_content_slot_is_refused():
    with pytest.raises(ValidationError) as info:
        make_layout(html="<html><body>no slot</body></html>")
    assert "html" in info.value.message_dict


def test_language_is_normalised():
    template = make_template(language="fr_CA")
    assert template.language == "fr-ca"
    assert language_fallbacks("fr-CA") == ("fr-ca", "fr", "")
    assert language_fallbacks(None) == ("",)


def test_suppression_address_is_normalised():
    suppression = Suppression.objects.create(address="Ann <Ann@Example.COM>", reason="manual")
    assert suppression.address == "ann@example.com"


def test_migrations_match_the_models():
    """Fails when a model change has no migration."""
    out = io.StringIO()
    call_command("makemigrations", "transactional_mail", "--check", "--dry-run", stdout=out)


@pytest.mark.parametrize("value", [
    "#abc", "#ABCD", "#1a73e8", "#1a73e8cc", "rgb(26, 115, 232)", "rgba(26,115,232,0.5)",
    "rgb(10% 20% 30% / 50%)", "navy", "RebeccaPurple",
])
def test_brand_colours_accept_css_colours(value):
    Layout(name="L", html="{{ content }}", primary_color=value).full_clean()


@pytest.mark.parametrize("value", [
    "not-a-colour", " ", "#12", "#12345", "rgb(300, 0, 0)", "transparent",
    "red; background: url(https://evil.example/x)", "#fff}body{display:none",
])
def test_brand_colours_refuse_anything_else_with_a_form_error(value):
    with pytest.raises(ValidationError) as info:
        Layout(name="L", html="{{ content }}", background_color=value).full_clean()
    assert "is not a CSS colour" in " ".join(info.value.message_dict["background_color"])


@pytest.mark.parametrize(("value", "valid"), [
    ("Helvetica, Arial, sans-serif", True),
    ("'Segoe UI', \"Open Sans\", system-ui", True),
    ("Arial; color: red", False),
    ("x} body {display:none", False),
    ("Arial,,", False),
])
def test_font_stack_is_a_list_of_font_names(value, valid):
    layout = Layout(name="L", html="{{ content }}", font_family=value)
    if valid:
        layout.full_clean()
    else:
        with pytest.raises(ValidationError, match="not a font stack"):
            layout.full_clean()


@pytest.mark.django_db(transaction=True)
def test_the_migration_publishes_what_existing_sites_send_today():
    """Every template and layout that existed before drafts is published at its current
    revision, so existing sites keep sending exactly what they send today."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before = [("transactional_mail", "0003_emailevent_recipient_key")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    old_layout = old_apps.get_model("transactional_mail", "Layout")
    old_layout_revision = old_apps.get_model("transactional_mail", "LayoutRevision")
    old_template = old_apps.get_model("transactional_mail", "EmailTemplate")
    old_revision = old_apps.get_model("transactional_mail", "TemplateRevision")
    layout = old_layout.objects.create(name="Old", html="{{ content }}")
    layout_revision = old_layout_revision.objects.create(
        layout=layout, number=1, name="Old", html="{{ content }}")
    old_layout.objects.filter(pk=layout.pk).update(current_revision=layout_revision)
    template = old_template.objects.create(key="old", subject="S", html="<p>x</p>",
                                           layout=layout)
    revision = old_revision.objects.create(template=template, number=1, key="old",
                                           subject="S", html="<p>x</p>", layout=layout)
    old_template.objects.filter(pk=template.pk).update(current_revision=revision)
    old_template.objects.create(key="never-saved-through-save", subject="S", html="x")

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("transactional_mail"))

    assert EmailTemplate.objects.get(key="old").published_revision_id == revision.pk
    assert Layout.objects.get(name="Old").published_revision_id == layout_revision.pk
    assert EmailTemplate.objects.get(key="never-saved-through-save").published_revision is None
    assert EmailTemplate.objects.published_revisions("old", None) == (
        revision.pk, layout_revision.pk)


def test_a_logo_saved_from_code_needs_an_absolute_storage_url(settings, tmp_path):
    from django.core.files.base import ContentFile

    settings.MEDIA_ROOT, settings.MEDIA_URL = str(tmp_path), "/media/"
    layout = make_layout()
    layout.logo_file = ContentFile(PNG, name="logo.png")
    with pytest.raises(ValidationError, match="relative URL"):
        layout.save()
    settings.MEDIA_URL = "https://cdn.example.com/m/"
    layout.save()
    assert layout.current_revision.logo_url.startswith("https://cdn.example.com/m/transactional")


@pytest.mark.parametrize(("translations", "message"), [
    ({"fr": {"html": "<html></html>"}}, "fr: html: cannot be translated; these can: "
                                        "footer_html, footer_address, legal_text, help_url."),
    ({"FR": {"legal_text": "x"}}, "FR: not a language code"),
    ({"fr": "Mentions"}, "fr: give an object of values"),
    ({"fr": {"legal_text": 3}}, "fr: legal_text: must be text."),
    ({"fr": {"help_url": "javascript:alert(1)"}}, "fr: help_url: enter a full URL"),
    ({"fr": {"footer_html": "{% load static %}"}}, "fr: footer_html: "),
    (["fr"], "Give an object of language codes"),
])
def test_a_layout_with_a_bad_translation_is_refused_and_the_message_names_it(translations,
                                                                              message):
    layout = make_layout()
    layout.translations = translations
    with pytest.raises(ValidationError) as raised:
        layout.save()
    assert message in " ".join(raised.value.message_dict["translations"])
    assert layout.revisions.count() == 1


def test_the_preheader_is_template_content_revisions_keep_and_restore():
    template = make_template(preheader="Total {{ order.total }}")
    first = template.current_revision
    assert first.preheader == "Total {{ order.total }}"
    template.preheader = "Shipped today"
    template.save()
    assert template.current_revision.number == 2
    template.restore_values(first)
    template.save()
    assert template.current_revision.preheader == "Total {{ order.total }}"


def test_a_broken_preheader_is_refused_on_save_naming_its_field():
    with pytest.raises(ValidationError) as caught:
        make_template(preheader="Hi {% load static %}")
    assert set(caught.value.message_dict) == {"preheader"}
