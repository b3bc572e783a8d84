"""Fixtures of the trigger tests: a customer with templates (``use_triggers`` is the
suite's, in tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.factories import make_template
from tests.testapp.models import Customer


@pytest.fixture
def customer():
    make_template()
    make_template("shipping_update", subject="Order {{ number }} shipped")
    return Customer.objects.create(name="Ann", email="ann@example.com", language="fr")
