"""The layout the app ships, created by ``migrate`` when a site has none, and kept current.

Small and plain on purpose: a table-based shell (Outlook lays out tables, not ``div``
widths), 600 pixels wide and fluid below that, with ``lang`` and ``dir`` from each email's
language, presentation roles on the layout tables, a hidden preheader (the template's, or
the context's ``preheader``), text colours with at least 4.5:1 contrast on their
backgrounds, dark-mode rules for the clients that honour ``prefers-color-scheme``, and
the HTML vocabulary the starter templates use (docs/starter-templates.md). Its CSS sets
no physical text alignment: premailer inlines ``text-align: left`` as a style *and* an
``align="left"`` attribute, which would pin Arabic text to the wrong side; ``start`` and
``end`` follow each email's ``dir``.

Staff restyle it in the admin. :func:`install_default_layout` creates it on a site with no
layout, and upgrades the layout named ``Default`` to the shipped version only while its
HTML, CSS and footer still equal an earlier shipped version (``layouts/history.json``
holds their fingerprints) and it has no unpublished draft: a layout staff edited is
never touched.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from django.apps import apps
from django.db import DatabaseError, router, transaction

from .starters import fingerprint

logger = logging.getLogger(__name__)

NAME = "Default"

#: The shipped layout's HTML and CSS, kept as files beside the package.
FILES = Path(__file__).resolve().parent / "layouts"

#: The footer: the brand's name and, in non-essential mail only, the email's own
#: unsubscribe and preferences links (empty in essential mail, so the line is left out).
FOOTER = (
    "<p>{{ brand.name }}</p>\n"
    '{% if unsubscribe_url %}<p class="unsubscribe"><a href="{{ unsubscribe_url }}">'
    'Unsubscribe</a> · <a href="{{ preferences_url }}">Email preferences</a></p>'
    "{% endif %}"
)


def default_layout_values() -> dict[str, str]:
    """The fields of the shipped layout (its colours are the model's defaults)."""
    return {
        "name": NAME,
        "html": (FILES / "default.html").read_text(encoding="utf-8"),
        "css": (FILES / "default.css").read_text(encoding="utf-8"),
        "footer_html": FOOTER,
    }


#: ``{"versions": {"<n>": fingerprint}}`` of every version shipped, the current one last.
HISTORY = FILES / "history.json"
#: What the fingerprint covers: staff's brand values (logo, colours...) are theirs to keep.
FINGERPRINTED_FIELDS = ("html", "css", "footer_html")


def layout_fingerprint(values) -> str:
    """The fingerprint of a layout's (or its revision's, or a dict's) shipped fields."""
    get = values.get if isinstance(values, dict) else lambda name: getattr(values, name)
    return fingerprint(*(get(name) for name in FINGERPRINTED_FIELDS))


def shipped_versions() -> dict[int, str]:
    """``{version: fingerprint}`` of every default layout shipped so far."""
    data = json.loads(HISTORY.read_text(encoding="utf-8"))
    return {int(number): value for number, value in data["versions"].items()}


def record_layout_version() -> int | None:
    """Record the shipped files as a new version in ``layouts/history.json`` if they
    changed; return its number (None when they are already recorded)."""
    versions = shipped_versions()
    current = layout_fingerprint(default_layout_values())
    if current in versions.values():
        return None
    versions[max(versions) + 1] = current
    HISTORY.write_text(json.dumps({"versions": {str(number): value for number, value
                                                in sorted(versions.items())}}, indent=2)
                       + "\n", encoding="utf-8")
    return max(versions)


def install_default_layout(using: str = "default", **kwargs) -> None:
    """Create the default layout on a site without one, or upgrade an unedited one.

    Runs on ``post_migrate``; idempotent (see :func:`update_default_layout`).
    """
    layout_model = apps.get_model("transactional_mail", "Layout")
    if not router.allow_migrate_model(using, layout_model):
        return
    try:
        with transaction.atomic(using=using):
            if not layout_model.objects.using(using).exists():
                create_default_layout(layout_model, using, note="Installed by migrate.")
            else:
                update_default_layout(layout_model, using)
    except DatabaseError:
        # The app's tables are not migrated on this database (a router keeps them away).
        logger.warning("Could not install the default transactional_mail layout on %r.",
                       using, exc_info=True)


def create_default_layout(layout_model, using: str, *, note: str):
    """Create and publish the default layout; return it."""
    layout = layout_model(**default_layout_values())
    layout.revision_note = note
    layout.save(using=using)
    layout.publish(using=using)
    return layout


def update_default_layout(layout_model, using: str = "default") -> tuple[str, str]:
    """Bring the layout named ``Default`` to the shipped version if nobody edited it.

    Return ``(outcome, reason)``: ``("updated", "from version 2 to 3")``, ``("unchanged",
    "")``, or ``("skipped", why)`` when there is no such layout, it has an unpublished
    draft, or its published HTML, CSS or footer is no shipped version (staff edited it).
    Only those three fields change; the layout's brand values (logo, colours, footer
    texts) are kept, and the new version is published.
    """
    layout = (layout_model.objects.using(using).select_related("published_revision")
              .filter(name=NAME).first())
    if layout is None:
        return "skipped", f"no layout is named {NAME!r} (renamed or deleted by staff)"
    if layout.has_unpublished_changes:
        return "skipped", ("it has an unpublished draft: publish it or restore the "
                           "published revision, then run again")
    versions = shipped_versions()
    latest = max(versions)
    found = layout_fingerprint(layout.published_revision)
    if found == versions[latest]:
        return "unchanged", ""
    earlier = next((number for number, value in versions.items() if value == found), None)
    if earlier is None:
        return "skipped", "edited by staff (its HTML, CSS or footer is no shipped version)"
    values = default_layout_values()
    for name in FINGERPRINTED_FIELDS:
        setattr(layout, name, values[name])
    layout.revision_note = f"Default layout version {latest} (was version {earlier})."
    layout.save(using=using)
    layout.publish(using=using)
    logger.info("Upgraded the default transactional_mail layout from version %s to %s.",
                earlier, latest)
    return "updated", f"from version {earlier} to {latest}"
