"""Fixtures of the trigger tests: triggers set in settings, a customer with templates."""

from __future__ import annotations

import pytest

from tests.factories import make_template
from tests.testapp.models import Customer


@pytest.fixture
def use_triggers(settings):
    def use(**definitions):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "TRIGGERS": definitions}
    return use


@pytest.fixture
def customer():
    make_template()
    make_template("shipping_update", subject="Order {{ number }} shipped")
    return Customer.objects.create(name="Ann", email="ann@example.com", language="fr")
