"""``manage.py install_starter_templates`` (transactional_mail.starters.installer), and the
default layout's upgrade rule it shares with ``migrate``."""

from __future__ import annotations

import dataclasses
import json
from io import StringIO
from pathlib import Path
from types import MappingProxyType

import pytest
from django.core.management import CommandError, call_command

from transactional_mail import default_layout
from transactional_mail.default_layout import (
    NAME,
    default_layout_values,
    install_default_layout,
    layout_fingerprint,
)
from transactional_mail.models import EmailTemplate, Layout, LayoutRevision, TemplateRevision
from transactional_mail.starters import LANGUAGES, StarterContent, fingerprint, load_starters
from transactional_mail.starters.installer import install_starters

pytestmark = pytest.mark.django_db

STARTERS = load_starters()
HISTORY = Path(__file__).resolve().parent / "default_layout_history"


def install(*args: str) -> list[str]:
    out = StringIO()
    call_command("install_starter_templates", *args, stdout=out)
    return out.getvalue().splitlines()


def counts() -> tuple[int, int, int]:
    return (EmailTemplate.objects.count(), TemplateRevision.objects.count(),
            LayoutRevision.objects.count())


def test_it_creates_every_starter_in_every_language_published_in_the_default_layout():
    lines = install()
    layout = Layout.objects.get(name=NAME)
    rows = EmailTemplate.objects.filter(key="password_reset")
    # English is the site's language (LANGUAGE_CODE): the default template, "".
    assert sorted(rows.values_list("language", flat=True)) == ["", "ar", "de", "fr", "it"]
    starter = STARTERS["password_reset"]
    for row in rows:
        content = starter.languages[row.language or "en"]
        assert row.published_revision_id == row.current_revision_id is not None
        assert (row.subject, row.preheader, row.html, row.text) == (
            content.subject, content.preheader, content.html, content.text)
        assert (row.layout, row.category) == (layout, "account")
        assert row.sample_context == dict(starter.sample_context)
        assert row.published_revision.note == "Starter template password_reset v1"
        assert row.published_revision.preheader == content.preheader
    assert EmailTemplate.objects.count() == len(STARTERS) * len(LANGUAGES)
    assert "password_reset [default, en]: created" in lines
    assert "order_confirmation [ar]: created" in lines
    assert lines[0] == f"layout {NAME!r}: unchanged"
    assert lines[-1] == (f"{len(STARTERS) * len(LANGUAGES)} created, 0 updated, 1 unchanged, "
                         "0 skipped.")


def test_the_sites_language_is_the_default_template(settings):
    settings.LANGUAGE_CODE = "fr-ca"
    install("--only", "password_reset")
    assert EmailTemplate.objects.get(key="password_reset", language="").subject == (
        STARTERS["password_reset"].languages["fr"].subject)
    assert EmailTemplate.objects.filter(key="password_reset", language="en").exists()
    assert not EmailTemplate.objects.filter(key="password_reset", language="fr").exists()


def test_a_second_run_changes_nothing():
    install()
    before = counts()
    lines = install()
    assert counts() == before
    total = len(STARTERS) * len(LANGUAGES) + 1
    assert lines[-1] == f"0 created, 0 updated, {total} unchanged, 0 skipped."


def test_a_template_staff_edited_is_kept_and_reported():
    install("--only", "password_reset")
    row = EmailTemplate.objects.get(key="password_reset", language="fr")
    row.subject = "Votre nouveau mot de passe {{ site_name }}"
    row.save()
    row.publish()
    before = counts()
    lines = install("--only", "password_reset")
    assert counts() == before
    row.refresh_from_db()
    assert row.subject == "Votre nouveau mot de passe {{ site_name }}"
    assert ("password_reset [fr]: skipped (edited by staff: its published content is no "
            "version of the password_reset starter)") in lines
    assert lines[-1] == "0 created, 0 updated, 5 unchanged, 1 skipped."


def test_saving_a_template_unchanged_through_a_form_is_no_edit():
    """Admin textareas post CRLF: line endings alone do not make a template staff's."""
    install("--only", "password_reset", "--language", "de")
    row = EmailTemplate.objects.get(key="password_reset", language="de")
    row.html = row.html.replace("\n", "\r\n").strip()
    row.save()
    row.publish()
    assert "password_reset [de]: unchanged" in install("--only", "password_reset",
                                                       "--language", "de")


