"""Pacing at send time: quiet hours in the recipient's time zone, frequency caps; the
pruning of the counts no cap reads any more."""

from __future__ import annotations

import datetime
from datetime import timedelta

import pytest
from django.utils import timezone

import transactional_mail
from tests.factories import ORDER_CONTEXT, make_template
from tests.testapp.models import Customer
from tests.triggers.helpers import BASE, new_order
from transactional_mail import delivery, pacing, privacy, tasks
from transactional_mail.models import CapCount, DigestItem, DigestWindow, Email, EmailStatus
from transactional_mail.triggers import digests

pytestmark = pytest.mark.django_db

UTC = datetime.timezone.utc
#: The recipients' time zones, for RECIPIENT_TIMEZONE = "tests.test_pacing.zone_of".
ZONES = {"paris@example.com": "Europe/Paris", "ny@example.com": "America/New_York",
         "nowhere@example.com": "Mars/Olympus_Mons"}


def zone_of(address: str) -> str | None:
    return ZONES.get(address)


@pytest.fixture
def mail(settings):
    """Set TRANSACTIONAL_MAIL keys, with "reviews" declared non-essential."""
    def use(**values):
        settings.TRANSACTIONAL_MAIL = {
            **settings.TRANSACTIONAL_MAIL,
            "CATEGORIES": {"reviews": {"essential": False}, "receipts": {"essential": True}},
            "RECIPIENT_TIMEZONE": "tests.test_pacing.zone_of", **values}
    use()
    return use


@pytest.fixture
def templates():
    make_template("review_request", category="reviews")
    make_template("receipt", category="receipts")
    make_template("order_confirmation")  # "orders": undeclared, so essential


def queue(to="paris@example.com", key="review_request") -> Email:
    return transactional_mail.send(key, to, ORDER_CONTEXT)


def at(text: str, zone: str = "UTC") -> datetime.datetime:
    from zoneinfo import ZoneInfo

    return datetime.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


QUIET = {"start": "21:00", "end": "08:00"}


