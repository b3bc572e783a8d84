"""Attacks on the starter templates and ``install_starter_templates``: does the installer
ever overwrite staff's work; does a starter rendered with a hostile context escape it."""

from __future__ import annotations

import dataclasses
import re
from io import StringIO
from types import MappingProxyType
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError

from transactional_mail.default_layout import default_layout_values
from transactional_mail.exceptions import RenderError
from transactional_mail.models import EmailTemplate, Layout
from transactional_mail.rendering import render_email
from transactional_mail.starters import LANGUAGES, StarterContent, load_starters
from transactional_mail.starters.installer import install_starters

STARTERS = load_starters()
KEYS = sorted(STARTERS)


def install(*args: str) -> list[str]:
    out = StringIO()
    call_command("install_starter_templates", *args, stdout=out)
    return out.getvalue().splitlines()


def next_version(starter, language: str, html: str):
    """``starter`` as its next version, whose ``language`` HTML is ``html``."""
    content = dataclasses.replace(starter.languages[language], html=html)
    languages = MappingProxyType({**starter.languages, language: content})
    new = dataclasses.replace(starter, version=starter.version + 1, languages=languages)
    return dataclasses.replace(new, history=MappingProxyType(
        {**starter.history, new.version: new.current_fingerprints()}))


# --- the installer never overwrites staff's work ------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("edit", [
    lambda html: html.replace("<p>", "<p> ", 1),            # one inner space
    lambda html: html.replace("\n", "\n\n", 1),             # one blank line
    lambda html: html + "<!-- staff -->",                   # a comment
    lambda html: html.replace("<h1>", "<h1 >", 1),          # markup-equivalent
])
def test_a_whitespace_or_invisible_edit_is_kept_on_upgrade(edit):
    starter = STARTERS["password_reset"]
    install_starters([starter], ["fr"])
    row = EmailTemplate.objects.get(key="password_reset", language="fr")
    edited = edit(row.html)
    assert edited != row.html
    row.html = edited
    row.save()
    row.publish()
    newer = next_version(starter, "fr", starter.languages["fr"].html.replace("Bonjour",
                                                                             "Bonsoir"))
    [outcome] = install_starters([newer], ["fr"])[1:]
    assert outcome.action == "skipped"
    row.refresh_from_db()
    assert row.html == edited


@pytest.mark.django_db
def test_a_sample_context_edit_is_kept_on_upgrade():
    starter = STARTERS["password_reset"]
    install_starters([starter], ["de"])
    row = EmailTemplate.objects.get(key="password_reset", language="de")
    row.sample_context = {"user": {"name": "<b>Jörg</b>"}, "reset_url": "https://x.example/"}
    row.save()
    newer = next_version(starter, "de", starter.languages["de"].html + "<p>v2</p>")
    install_starters([newer], ["de"])
    row.refresh_from_db()
    assert row.sample_context["user"] == {"name": "<b>Jörg</b>"}
    assert row.sample_context["reset_url"] == "https://x.example/"


@pytest.mark.django_db
def test_an_edit_in_the_subject_preheader_or_text_only_is_kept():
    starter = STARTERS["sign_in_code"]
    install_starters([starter], ["it", "de", "ar"])
    for language, field in (("it", "subject"), ("de", "preheader"), ("ar", "text")):
        row = EmailTemplate.objects.get(key="sign_in_code", language=language)
        setattr(row, field, getattr(row, field) + " (staff)")
        row.save()
        row.publish()
    assert {line.split(": ")[1].split(" ")[0] for line in install("--only", "sign_in_code")
            if "[it]" in line or "[de]" in line or "[ar]" in line} == {"skipped"}


@pytest.mark.django_db
def test_an_edit_then_revert_to_the_current_starter_is_unchanged_not_a_new_revision():
    starter = STARTERS["welcome"]
    install_starters([starter], ["fr"])
    row = EmailTemplate.objects.get(key="welcome", language="fr")
    original = row.html
    row.html = original + "<p>x</p>"
    row.save()
    row.publish()
    row.html = original
    row.save()
    row.publish()
    revisions = row.revisions.count()
    [outcome] = install_starters([starter], ["fr"])[1:]
    assert outcome.action == "unchanged"
    assert row.revisions.count() == revisions


@pytest.mark.django_db
def test_a_deliberate_rollback_to_an_earlier_starter_version_is_kept():
    starter = STARTERS["password_reset"]
    install_starters([starter], ["fr"])  # v1
    v1_html = starter.languages["fr"].html
    newer = next_version(starter, "fr", v1_html.replace("Bonjour", "Bonsoir"))
    install_starters([newer], ["fr"])  # upgraded to v2 (nobody had edited v1)
    row = EmailTemplate.objects.get(key="password_reset", language="fr")
    assert "Bonsoir" in row.html
    # Staff prefer v1's greeting, and publish it back on purpose.
    row.html = v1_html
    row.revision_note = "Back to Bonjour: our customers prefer it"
    row.save()
    row.publish()
    install_starters([newer], ["fr"])  # e.g. a deploy runs the command again
    row.refresh_from_db()
    assert row.html == v1_html


