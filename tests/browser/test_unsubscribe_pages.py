"""The unsubscribe and preferences pages in a real browser: keyboard only, on a phone.

The person arrives from an email, often on a phone: the pages must work without a mouse
(labels, focus), fit a narrow screen, and do what the buttons say.
"""

from __future__ import annotations

import pytest

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_layout, make_template
from tests.test_streams import CATEGORIES
from transactional_mail.models import Suppression
from transactional_mail.subscriptions import make_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def review(settings):
    settings.TRANSACTIONAL_MAIL = {
        **settings.TRANSACTIONAL_MAIL,
        "CATEGORIES": {**CATEGORIES, "tips": {"essential": False, "description": "Tips."}},
        "BASE_URL": "https://shop.example.com",
    }
    layout = make_layout()
    make_template("review_request", layout=layout, category="reviews")
    return transactional_mail.send("review_request", "ann@example.com", ORDER_CONTEXT)


def test_unsubscribe_with_the_keyboard_on_a_phone(page, review, screenshot):
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"/mail/unsubscribe/{make_token(review.pk)}/")
    assert Suppression.objects.count() == 0  # the page itself changes nothing
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360  # nothing scrolls sideways
    screenshot("unsubscribe-confirm")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Unsubscribe"
    page.keyboard.press("Enter")
    page.get_by_role("status").wait_for()
    assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
    assert list(Suppression.objects.values_list("category", flat=True)) == ["reviews"]


def test_resubscribe_by_clicking_a_label(page, review, screenshot):
    page.goto(f"/mail/preferences/{make_token(review.pk)}/")
    page.get_by_text("Tips.").click()  # the description belongs to the checkbox's label
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").wait_for()
    assert list(Suppression.objects.values_list("category", flat=True)) == ["tips"]
    assert page.get_by_role("checkbox", name="Reviews").is_checked()
    assert not page.get_by_role("checkbox", name="Tips").is_checked()
    screenshot("email-preferences")
