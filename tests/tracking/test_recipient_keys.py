"""Recipient keys: an HMAC per event and recipient, holding no address."""

from __future__ import annotations

import pytest

from transactional_mail.tracking import recipient_keys

pytestmark = pytest.mark.django_db


def test_recipient_key_ignores_case_and_display_name():
    key = recipient_keys.recipient_key("Amazon SES", "id-1", "ann@example.com")
    assert recipient_keys.recipient_key("Amazon SES", "id-1", "Ann <ANN@Example.com>") == key
    assert recipient_keys.recipient_key("Amazon SES", "id-2", "ann@example.com") != key
    assert recipient_keys.recipient_key("Postmark", "id-1", "ann@example.com") != key
    assert recipient_keys.recipient_key("Amazon SES", "id-1", "") == ""


def test_key_depends_on_secret_key(settings):
    key = recipient_keys.recipient_key("Amazon SES", "id-1", "ann@example.com")
    settings.SECRET_KEY = "another-secret"
    assert recipient_keys.recipient_key("Amazon SES", "id-1", "ann@example.com") != key