def test_a_template_with_an_unpublished_draft_is_kept():
    install("--only", "order_confirmation", "--language", "it")
    row = EmailTemplate.objects.get(key="order_confirmation", language="it")
    row.html += "<p>Una bozza.</p>"
    row.save()  # a draft: not published
    lines = install("--only", "order_confirmation", "--language", "it")
    row.refresh_from_db()
    assert row.html.endswith("<p>Una bozza.</p>") and row.has_unpublished_changes
    assert ("order_confirmation [it]: skipped (it has an unpublished draft: publish it or "
            "restore the published revision, then run again)") in lines


def test_only_and_language_choose_what_is_installed():
    lines = install("--only", "order_confirmation", "--language", "ar,de")
    assert sorted(EmailTemplate.objects.values_list("key", "language")) == [
        ("order_confirmation", "ar"), ("order_confirmation", "de")]
    assert lines[-1] == "2 created, 0 updated, 1 unchanged, 0 skipped."


@pytest.mark.parametrize(("args", "message"), [
    (["--only", "password_reset,pasword_reset"],
     "Unknown starter key: pasword_reset. Valid starter keys: "),
    (["--language", "en,es"], "Unknown language: es. Valid languages: en, fr, de, it, ar."),
    (["--language", ","], "Unknown language: ','. Valid languages: en, fr, de, it, ar."),
])
def test_an_unknown_key_or_language_names_the_valid_ones(args, message):
    with pytest.raises(CommandError) as caught:
        install(*args)
    assert str(caught.value).startswith(message)
    if "starter key" in message:
        assert ", ".join(sorted(STARTERS)) in str(caught.value)
    assert not EmailTemplate.objects.exists()


def test_a_dry_run_writes_nothing_and_says_what_would_happen():
    before = counts()
    lines = install("--dry-run", "--only", "password_reset", "--language", "en,fr")
    assert counts() == before
    assert lines == [
        f"layout {NAME!r}: unchanged",
        "password_reset [default, en]: would be created",
        "password_reset [fr]: would be created",
        "Dry run, nothing written: 2 created, 0 updated, 1 unchanged, 0 skipped.",
    ]


def _next_version(starter, language: str, html: str):
    """``starter`` as its version 2: new HTML in ``language``, version 1 in its history."""
    old = starter.languages[language]
    languages = dict(starter.languages)
    languages[language] = dataclasses.replace(old, html=html)
    new = dataclasses.replace(starter, languages=MappingProxyType(languages))
    return dataclasses.replace(
        new, version=2, history=MappingProxyType({1: starter.current_fingerprints(),
                                                  2: new.current_fingerprints()}))


def test_a_template_holding_an_earlier_version_is_updated():
    starter = STARTERS["password_reset"]
    install_starters([starter], ["fr", "de"])
    row = EmailTemplate.objects.get(key="password_reset", language="fr")
    row.sample_context = {"user": {"name": "Chloé", "email": "chloe@example.com"}}
    row.save()  # the sample context is not content: no revision, not an edit
    html = starter.languages["fr"].html.replace("Bonjour", "Bonsoir")
    newer = _next_version(starter, "fr", html)
    outcomes = install_starters([newer], ["fr", "de"])
    assert [outcome.line() for outcome in outcomes[1:]] == [
        "password_reset [fr]: updated (from v1 to v2)", "password_reset [de]: unchanged"]
    row.refresh_from_db()
    assert row.html == html and row.published_revision_id == row.current_revision_id
    assert row.published_revision.note == "Starter template password_reset v2 (was v1)"
    # Staff's sample values are kept; the keys the new version may need are added.
    assert row.sample_context["user"]["name"] == "Chloé"
    assert row.sample_context["reset_url"] == starter.sample_context["reset_url"]
    before = counts()
    assert {outcome.action for outcome in install_starters([newer], ["fr", "de"])} == {
        "unchanged"}
    assert counts() == before


def test_a_starter_the_sites_render_budget_refuses_is_skipped_with_the_reason(settings):
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_CHARS": 3000}
    outcomes = install_starters([STARTERS["order_confirmation"]], ["en"])
    assert outcomes[1].action == "skipped"
    assert outcomes[1].detail.startswith("refused: ")
    assert not EmailTemplate.objects.exists()


def test_fingerprints_are_of_the_content_fields():
    content = STARTERS["password_reset"].languages["en"]
    assert content.fingerprint == fingerprint(content.subject, content.preheader,
                                              content.html, content.text)
    assert isinstance(content, StarterContent)


# --- The default layout: upgraded while unedited ---------------------------------------


@pytest.fixture
def old_default():
    """The site's default layout as version 2 shipped it (without the RTL-safe CSS and
    the starters' vocabulary), published, with staff's brand colour."""
    layout = Layout.objects.get(name=NAME)
    layout.html = (HISTORY / "v2.html").read_text(encoding="utf-8")
    layout.css = (HISTORY / "v2.css").read_text(encoding="utf-8")
    layout.footer_html = "<p>{{ brand.name }}</p>"  # every version's footer before 5
    layout.primary_color = "#7c3aed"
    layout.save()
    layout.publish()
    assert default_layout.shipped_versions()[2] == layout_fingerprint(layout)
    return layout


