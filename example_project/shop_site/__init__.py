"""The demo shop's Django project."""

# Load the site's Celery app whenever Django starts, so that @shared_task (used by
# transactional_mail) binds to it and send() enqueues through its broker.
from .celery import app as celery_app

__all__ = ["celery_app"]
