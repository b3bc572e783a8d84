"""A module whose own import fails, as when a dependency is missing: checks name the cause."""

import weasyprint_missing  # noqa: F401


def context(order) -> dict:
    return {}
