"""Installing the starter templates: create what is missing, upgrade what nobody edited.

:func:`install_starters` is what ``manage.py install_starter_templates`` runs. For each
starter and language it creates the ``EmailTemplate`` when the site has none (in the
default layout, with the starter's category and sample context, published), and updates
one only while its published content still has the fingerprint of an earlier version of
that starter and it has no unpublished draft. Anything else is staff's and is skipped,
with the reason. The default layout follows the same rule
(:func:`~transactional_mail.default_layout.update_default_layout`). Running it twice
changes nothing the second time.

The site's default language (``LANGUAGE_CODE``, or English when no starter is written in
it) is installed as the default template (language ``""``), the one every language
without a template of its own falls back to; the others under their language code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from ..default_layout import NAME, create_default_layout, update_default_layout
from ..models import EmailTemplate, Layout
from ..models.templates import normalize_language
from . import LANGUAGES, Starter, StarterContent, fingerprint

__all__ = ["Outcome", "default_language", "install_starters"]

CREATED, UPDATED, UNCHANGED, SKIPPED = "created", "updated", "unchanged", "skipped"


@dataclass(frozen=True)
class Outcome:
    """What happened to one template (or to the default layout), and why."""

    name: str
    action: str
    detail: str = ""

    def line(self, dry_run: bool = False) -> str:
        """One line of the command's report, e.g. ``password_reset [fr]: created``."""
        writes = dry_run and self.action in (CREATED, UPDATED)
        action = f"would be {self.action}" if writes else self.action
        return f"{self.name}: {action}" + (f" ({self.detail})" if self.detail else "")


def default_language() -> str:
    """The starter language installed as the default template: the site's, or English."""
    language = normalize_language(settings.LANGUAGE_CODE).partition("-")[0]
    return language if language in LANGUAGES else "en"


def install_starters(
    starters: Iterable[Starter],
    languages: Iterable[str] = LANGUAGES,
    *,
    dry_run: bool = False,
    restore_missing: bool = False,
    using: str = "default",
) -> list[Outcome]:
    """Install ``starters`` in ``languages``; return one :class:`Outcome` per template,
    the default layout's first. With ``dry_run``, everything runs (validation included)
    in a transaction that is rolled back: the outcomes say what would happen.

    A language variant missing while the key has other variants was deleted by staff (the
    first install creates them all): it is created again only with ``restore_missing``
    (the command's ``--language``, which names it)."""
    with transaction.atomic(using=using):
        outcomes = [_default_layout(using)]
        layout = Layout.objects.using(using).filter(name=NAME).first()
        for starter in starters:
            # A starter the site never had is installed in every language.
            first_install = not EmailTemplate.objects.using(using).filter(
                key=starter.key).exists()
            for language in languages:
                outcomes.append(_install(starter, language, layout, using,
                                         restore_missing=restore_missing or first_install))
        if dry_run:
            transaction.set_rollback(True, using=using)
    return outcomes


def _default_layout(using: str) -> Outcome:
    name = f"layout {NAME!r}"
    if not Layout.objects.using(using).filter(name=NAME).exists():
        create_default_layout(Layout, using, note="Installed by install_starter_templates.")
        return Outcome(name, CREATED)
    action, detail = update_default_layout(Layout, using)
    return Outcome(name, action, detail)


def _install(starter: Starter, language: str, layout: Layout | None, using: str, *,
             restore_missing: bool) -> Outcome:
    row_language = "" if language == default_language() else language
    name = f"{starter.key} [{row_language or f'default, {language}'}]"
    content = starter.languages[language]
    template = (EmailTemplate.objects.using(using).select_related("published_revision")
                .filter(key=starter.key, language=row_language).first())
    if template is None and not restore_missing:
        return Outcome(name, SKIPPED, "missing while other languages of it exist: staff "
                       "deleted it, so the other variants serve this language; to install "
                       f"it again, run with --only {starter.key} --language {language}")
    if template is None:
        template = EmailTemplate(
            key=starter.key, language=row_language, layout=layout,
            category=starter.category, sample_context=dict(starter.sample_context),
        )
        note = f"Starter template {starter.key} v{starter.version}"
        return _save(template, content, note, Outcome(name, CREATED), using)
    if template.has_unpublished_changes:
        return Outcome(name, SKIPPED, "it has an unpublished draft: publish it or restore "
                       "the published revision, then run again")
    published = template.published_revision
    if published is None:  # its revisions were deleted: nothing tells whose it is
        return Outcome(name, SKIPPED, "it has no published revision")
    found = fingerprint(published.subject, published.preheader, published.html,
                        published.text)
    if found == content.fingerprint:
        return Outcome(name, UNCHANGED)
    earlier = starter.earlier_version(language, found)
    if earlier is not None and not _installed(published):
        return Outcome(name, SKIPPED, f"staff published v{earlier} of the starter "
                       "themselves (a deliberate choice): it is kept")
    if earlier is None:
        return Outcome(name, SKIPPED, "edited by staff: its published content is no "
                       f"version of the {starter.key} starter")
    # Staff's sample values stay; the keys a new version needs are added.
    template.sample_context = {**starter.sample_context, **(template.sample_context or {})}
    note = f"Starter template {starter.key} v{starter.version} (was v{earlier})"
    return _save(template, content, note,
                 Outcome(name, UPDATED, f"from v{earlier} to v{starter.version}"), using)


def _installed(revision) -> bool:
    """Whether the installer wrote ``revision`` (its note, and no author), so that an
    earlier version staff restored and published on purpose is not upgraded over."""
    return revision.created_by_id is None and (revision.note or "").startswith(
        "Starter template ")


def _save(template: EmailTemplate, content: StarterContent, note: str, outcome: Outcome,
          using: str) -> Outcome:
    """Save ``content`` as the template's new revision and publish it."""
    template.subject, template.preheader = content.subject, content.preheader
    template.html, template.text = content.html, content.text
    template.revision_note = note
    try:
        with transaction.atomic(using=using):
            template.save(using=using)
            template.publish(using=using)
    except ValidationError as err:
        # The site's own layout can make a starter too big or break it: say so, go on.
        return Outcome(outcome.name, SKIPPED, "refused: " + "; ".join(err.messages))
    return outcome
