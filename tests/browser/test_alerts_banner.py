"""The alerts banner in a real browser: above the send log and on the admin index, styled
as the admin's own messages (critical as an error, warning as a warning)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from tests.browser.admin_pages import expect, log_in
from transactional_mail.models import Alert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_active_alerts_show_above_the_send_log_and_on_the_index(page, screenshot):
    now = timezone.now()
    Alert.objects.create(
        kind="bounce_rate", severity="critical", value=0.071, threshold=0.05,
        raised_at=now - datetime.timedelta(minutes=40), checked_at=now,
        message="The bounce rate is 7.10% over the last 24 hours (213 of 3,000 emails the "
                "ESP accepted), above the critical threshold of 5.00%. Bounces mean stale or "
                "mistyped addresses, or a blocked sender: check the send log's bounced emails.")
    Alert.objects.create(
        kind="volume_drop", severity="warning", value=0.2, threshold=0.5,
        raised_at=now - datetime.timedelta(minutes=10), checked_at=now,
        message="Volume dropped: 40 emails in the last hour against 200 in the same hour a "
                "week ago (below 0.5 times). Is a trigger disabled or failing?")
    log_in(page, "ops")
    banner = page.locator(".transactional-mail-alerts")
    expect(banner.locator(".error")).to_contain_text("Critical: bounce rate")
    expect(banner.locator(".warning")).to_contain_text("Warning: volume drop")
    page.goto("/admin/transactional_mail/email/")
    expect(banner.locator(".error")).to_contain_text("7.10% over the last 24 hours")
    screenshot("alerts-banner", docs=True, locator=banner)
