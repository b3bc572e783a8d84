"""Fixtures shared by the whole suite.

Importing the test site's Celery app here makes it the current app before any task
module is imported, so ``@shared_task`` binds to it: the Celery path is always real
(never eager), and a unit test that queues a task publishes to the ``memory://`` broker.
"""

from __future__ import annotations

import os
from unittest import mock

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.celery_app import app as celery_app  # noqa: F401  (binds shared tasks)
from tests.esp_server import FakePostmark
from tests.workers import _mark_process_logs, pytest_runtest_makereport  # noqa: F401

# Property-based tests run the same examples on every run (a fixed seed) and a bounded
# number of them, so CI is reproducible and its time predictable. Locally,
# HYPOTHESIS_PROFILE=explore searches much further, with a random seed.
_HYPOTHESIS_COMMON = {
    "deadline": None,  # a database round trip's time varies; never a reason to fail
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
hypothesis_settings.register_profile(
    "ci", derandomize=True, max_examples=60, **_HYPOTHESIS_COMMON
)
hypothesis_settings.register_profile("explore", max_examples=2000, **_HYPOTHESIS_COMMON)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def esp_server():
    """One fake Postmark API for the whole session (workers are started pointing at it)."""
    server = FakePostmark()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def esp(esp_server, settings):
    """The fake Postmark API, reset for this test, with Anymail in this process posting to it.

    Django's test environment swaps EMAIL_BACKEND for locmem; this puts the real Postmark
    backend back, so the test exercises the HTTP path.
    """
    esp_server.reset()
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_API_URL": esp_server.url}
    yield esp_server
    esp_server.reset()


@pytest.fixture
def enqueued():
    """The deliver tasks the code under test publishes, caught before the broker: each
    call is ``publish(task, email_ids, producer=..., countdown=..., queue=...)``."""
    with mock.patch("transactional_mail.publishing.publish") as publish:
        yield publish


@pytest.fixture(autouse=True)
def _clear_caches():
    """Cached template lookups and revisions must not outlive the rows a test rolled back."""
    from django.core.cache import cache

    from transactional_mail import process_cache
    from transactional_mail.delivery import clear_revision_cache

    cache.clear()
    process_cache.clear()
    clear_revision_cache()
    yield
    cache.clear()
    process_cache.clear()
    clear_revision_cache()


@pytest.fixture
def use_triggers(settings):
    """``use_triggers(key=definition, ...)``: exactly these triggers in settings."""
    def use(**definitions):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "TRIGGERS": definitions}
    return use


@pytest.fixture
def allauth(settings):
    """django-allauth set up with the app's adapter (tests that use it skip without the
    ``allauth`` extra)."""
    settings.ACCOUNT_ADAPTER = "transactional_mail.allauth.AccountAdapter"
    settings.ACCOUNT_LOGIN_METHODS = {"email"}
    settings.ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    settings.ACCOUNT_RATE_LIMITS = False
    return settings
