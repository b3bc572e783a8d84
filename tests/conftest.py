"""Fixtures shared by the whole suite.

Importing the test site's Celery app here makes it the current app before any task
module is imported, so ``@shared_task`` binds to it: the Celery path is always real
(never eager), and a unit test that queues a task publishes to the ``memory://`` broker.
"""

from __future__ import annotations

import pytest

from tests.celery_app import app as celery_app  # noqa: F401  (binds shared tasks)
from tests.esp_server import FakePostmark

pytest_plugins = ["tests.workers"]


@pytest.fixture(scope="session")
def esp_server():
    """One fake Postmark API for the whole session (workers are started pointing at it)."""
    server = FakePostmark()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def esp(esp_server, settings):
    """The fake Postmark API, reset for this test, with Anymail in this process posting to it."""
    esp_server.reset()
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_API_URL": esp_server.url}
    yield esp_server
    esp_server.reset()
