"""Fixtures of the attack tests: those of the features they attack."""

from tests.periodic.conftest import report_template  # noqa: F401
