"""The statistics dashboard in a real browser: the charts draw (inline SVG, no script)."""

from __future__ import annotations

import pytest

from tests.browser.admin_pages import expect, log_in
from tests.factories import make_template
from tests.stats_seed import ab_rows, seed_log

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_dashboard_draws_its_charts_and_the_ab_test(page, screenshot):
    seed_log()
    log_in(page, "staff")
    page.goto("/admin/")
    page.get_by_role("link", name="Mail statistics").click()
    charts = page.locator("svg.tm-chart")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 3
    box = charts.first.bounding_box()
    assert box["width"] > 500 and box["height"] > 150
    screenshot("dashboard", docs=True, locator=page.locator("#content"))
    make_template("welcome", subject="Welcome", subject_b="You're in")
    ab_rows()
    page.select_option("#id_template", "welcome")
    page.click("input[type=submit][value=Show]")
    expect(page.locator("#tm-ab-test")).to_be_visible()
    expect(page.locator("tr[data-variant=B] .tm-leads")).to_have_count(1)  # B's opens lead
    screenshot("dashboard-ab-test", docs=True, locator=page.locator("#content"))
    page.click("tr[data-variant=B] input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("is now the subject of a new draft")