class TestQuietHours:
    def test_due_inside_them_waits_for_their_end_in_the_recipients_time(self, mail,
                                                                         templates):
        mail(QUIET_HOURS=QUIET)
        email = queue("paris@example.com")
        now = at("2026-06-10 21:30", "Europe/Paris")  # 19:30 UTC
        assert pacing.quiet_hours_end(email, now) == at("2026-06-11 06:00")  # 08:00 CEST

    def test_across_a_time_zone_boundary_the_same_instant_is_quiet_for_one_only(
            self, mail, templates):
        """At 19:30 UTC it is 21:30 in Paris (quiet) and 15:30 in New York (not)."""
        mail(QUIET_HOURS=QUIET)
        now = at("2026-06-10 19:30")
        assert pacing.quiet_hours_end(queue("paris@example.com"), now) is not None
        assert pacing.quiet_hours_end(queue("ny@example.com"), now) is None
        # At 02:00 UTC it is 04:00 in Paris (quiet) and 22:00 in New York (quiet too).
        late = at("2026-06-11 02:00")
        assert pacing.quiet_hours_end(queue("paris@example.com"), late) == at(
            "2026-06-11 06:00")
        assert pacing.quiet_hours_end(queue("ny@example.com"), late) == at(
            "2026-06-11 12:00")  # 08:00 EDT

    @pytest.mark.parametrize(("now", "end"), [
        # Spring forward in Paris (29 March 2026, 02:00 -> 03:00): 08:00 CEST is 06:00 UTC,
        # a night one hour shorter than the evening's offset suggests.
        ("2026-03-28 22:00", "2026-03-29 06:00"),
        # Fall back (25 October 2026, 03:00 -> 02:00): 08:00 CET is 07:00 UTC.
        ("2026-10-24 22:00", "2026-10-25 07:00"),
    ])
    def test_the_end_is_local_time_across_a_dst_change(self, mail, templates, now, end):
        mail(QUIET_HOURS=QUIET)
        assert pacing.quiet_hours_end(queue(), at(now, "Europe/Paris")) == at(end)

    def test_an_end_inside_the_dst_gap_lands_after_it(self, mail, templates):
        mail(QUIET_HOURS={"start": "23:00", "end": "02:30"})
        end = pacing.quiet_hours_end(queue(), at("2026-03-28 23:30", "Europe/Paris"))
        assert end == at("2026-03-29 01:30")  # 02:30 does not exist: 03:30 CEST

    def test_hours_within_one_day(self, mail, templates):
        mail(QUIET_HOURS={"start": "12:00", "end": "14:00"})
        email = queue()
        assert pacing.quiet_hours_end(email, at("2026-06-10 12:30", "Europe/Paris")) == at(
            "2026-06-10 12:00")
        assert pacing.quiet_hours_end(email, at("2026-06-10 14:00", "Europe/Paris")) is None
        assert pacing.quiet_hours_end(email, at("2026-06-10 11:59", "Europe/Paris")) is None

    def test_an_unknown_zone_falls_back_to_time_zone(self, mail, templates, caplog):
        mail(QUIET_HOURS=QUIET)
        assert str(pacing.recipient_zone(queue("nowhere@example.com"))) == "UTC"
        assert "is not a time zone" in caplog.text
        assert str(pacing.recipient_zone(queue("unknown@example.com"))) == "UTC"

    def test_an_attribute_path_on_the_source_object(self, mail, templates, use_triggers):
        """RECIPIENT_TIMEZONE as a path is read on the email's source object."""
        mail(RECIPIENT_TIMEZONE="customer.name")  # the test model has no zone field
        use_triggers(review={**BASE, "on": "created", "template": "review_request"})
        customer = Customer.objects.create(name="Asia/Tokyo", email="ann@example.com")
        new_order(customer)
        assert str(pacing.recipient_zone(Email.objects.get())) == "Asia/Tokyo"

    def test_essential_and_unlisted_categories_are_never_held(self, mail, templates):
        mail(QUIET_HOURS={**QUIET, "categories": ["reviews"]})
        now = at("2026-06-10 21:30", "Europe/Paris")
        assert pacing.hold(queue(key="receipt"), now) is None  # declared essential
        assert pacing.hold(queue(key="order_confirmation"), now) is None  # undeclared
        assert pacing.hold(queue(), now).until == at("2026-06-11 06:00")

    def test_a_staff_test_send_is_never_held(self, mail, templates):
        mail(QUIET_HOURS=QUIET, FREQUENCY_CAPS={"reviews": {"count": 1, "period": "1d"}})
        now = at("2026-06-10 21:30", "Europe/Paris")
        for _ in range(2):
            email = transactional_mail.send("review_request", "paris@example.com",
                                            ORDER_CONTEXT, is_test=True)
            assert pacing.hold(email, now) is None
        assert not CapCount.objects.exists()

    def test_delivery_reschedules_without_spending_an_attempt(self, mail, templates, esp):
        now = timezone.now()
        mail(RECIPIENT_TIMEZONE=None, QUIET_HOURS={
            "start": (now - timedelta(hours=1)).strftime("%H:%M"),
            "end": (now + timedelta(hours=1)).strftime("%H:%M")})
        email = queue()
        outcome = delivery.deliver(email.pk)
        assert outcome.status == EmailStatus.SCHEDULED
        assert 3000 < outcome.retry_in <= 3600
        assert esp.requests == []
        email.refresh_from_db()
        assert (email.status, email.attempts) == (EmailStatus.SCHEDULED, 0)
        assert email.next_attempt_at > now + timedelta(minutes=50)
        assert "Quiet hours" in email.last_error
        assert not email.attempt_log.exists()
        assert delivery.deliver(email.pk).status is None  # not due before the end


@pytest.fixture
def capped(mail, templates):
    mail(FREQUENCY_CAPS={"reviews": {"count": 2, "period": "1d"}})


