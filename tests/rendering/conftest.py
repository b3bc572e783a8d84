"""Fixtures of the rendering tests."""

from __future__ import annotations

import socket

import pytest

from transactional_mail.rendering.compiled import clear_inline_cache


@pytest.fixture
def pure(monkeypatch):
    """The test starts with an empty cache and without network (``pytestmark`` of the
    rendering tests).

    pytest-django already refuses database access to tests without the ``django_db``
    mark, so each test here also shows that rendering makes no query.
    """

    def no_network(*args, **kwargs):
        raise AssertionError("rendering tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    clear_inline_cache()
    yield
    clear_inline_cache()