def test_the_installer_upgrades_an_unedited_earlier_default_layout(old_default):
    lines = install("--only", "password_reset", "--language", "en")
    latest = max(default_layout.shipped_versions())
    assert lines[0] == f"layout {NAME!r}: updated (from version 2 to {latest})"
    old_default.refresh_from_db()
    assert old_default.css == default_layout_values()["css"]
    assert old_default.published_revision_id == old_default.current_revision_id
    assert old_default.primary_color == "#7c3aed"  # staff's brand values are kept
    assert old_default.current_revision.note == f"Default layout version {latest} (was version 2)."


def test_migrate_upgrades_it_too_and_then_leaves_it(old_default):
    install_default_layout()
    old_default.refresh_from_db()
    assert old_default.html == default_layout_values()["html"]
    before = LayoutRevision.objects.count()
    install_default_layout()
    assert LayoutRevision.objects.count() == before


def test_the_first_shipped_default_layout_is_upgraded(old_default):
    """Version 1 lacked the button's white label (its label showed in the link colour)."""
    old_default.css = old_default.css.replace(".content a.button { color: #ffffff; }\n", "")
    old_default.save()
    old_default.publish()
    install_default_layout()
    old_default.refresh_from_db()
    assert old_default.css == default_layout_values()["css"]
    assert "(was version 1)" in old_default.current_revision.note


def test_a_default_layout_staff_edited_or_drafted_is_never_upgraded(old_default):
    old_default.css += "\n.content h1 { color: #7c3aed; }"
    old_default.save()  # a draft
    install_default_layout()
    lines = install("--only", "password_reset", "--language", "en")
    assert lines[0].startswith(f"layout {NAME!r}: skipped (it has an unpublished draft")
    old_default.publish()
    lines = install("--only", "password_reset", "--language", "en")
    assert lines[0] == (f"layout {NAME!r}: skipped (edited by staff (its HTML, CSS or footer "
                        "is no shipped version))")
    old_default.refresh_from_db()
    assert old_default.css.endswith(".content h1 { color: #7c3aed; }")


def test_without_a_default_layout_the_installer_creates_one():
    Layout.objects.get(name=NAME).delete()
    lines = install("--only", "password_reset", "--language", "en")
    assert lines[0] == f"layout {NAME!r}: created"
    layout = Layout.objects.get(name=NAME)
    assert layout.published_revision_id is not None
    assert EmailTemplate.objects.get().layout == layout


def test_the_history_file_is_well_formed():
    data = json.loads(default_layout.HISTORY.read_text(encoding="utf-8"))
    assert sorted(map(int, data["versions"])) == list(range(1, len(data["versions"]) + 1))


def test_a_template_without_a_published_revision_is_skipped():
    install("--only", "password_reset", "--language", "it")
    row = EmailTemplate.objects.get(key="password_reset", language="it")
    TemplateRevision.objects.filter(template=row).delete()
    lines = install("--only", "password_reset", "--language", "it")
    assert "password_reset [it]: skipped (it has no published revision)" in lines


def test_a_deleted_variant_is_reported_and_comes_back_only_when_named():
    install("--only", "password_reset")
    EmailTemplate.objects.filter(key="password_reset", language="fr").delete()
    lines = install("--only", "password_reset")
    assert ("password_reset [fr]: skipped (missing while other languages of it exist: staff "
            "deleted it, so the other variants serve this language; to install it again, "
            "run with --only password_reset --language fr)") in lines
    assert not EmailTemplate.objects.filter(key="password_reset", language="fr").exists()
    assert "password_reset [fr]: created" in install("--only", "password_reset",
                                                     "--language", "fr")


def test_an_earlier_version_staff_published_themselves_is_kept(django_user_model):
    starter = STARTERS["password_reset"]
    install_starters([starter], ["fr"])
    v1 = starter.languages["fr"]
    newer = _next_version(starter, "fr", v1.html.replace("Bonjour", "Bonsoir"))
    install_starters([newer], ["fr"])
    row = EmailTemplate.objects.get(key="password_reset", language="fr")
    row.html = v1.html
    row.revision_author = django_user_model.objects.create_user("mia")
    row.save()
    row.publish()
    [outcome] = install_starters([newer], ["fr"])[1:]
    assert (outcome.action, outcome.detail) == (
        "skipped", "staff published v1 of the starter themselves (a deliberate choice): it "
        "is kept")