class TestFrequencyCaps:
    def test_the_excess_is_suppressed_with_the_reason(self, capped, esp):
        outcomes = [delivery.deliver(queue().pk).status for _ in range(3)]
        assert outcomes == [EmailStatus.SENT, EmailStatus.SENT, EmailStatus.SUPPRESSED]
        assert len(esp.requests) == 2
        last = Email.objects.order_by("pk").last()
        assert "frequency cap" in last.last_error
        assert "2 'reviews' emails per 1 day, 0:00:00" in last.last_error
        assert CapCount.objects.count() == 2  # the suppressed one took no slot

    def test_per_recipient_and_category_and_never_essential(self, capped, esp):
        for _ in range(2):
            delivery.deliver(queue().pk)
        assert delivery.deliver(queue("ny@example.com").pk).status == EmailStatus.SENT
        for key in ("receipt", "order_confirmation", "receipt"):
            assert delivery.deliver(queue(key=key).pk).status == EmailStatus.SENT
        assert delivery.deliver(queue().pk).status == EmailStatus.SUPPRESSED

    def test_the_period_rolls(self, capped, esp):
        for _ in range(2):
            delivery.deliver(queue().pk)
        CapCount.objects.update(counted_at=timezone.now() - timedelta(days=1, seconds=1))
        assert delivery.deliver(queue().pk).status == EmailStatus.SENT
        assert CapCount.objects.count() == 1  # the expired counts are gone

    def test_a_retry_keeps_its_slot(self, capped, templates):
        email = queue()
        assert pacing.hold(email) is None
        assert pacing.hold(email) is None  # the same email again: counted once
        assert CapCount.objects.count() == 1
        assert pacing.hold(queue()) is None
        assert pacing.hold(queue()).status == EmailStatus.SUPPRESSED

    def test_an_email_over_the_cap_folds_its_events_into_the_next_digest(
            self, mail, templates, use_triggers, esp):
        mail(FREQUENCY_CAPS={"reviews": {"count": 1, "period": "1d"}})
        use_triggers(review={**BASE, "on": "created", "template": "review_request",
                             "context": ["number"],
                             "digest": {"window": "1h", "first_at_once": True}})
        delivery.deliver(queue("ann@example.com").pk)  # takes the day's only slot
        customer = Customer.objects.create(name="Ann", email="ann@example.com")
        new_order(customer, "A-1")
        first = Email.objects.get(trigger_key="review")
        assert delivery.deliver(first.pk).status == EmailStatus.SUPPRESSED
        first.refresh_from_db()
        assert "folded into the next digest" in first.last_error
        item = DigestItem.objects.get()
        assert item.email is None  # waiting again, for the digest
        window = DigestWindow.objects.get()
        assert window.closes_at >= timezone.now() + timedelta(hours=23)  # when a slot frees
        new_order(customer, "A-2")
        digests.close_due_windows(now=window.closes_at)
        digest = Email.objects.filter(trigger_key="review").order_by("pk").last()
        assert [i["number"] for i in digest.context["items"]] == ["A-1", "A-2"]


class TestPruningCounts:
    """The daily retention task deletes the counts no cap reads any more."""

    def count(self, to="paris@example.com", category="reviews", age=timedelta(0)):
        email = queue(to)
        return CapCount.objects.create(recipient_key=to, category=category,
                                       counted_at=timezone.now() - age, email=email)

    def test_counts_past_their_period_go_and_the_rest_stay(self, mail, templates):
        mail(FREQUENCY_CAPS={"reviews": {"count": 2, "period": "1d"},
                             "news": {"count": 1, "period": "1w"}})
        day = timedelta(days=1)
        dead = [self.count(age=day * 2), self.count("ny@example.com", age=day * 3),
                self.count(category="news", age=day * 8),
                self.count(category="offers")]  # no cap for it any more
        alive = [self.count(age=day - timedelta(hours=1)),
                 self.count(age=day + pacing.PRUNE_MARGIN / 2),  # within the margin
                 self.count(category="news", age=day * 6)]
        assert pacing.prune_cap_counts(batch_size=2) == len(dead)
        assert sorted(CapCount.objects.values_list("pk", flat=True)) == [c.pk for c in alive]
        assert Email.objects.count() == len(dead) + len(alive)  # the log is not touched

    def test_without_caps_every_count_goes(self, mail, templates):
        self.count()
        assert pacing.prune_cap_counts() == 1

    @pytest.mark.parametrize("caps", [
        [("reviews", {"count": 2, "period": "1d"})],  # not a dict: nothing is known
        {"reviews": {"count": 2, "period": "daily"}},  # a malformed period keeps its own
        {"reviews": {"count": 2}},
    ])
    def test_a_malformed_cap_prunes_nothing_of_its_counts(self, mail, templates, caps):
        mail(FREQUENCY_CAPS=caps)
        self.count(age=timedelta(days=30))
        assert pacing.prune_cap_counts() == 0
        assert CapCount.objects.count() == 1

    def test_the_cap_still_holds_after_pruning(self, capped, esp):
        for _ in range(2):
            delivery.deliver(queue().pk)
        self.count("ny@example.com", age=timedelta(days=5))
        assert tasks.redact_old_emails() == 0
        assert list(CapCount.objects.values_list("recipient_key", flat=True)) == [
            "paris@example.com", "paris@example.com"]
        assert delivery.deliver(queue().pk).status == EmailStatus.SUPPRESSED

    def test_events_folded_into_the_next_window_survive_the_pruning(
            self, mail, templates, use_triggers, esp):
        """The digest held back by the cap closed its window; the events wait in a new,
        open one, which the pruning leaves, and go out with the next digest."""
        mail(FREQUENCY_CAPS={"reviews": {"count": 1, "period": "1d"}})
        use_triggers(review={**BASE, "on": "created", "template": "review_request",
                             "context": ["number"], "digest": {"window": "1h"}})
        delivery.deliver(queue("ann@example.com").pk)  # takes the day's only slot
        new_order(Customer.objects.create(name="Ann", email="ann@example.com"), "A-1")
        digests.close_due_windows(now=timezone.now() + timedelta(hours=2))
        digest = Email.objects.get(trigger_key="review")
        assert delivery.deliver(digest.pk).status == EmailStatus.SUPPRESSED
        DigestWindow.objects.filter(closed_at__isnull=False).update(
            closed_at=timezone.now() - timedelta(days=40))
        assert privacy.prune_digest_windows(30) == 1  # the old, closed one
        window = DigestWindow.objects.get()
        assert window.closed_at is None and window.items.count() == 1
        digests.close_due_windows(now=window.closes_at)
        last = Email.objects.filter(trigger_key="review").order_by("pk").last()
        assert last.context["items"] == [{"number": "A-1"}]