@pytest.mark.django_db
def test_a_concurrent_run_never_overwrites_the_row_the_other_created(monkeypatch):
    """Run B creates the template between run A's lookup and its save: A must not write
    over B's row (A may fail; nothing of B's is lost)."""
    starter = STARTERS["refund"]
    original_save = EmailTemplate.save
    state = {"raced": False}

    def racing_save(self, *args, **kwargs):
        if self.pk is None and not state["raced"]:
            state["raced"] = True
            EmailTemplate.objects.bulk_create([EmailTemplate(
                key=self.key, language=self.language, subject="Staff's own",
                html="<p>staff</p>", category="orders")])
        return original_save(self, *args, **kwargs)

    monkeypatch.setattr(EmailTemplate, "save", racing_save)
    # A cannot update B's row: its INSERT hits the (key, language) constraint, and the
    # whole run is rolled back (run it again). In this one-connection simulation B's row
    # goes with it; with two connections B's committed row stays as B wrote it.
    with pytest.raises(IntegrityError):
        install_starters([starter], ["fr"])
    assert state["raced"]


# --- a starter rendered with a hostile context -----------------------------------------

HTML_ATTACK = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&'
URL_ATTACK = "javascript:alert(document.cookie)"


def hostile(value: Any, path: str = "") -> Any:
    """The sample context with every string an attack: URLs become ``javascript:``."""
    if isinstance(value, dict):
        return {key: hostile(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [hostile(item, path) for item in value]
    if isinstance(value, str):
        if "url" in path.rsplit(".", 1)[-1] or value.startswith("http"):
            return URL_ATTACK
        return HTML_ATTACK
    return value


def render(key: str, language: str, context) -> Any:
    starter = STARTERS[key]
    content: StarterContent = starter.languages[language]
    template = dataclasses.make_dataclass("T", ["pk", "subject", "preheader", "html",
                                                "text"])(None, content.subject,
                                                         content.preheader, content.html,
                                                         content.text)
    return render_email(template, Layout(**default_layout_values()), context,
                        language=language)


@pytest.mark.parametrize("key", KEYS)
def test_html_in_every_context_value_is_escaped(key):
    context = hostile(dict(STARTERS[key].sample_context))
    # names only, no URL attack here
    context = _replace_urls(context, "https://shop.example.com/x")
    for language in LANGUAGES:
        rendered = render(key, language, context)
        assert "<script>" not in rendered.html
        assert "<img src=x" not in rendered.html
        assert "\n" not in rendered.subject


def _replace_urls(value, url):
    if isinstance(value, dict):
        return {k: _replace_urls(v, url) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_urls(v, url) for v in value]
    return url if value == URL_ATTACK else value


def _url_keys(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _url_keys(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for item in value:
            yield from _url_keys(item, path)
    elif value == URL_ATTACK:
        yield path


HREF = re.compile(r"""\b(?:href|src)\s*=\s*["']?\s*javascript:""", re.IGNORECASE)


@pytest.mark.parametrize("key", KEYS)
def test_a_javascript_url_in_a_context_value_never_becomes_a_link(key):
    context = hostile(dict(STARTERS[key].sample_context))
    if not list(_url_keys(context)):
        pytest.skip("no URL in this starter's context")
    rendered = render(key, "en", context)
    assert not HREF.search(rendered.html), HREF.search(rendered.html)


@pytest.mark.parametrize("key", KEYS)
def test_a_javascript_url_never_reaches_the_text_part_as_a_link(key):
    """The HTML-to-text converter leaves javascript: links out (rendering/text.py); a
    starter's own text part shows the URL as text, which no client runs."""
    context = hostile(dict(STARTERS[key].sample_context))
    rendered = render(key, "en", context)
    assert "](javascript:" not in rendered.text


@pytest.mark.parametrize("key", ["password_reset", "order_confirmation", "invitation"])
def test_a_very_long_value_fails_the_render_budget_cleanly(key, settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "RENDER_MAX_CHARS": 200_000}
    context = dict(STARTERS[key].sample_context)
    context["site_name"] = "N" * 300_000
    with pytest.raises(RenderError):
        render(key, "en", context)


@pytest.mark.parametrize("key", KEYS)
def test_a_long_unbroken_value_still_renders(key):
    context = _replace_strings(dict(STARTERS[key].sample_context), "W" * 2_000)
    rendered = render(key, "de", context)
    assert "W" * 2_000 in rendered.html


def _replace_strings(value, text):
    if isinstance(value, dict):
        return {k: _replace_strings(v, text) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_strings(v, text) for v in value]
    if isinstance(value, str) and not value.startswith("http"):
        return text
    return value


@pytest.mark.django_db
def test_a_variant_staff_deleted_is_not_recreated_over_their_default():
    install("--only", "password_reset")
    default = EmailTemplate.objects.get(key="password_reset", language="")
    default.subject = "Our own wording, for every language"
    default.save()
    default.publish()
    EmailTemplate.objects.filter(key="password_reset", language="fr").delete()
    assert EmailTemplate.objects.published_revisions("password_reset", "fr") is not None
    install("--only", "password_reset")  # the next deploy
    assert not EmailTemplate.objects.filter(key="password_reset", language="fr").exists()
