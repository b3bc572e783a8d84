"""Models: revisions, validation on save, the log's copies, and migrations in sync."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db.models import ProtectedError

import transactional_mail
from tests.factories import make_layout, make_template
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
    assert LayoutRevision.objects.count() == 1


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
    assert not Layout.objects.exists() and not EmailTemplate.objects.exists()

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
