"""The warning a worker logs at start when the site's Celery settings make delivery slow."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from tests.celery_app import app as celery_app
from transactional_mail.worker import warn_about_worker_settings


def worker_of(conf: dict, fixups=None) -> SimpleNamespace:
    """A stand-in for Celery's WorkController: what the worker_init receiver reads."""
    fixups = celery_app._fixups if fixups is None else fixups
    return SimpleNamespace(app=SimpleNamespace(conf=conf, _fixups=fixups))


def test_a_worker_closing_its_connection_after_every_task_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="transactional_mail.worker"):
        warn_about_worker_settings(sender=worker_of({}))
    [record] = caplog.records
    assert "CELERY_DB_REUSE_MAX is not set" in record.getMessage()
    assert "CELERY_DB_REUSE_MAX = 1000" in record.getMessage()


def test_no_warning_when_connections_are_reused(caplog):
    with caplog.at_level(logging.WARNING, logger="transactional_mail.worker"):
        warn_about_worker_settings(sender=worker_of({"CELERY_DB_REUSE_MAX": 1000}))
        warn_about_worker_settings(sender=worker_of({}, fixups=[]))  # not a Django worker
    assert caplog.records == []


def test_the_receiver_is_connected_to_worker_init():
    from celery.signals import worker_init

    assert any(
        receiver_id[0] == "transactional_mail.worker_init"
        for receiver_id, _ in worker_init.receivers
    )


def test_the_test_site_follows_the_advice():
    assert celery_app.conf.get("CELERY_DB_REUSE_MAX") == 1000
