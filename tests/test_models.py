"""Models: revisions, validation on save, the log's copies, and migrations in sync."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db.models import ProtectedError

import transactional_mail
from tests.factories import make_layout, make_template
from transactional_mail import delivery
from transactional_mail.models import (
    Email,
    EmailTemplate,
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
