"""The layout the app ships, created by ``migrate`` when a site has none.

Small and plain on purpose: a table-based shell (Outlook lays out tables, not ``div``
widths), 600 pixels wide and fluid below that, with ``lang`` and ``dir`` from each email's
language, presentation roles on the layout tables, a hidden preheader (the context's
``preheader``), text colours with at least 4.5:1 contrast on their backgrounds, and
dark-mode rules for the clients that honour ``prefers-color-scheme``. Staff restyle it
in the admin; :func:`install_default_layout` never touches a layout once one exists.
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.apps import apps
from django.db import DatabaseError, router, transaction

logger = logging.getLogger(__name__)

NAME = "Default"

#: The shipped layout's HTML and CSS, kept as files beside the package.
FILES = Path(__file__).resolve().parent / "layouts"

FOOTER = "<p>{{ brand.name }}</p>"


def default_layout_values() -> dict[str, str]:
    """The fields of the shipped layout (its colours are the model's defaults)."""
    return {
        "name": NAME,
        "html": (FILES / "default.html").read_text(encoding="utf-8"),
        "css": (FILES / "default.css").read_text(encoding="utf-8"),
        "footer_html": FOOTER,
    }


def install_default_layout(using: str = "default", **kwargs) -> None:
    """Create and publish the default layout if the site has no layout at all.

    Runs on ``post_migrate``; idempotent, and it never changes or recreates a layout staff
    kept: once any layout exists, it does nothing.
    """
    layout_model = apps.get_model("transactional_mail", "Layout")
    if not router.allow_migrate_model(using, layout_model):
        return
    try:
        with transaction.atomic(using=using):
            if layout_model.objects.using(using).exists():
                return
            layout = layout_model(**default_layout_values())
            layout.revision_note = "Installed by migrate."
            layout.save(using=using)
            layout.publish(using=using)
    except DatabaseError:
        # The app's tables are not migrated on this database (a router keeps them away).
        logger.warning("Could not install the default transactional_mail layout on %r.",
                       using, exc_info=True)
