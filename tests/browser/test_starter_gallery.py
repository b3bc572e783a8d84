"""Every starter x language in headless Chromium: 600 and 375 pixels wide, light and dark.

Each render is the worker's (CSS inlined) in the shipped default layout, shown with
``set_content`` (no server needed). A phone never scrolls sideways, Arabic reads right to
left with its text on the right and its numbers on the end side, dark mode darkens the
card, and every screenshot lands in ``build/screenshots/starters/`` (an artifact).
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import SCREENSHOTS
from tests.browser.starter_gallery import (
    SCHEMES,
    WIDTHS,
    gallery_layout,
    open_page,
    render_starter,
    shot_name,
)
from transactional_mail.starters import LANGUAGES, load_starters

pytestmark = pytest.mark.browser

STARTERS = load_starters()
CASES = [(key, language) for key in sorted(STARTERS) for language in LANGUAGES]
OUT = SCREENSHOTS / "starters"
DARK_CARD = "rgb(31, 41, 55)"  # the default layout's dark-mode container
LIGHT_CARD = "rgb(255, 255, 255)"

# Where a block's text sits in its box: the gap on its start side (RTL: the right side).
TEXT_SIDES = """(selector) => [...document.querySelectorAll(selector)].map((element) => {
  const range = document.createRange();
  range.selectNodeContents(element);
  const text = range.getBoundingClientRect();
  const box = element.getBoundingClientRect();
  const style = getComputedStyle(element);
  return {left: text.left - box.left - parseFloat(style.paddingLeft),
          right: box.right - text.right - parseFloat(style.paddingRight),
          direction: style.direction};
})"""


@pytest.fixture(scope="module")
def layout():
    return gallery_layout()


@pytest.mark.parametrize(("key", "language"), CASES)
def test_it_looks_right_at_both_widths_in_light_and_dark(chromium, layout, key, language):
    html = render_starter(STARTERS[key], language, layout)
    OUT.mkdir(parents=True, exist_ok=True)
    rtl = language == "ar"
    for width in WIDTHS:
        for scheme in SCHEMES:
            page = open_page(chromium, html, width, scheme)
            try:
                root = page.evaluate("() => [document.documentElement.lang, "
                                     "document.documentElement.dir]")
                assert root == [language, "rtl" if rtl else "ltr"]
                overflow = page.evaluate("() => document.documentElement.scrollWidth - "
                                         "window.innerWidth")
                assert overflow <= 0, f"{width} {scheme}: {overflow}px of horizontal scroll"
                card = page.evaluate("() => getComputedStyle(document.querySelector("
                                     "'.container')).backgroundColor")
                assert card == (DARK_CARD if scheme == "dark" else LIGHT_CARD)
                # A one-time code is centred, and Latin (left to right) in every language.
                for block in page.evaluate(TEXT_SIDES, ".content h1, "
                                           ".content p:not(.actions):not(.code)"):
                    assert block["direction"] == ("rtl" if rtl else "ltr")
                    # Text starts on its start side: flush right in Arabic, left otherwise.
                    assert abs(block["right" if rtl else "left"]) <= 1, block
                for cell in page.evaluate(TEXT_SIDES, "td.num"):
                    # Numbers sit on the end side: left in Arabic, right otherwise.
                    assert abs(cell["left" if rtl else "right"]) <= 1, cell
                page.screenshot(path=str(OUT / f"{shot_name(key, language, width, scheme)}.png"),
                                full_page=True)
            finally:
                page.context.close()