class TestChecks:
    def run(self, settings, **values):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                       "CATEGORIES": {"reviews": {"essential": False}},
                                       "BASE_URL": "https://shop.example.com",
                                       **values}
        from transactional_mail.checks import check_settings

        return [(m.id, m.msg) for m in check_settings()]

    def test_valid_settings_pass(self, settings):
        assert self.run(settings, FREQUENCY_CAPS={"reviews": {"count": 2, "period": "1d"}},
                        QUIET_HOURS={**QUIET, "categories": ["reviews"]},
                        RECIPIENT_TIMEZONE="customer.timezone") == []

    def test_messages_say_what_to_fix(self, settings):
        from django.core import checks

        assert self.run(settings, FREQUENCY_CAPS={"reviews": {"count": 0, "period": "1d"}},
                        QUIET_HOURS={**QUIET, "categories": ["orders"]}) == [
            ("transactional_mail.E030",
             "TRANSACTIONAL_MAIL['FREQUENCY_CAPS']['reviews'] is {'count': 0, 'period': "
             "'1d'}; it must be a dict with a 'count' (a whole number >= 1) and a 'period' "
             "(a duration like '1d')."),
            ("transactional_mail.W030",
             "TRANSACTIONAL_MAIL['QUIET_HOURS']['categories'] names the category 'orders', "
             "which is essential (not declared with 'essential': False in "
             "TRANSACTIONAL_MAIL['CATEGORIES']): essential mail is never held back, so this "
             "has no effect."),
        ]
        warning = [m for m in checks.run_checks() if m.id == "transactional_mail.W030"][0]
        assert warning.hint == "Declare it: 'CATEGORIES': {'orders': {'essential': False}}."

    @pytest.mark.parametrize(("values", "check_id"), [
        ({"FREQUENCY_CAPS": []}, "E030"),
        ({"FREQUENCY_CAPS": {"reviews": {"count": 0, "period": "1d"}}}, "E030"),
        ({"FREQUENCY_CAPS": {"reviews": {"count": 2, "period": "daily"}}}, "E030"),
        ({"FREQUENCY_CAPS": {"reviews": {"count": 2}}}, "E030"),
        ({"QUIET_HOURS": {"start": "9pm", "end": "08:00"}}, "E031"),
        ({"QUIET_HOURS": {"start": "08:00", "end": "08:00"}}, "E031"),
        ({"QUIET_HOURS": {**QUIET, "categories": "reviews"}}, "E031"),
        ({"RECIPIENT_TIMEZONE": "customer._tz"}, "E032"),
        ({"FREQUENCY_CAPS": {"orders": {"count": 2, "period": "1d"}}}, "W030"),
        ({"QUIET_HOURS": {**QUIET, "categories": ["orders"]}}, "W030"),
        ({"DIGEST_MAX_ITEMS": 0}, "E003"),
    ])
    def test_mistakes_are_reported(self, settings, values, check_id):
        [(found, _message)] = self.run(settings, **values)
        assert found == f"transactional_mail.{check_id}"
