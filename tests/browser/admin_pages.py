"""What the browser tests do on admin pages: log in, type into the code editor.

``expect`` is Playwright's, or None when Playwright is not installed (conftest then skips
the browser tests, or fails them under ``CI=true``).
"""

from __future__ import annotations

from django.contrib.auth.models import User

try:
    from playwright.sync_api import expect
except ImportError:
    expect = None

__all__ = ["expect", "log_in", "type_in"]


def log_in(page, username: str) -> None:
    """Create a superuser ``username`` (address username@example.com) and log in as them."""
    User.objects.create_superuser(username, f"{username}@example.com", "pw-for-tests")
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")


def type_in(page, field: str, text: str) -> None:
    """Type at the end of a CodeMirror editor, as staff would."""
    page.locator(f".field-{field} .CodeMirror").click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)
