"""Headless Chromium (Debian's ``chromium``) driven by Playwright, against ``live_server``.

The browser tests run when Playwright (the ``browser`` extra) and a Chromium binary are
installed (``make test`` and ``.ci/run`` install both). Otherwise they skip with a one-line
reason, except under ``CI=true``, where a missing browser fails them: in CI they must run.

Chromium is found as ``$TM_CHROMIUM``, else ``chromium`` or ``chromium-browser`` on the
PATH. Playwright's own browser download (``playwright install``) is never used.

Screenshots go to ``build/screenshots/`` (an artifact, gitignored); with
``TM_DOCS_SCREENSHOTS=1`` the ones the staff guide shows are also written to ``docs/img/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.factories import ORDER_CONTEXT, make_layout, make_template

# Playwright's sync API runs an event loop in this thread; Django's ORM (live_server's
# fixtures, the assertions) refuses to run beside one unless told it is safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
DOCS_IMAGES = ROOT / "docs" / "img"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def _chromium() -> str | None:
    return os.environ.get("TM_CHROMIUM") or shutil.which("chromium") or shutil.which(
        "chromium-browser")


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "needs Playwright: pip install -e '.[browser]' (make test installs it)"
    if not _chromium():
        return "needs Chromium: apt-get install chromium (make test installs it)"
    return None


def pytest_collection_modifyitems(config, items):
    missing = _missing()
    if not missing or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason=missing)
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the session."""
    missing = _missing()
    if missing:  # only reached under CI=true
        pytest.fail(f"CI=true and the browser tests cannot run: {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    """A fresh browser page (1400 px wide, English) whose base URL is the live server."""
    context = chromium.new_context(base_url=live_server.url, locale="en-GB",
                                   viewport={"width": 1400, "height": 2400})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot(page):
    """``screenshot(name, docs=False)``: the page (or ``locator=``) into build/screenshots/,
    and into docs/img/ for the staff guide when ``TM_DOCS_SCREENSHOTS=1``."""

    def take(name: str, *, docs: bool = False, locator=None) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        (locator or page).screenshot(path=str(path))
        if docs and os.environ.get("TM_DOCS_SCREENSHOTS") == "1":
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMAGES / f"{name}.png")
        return path

    return take


@pytest.fixture
def template():
    """The order confirmation, published, in a layout with a footer, with a text part."""
    return make_template(
        layout=make_layout(footer_html="Shop Ltd, 1 High Street"),
        text="Hello {{ customer.name }}, thanks for order {{ order.number }}.",
        sample_context=ORDER_CONTEXT,
    )
