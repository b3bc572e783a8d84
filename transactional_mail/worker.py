"""What the app checks when a Celery worker starts.

A worker's cost per email depends on Celery settings the app cannot choose for the site;
the one that matters most is warned about here, once, in the worker's log.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

#: What the warning recommends (see docs/deployment.md for the measurements).
RECOMMENDED_DB_REUSE_MAX = 1000


def warn_about_worker_settings(sender=None, **kwargs) -> None:
    """Receiver of ``celery.signals.worker_init``: log what would slow delivery down."""
    app = getattr(sender, "app", None)
    if app is None or not _uses_django_fixup(app):
        return
    # The setting Celery's Django fix-up reads (as CELERY_DB_REUSE_MAX in Django settings
    # with the usual namespace="CELERY"); without it the fix-up closes every database
    # connection before and after each task.
    if not app.conf.get("CELERY_DB_REUSE_MAX"):
        logger.warning(
            "Celery closes the database connection before and after every task because "
            "CELERY_DB_REUSE_MAX is not set: each transactional_mail delivery task pays a "
            "new database connection (on PostgreSQL more than the email's own queries). "
            "Set CELERY_DB_REUSE_MAX = %d in your Django settings; see the deployment "
            "guide of django-transactional-mail.",
            RECOMMENDED_DB_REUSE_MAX,
        )


def _uses_django_fixup(app) -> bool:
    return any(type(fixup).__name__ == "DjangoFixup" for fixup in getattr(app, "_fixups", ()))
