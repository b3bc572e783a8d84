"""Operator alerts (alerts.py, the check_alerts beat task): rates over a seeded send log,
volume against last week, a stuck outbox; one mail per alert kind per period, through
Django's mail_admins and never through the outbox."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend
from django_celery_beat.models import PeriodicTask

from transactional_mail import alerts, tasks
from transactional_mail.models import Alert, AlertKind, Email, EmailStatus
from transactional_mail.signals import alert_raised

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


def seed(count: int, status: str = EmailStatus.DELIVERED, *, ago=datetime.timedelta(minutes=30),
         due_ago: datetime.timedelta | None = None) -> None:
    """``count`` emails of ``status`` created ``ago`` before NOW (due ``due_ago`` before)."""
    created = NOW - ago
    due = NOW - (due_ago if due_ago is not None else ago)
    ids = [email.pk for email in Email.objects.bulk_create(
        Email(template_key="welcome", from_email="shop@example.com", to=["a@example.com"],
              status=status, next_attempt_at=due) for _ in range(count))]
    # created_at is auto_now_add: move the rows to the time the test wants.
    Email.objects.filter(pk__in=ids).update(created_at=created)


@pytest.fixture(autouse=True)
def admins(settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def received():
    """The alerts ``alert_raised`` carried."""
    seen = []

    def receiver(sender, alert, **kwargs):
        seen.append((alert.kind, alert.severity))

    alert_raised.connect(receiver, weak=False, dispatch_uid="test-alerts")
    yield seen
    alert_raised.disconnect(dispatch_uid="test-alerts")


def history() -> None:
    """One email eight days old: the log is over a week old, so volume is compared."""
    seed(1, ago=datetime.timedelta(days=8))


def use_alerts(settings, **values):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "ALERTS": values}


# --- Rates -------------------------------------------------------------------------------


def test_a_bounce_spike_raises_a_critical_alert_mailed_to_admins(received):
    seed(180)
    seed(20, EmailStatus.BOUNCED)
    [alert] = alerts.check_alerts(NOW)
    assert (alert.kind, alert.severity) == (AlertKind.BOUNCE_RATE, "critical")
    assert alert.value == pytest.approx(0.1) and alert.threshold == 0.05
    assert "10.00% over the last 24 hours (20 of 200 emails" in alert.message
    assert received == [("bounce_rate", "critical")]
    [message] = mail.outbox
    assert message.to == ["ops@example.com"]
    assert "[critical]" in message.subject and "bounce rate" in message.subject
    assert "20 of 200" in message.body
    assert [a.kind for a in alerts.active_alerts()] == ["bounce_rate"]


def test_no_alert_below_the_thresholds(received):
    seed(988)
    seed(10, EmailStatus.BOUNCED)  # 1 %: under the 2 % warning
    seed(1, EmailStatus.COMPLAINED)  # 0.1 %: Gmail's limit is "above 0.1 %"
    seed(1, EmailStatus.SENT)
    assert alerts.check_alerts(NOW) == []
    assert received == [] and mail.outbox == [] and not Alert.objects.exists()


def test_complaints_warn_above_0_1_percent_and_turning_critical_mails_at_once(received):
    seed(998)
    seed(2, EmailStatus.COMPLAINED)  # 0.2 %: a warning
    [alert] = alerts.check_alerts(NOW)
    assert (alert.kind, alert.severity, alert.threshold) == ("complaint_rate", "warning", 0.001)
    seed(2, EmailStatus.COMPLAINED)  # 4 of 1002: critical
    [alert] = alerts.check_alerts(NOW + datetime.timedelta(minutes=5))
    assert alert.severity == "critical"
    assert received == [("complaint_rate", "warning"), ("complaint_rate", "critical")]
    assert len(mail.outbox) == 2


def test_too_few_emails_make_no_rate():
    """Five bounces of ten emails say nothing yet: MIN_EMAILS (100) accepted emails first."""
    seed(5)
    seed(5, EmailStatus.BOUNCED)
    assert alerts.find(NOW) == []


def test_emails_outside_the_window_and_not_accepted_do_not_count():
    seed(200, ago=datetime.timedelta(days=2))
    seed(50, EmailStatus.BOUNCED, ago=datetime.timedelta(days=2))
    seed(100, EmailStatus.FAILED)  # never reached the ESP
    seed(100, EmailStatus.SUPPRESSED)
    seed(100)
    assert alerts.find(NOW) == []


# --- Rate limit, repeat, resolution -------------------------------------------------------


def test_an_alert_is_mailed_once_per_period_while_it_lasts(settings, received):
    use_alerts(settings, REPEAT_AFTER=3600)
    seed(100)
    seed(10, EmailStatus.BOUNCED)
    assert len(alerts.check_alerts(NOW)) == 1
    for minutes in (5, 10, 55):
        assert alerts.check_alerts(NOW + datetime.timedelta(minutes=minutes)) == []
    assert len(mail.outbox) == 1 and len(received) == 1
    alert = Alert.objects.get()
    assert alert.checked_at == NOW + datetime.timedelta(minutes=55)
    assert alert.raised_at == NOW
    assert len(alerts.check_alerts(NOW + datetime.timedelta(minutes=61))) == 1
    assert len(mail.outbox) == 2


def test_two_checks_at_the_same_moment_mail_once():
    """Two beat processes (or a manual run beside beat): the conditional UPDATE on
    notified_at lets one of them mail."""
    seed(100)
    seed(10, EmailStatus.BOUNCED)
    [finding] = alerts.find(NOW)
    assert alerts._record(finding, NOW) is not None
    assert alerts._record(finding, NOW) is None
    assert len(mail.outbox) == 1


def test_two_checks_starting_a_new_episode_at_once_mail_once():
    """Both read the row resolved; only one resets it, so the second cannot clear the
    first one's notified_at and mail again."""
    seed(100)
    seed(10, EmailStatus.BOUNCED)
    [finding] = alerts.find(NOW)
    alerts._record(finding, NOW)
    Alert.objects.update(resolved_at=NOW)
    later = NOW + datetime.timedelta(minutes=5)
    stale_read = Alert.objects.get()
    assert alerts._record(finding, later) is not None
    with mock.patch.object(Alert.objects, "get_or_create", return_value=(stale_read, False)):
        assert alerts._record(finding, later) is None
    assert len(mail.outbox) == 2  # the first episode's mail, and the second's once


def test_an_ended_alert_is_resolved_and_a_new_episode_mails_again():
    seed(100)
    seed(10, EmailStatus.BOUNCED)
    alerts.check_alerts(NOW)
    Email.objects.filter(status=EmailStatus.BOUNCED).update(status=EmailStatus.DELIVERED)
    later = NOW + datetime.timedelta(minutes=5)
    assert alerts.check_alerts(later) == []
    alert = Alert.objects.get()
    assert alert.resolved_at == later and not alert.is_active
    assert alerts.active_alerts() == []
    Email.objects.filter(pk__in=Email.objects.values("pk")[:10]).update(
        status=EmailStatus.BOUNCED)
    again = NOW + datetime.timedelta(minutes=10)
    [alert] = alerts.check_alerts(again)
    assert alert.raised_at == again and alert.resolved_at is None
    assert len(mail.outbox) == 2


class BrokenBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP server down")


def test_a_failed_admin_mail_is_retried_at_the_next_check(settings, received, caplog):
    seed(100)
    seed(10, EmailStatus.BOUNCED)
    settings.EMAIL_BACKEND = "tests.test_alerts.BrokenBackend"
    alerts.check_alerts(NOW)
    assert "Could not mail ADMINS about alert bounce_rate" in caplog.text
    assert Alert.objects.get().notified_at is None  # the alert itself is recorded
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert len(alerts.check_alerts(NOW + datetime.timedelta(minutes=5))) == 1
    assert len(mail.outbox) == 1


def test_the_admin_mail_does_not_go_through_the_outbox(settings):
    """The outbox may be what is broken: mail_admins uses settings.EMAIL_BACKEND directly,
    writes no Email row and publishes no task, even with the app's backend broken."""
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL,
                                   "EMAIL_BACKEND": "tests.test_alerts.BrokenBackend"}
    seed(3, EmailStatus.QUEUED, due_ago=datetime.timedelta(hours=2))
    before = Email.objects.count()
    alerts.check_alerts(NOW)
    assert len(mail.outbox) == 1
    assert Email.objects.count() == before


def test_a_failing_receiver_does_not_stop_the_mail(caplog):
    def broken(sender, alert, **kwargs):
        raise RuntimeError("pager down")

    alert_raised.connect(broken, weak=False, dispatch_uid="test-broken")
    try:
        seed(2, EmailStatus.QUEUED, due_ago=datetime.timedelta(hours=1))
        alerts.check_alerts(NOW)
    finally:
        alert_raised.disconnect(dispatch_uid="test-broken")
    assert [m.subject for m in mail.outbox if "outbox stuck" in m.subject] == [
        "[Django] [critical] transactional mail: outbox stuck"]
    assert "pager down" in caplog.text


# --- Volume ------------------------------------------------------------------------------


def test_a_volume_drop_against_the_same_hour_last_week():
    history()
    seed(300, ago=datetime.timedelta(days=7, minutes=30))
    seed(100)
    [finding] = alerts.find(NOW)
    assert finding.kind == AlertKind.VOLUME_DROP and finding.severity == "warning"
    assert "100 emails in the last hour against 300 in the same hour a week ago" \
        in finding.message
    assert finding.value == pytest.approx(1 / 3)


def test_a_volume_spike_against_the_same_hour_last_week():
    history()
    seed(120, ago=datetime.timedelta(days=7, minutes=10))
    seed(400, ago=datetime.timedelta(minutes=5))
    [finding] = alerts.find(NOW)
    assert finding.kind == AlertKind.VOLUME_SPIKE and finding.value == pytest.approx(400 / 120)


def test_a_spike_over_a_near_empty_hour_needs_volume_min_times_the_ratio():
    """3 emails at 3 a.m. last week, 200 now: not three hundred (3 x VOLUME_MIN)."""
    history()
    seed(3, ago=datetime.timedelta(days=7, minutes=10))
    seed(200)
    assert alerts.find(NOW) == []
    seed(101)
    assert [f.kind for f in alerts.find(NOW)] == ["volume_spike"]


def test_no_volume_alert_without_a_week_of_history():
    """A new site: nothing a week ago to compare with, however much it sends now."""
    seed(1000)
    assert alerts.find(NOW) == []


def test_ordinary_volume_and_quiet_hours_raise_nothing():
    history()
    seed(120, ago=datetime.timedelta(days=7, minutes=30))
    seed(100)  # within 0.5x..3x
    seed(500, ago=datetime.timedelta(days=7, hours=3))  # another hour last week
    assert alerts.find(NOW) == []
    Email.objects.all().delete()
    history()
    seed(60, ago=datetime.timedelta(days=7, minutes=30))
    seed(2)  # a big drop, but neither hour reaches VOLUME_MIN (100)
    assert alerts.find(NOW) == []


def test_volume_alerts_can_be_turned_off(settings):
    history()
    use_alerts(settings, VOLUME_DROP=None, VOLUME_SPIKE=None)
    seed(300, ago=datetime.timedelta(days=7, minutes=30))
    assert alerts.find(NOW) == []


# --- Stuck outbox ------------------------------------------------------------------------


def test_emails_due_for_longer_than_stuck_after_are_critical():
    seed(3, EmailStatus.QUEUED, due_ago=datetime.timedelta(minutes=40))
    seed(1, EmailStatus.SENDING, due_ago=datetime.timedelta(minutes=20))
    [finding] = alerts.find(NOW)
    assert (finding.kind, finding.severity, finding.value) == ("outbox_stuck", "critical", 4)
    assert "4 emails have been due in the outbox for more than 15 minutes (the oldest " \
        "for 40 minutes)" in finding.message


def test_a_fresh_or_future_outbox_is_not_stuck():
    seed(5, EmailStatus.QUEUED, due_ago=datetime.timedelta(minutes=5))
    seed(5, EmailStatus.SCHEDULED, due_ago=-datetime.timedelta(days=3))
    seed(5, EmailStatus.SENT, due_ago=datetime.timedelta(hours=3))
    seed(5, EmailStatus.FAILED, due_ago=datetime.timedelta(hours=3))
    assert alerts.find(NOW) == []


# --- Cost, settings, the beat task -------------------------------------------------------


def test_a_check_costs_a_few_queries_whatever_the_log_size(django_assert_max_num_queries):
    history()
    seed(150)
    seed(30, EmailStatus.BOUNCED)
    seed(600, ago=datetime.timedelta(days=7, minutes=30))
    seed(50, EmailStatus.QUEUED, due_ago=datetime.timedelta(hours=1))
    with django_assert_max_num_queries(6):  # rates 1, volume 3, outbox 2
        findings = alerts.find(NOW)
    assert {f.kind for f in findings} == {"bounce_rate", "volume_drop", "outbox_stuck"}


def test_partial_settings_keep_the_other_defaults(settings):
    use_alerts(settings, BOUNCE_RATE=None, STUCK_AFTER=60)
    config = alerts.alert_settings()
    assert config["BOUNCE_RATE"] is None and config["STUCK_AFTER"] == 60
    assert config["COMPLAINT_RATE"] == (0.001, 0.003)


@pytest.mark.parametrize(("values", "message"), [
    ({"BOUNCE": 0.1}, "unknown keys ['BOUNCE']"),
    ({"COMPLAINT_RATE": 0.003}, "must be None or a pair (warning, critical)"),
    ({"COMPLAINT_RATE": (0.3, 0.1)}, "warning first"),
    ({"COMPLAINT_RATE": (0.1, 30)}, "fractions between 0 and 1"),
    ({"STUCK_AFTER": -1}, "'STUCK_AFTER'] must be a positive number or None"),
    ({"WINDOW": None}, "'WINDOW'] must be a positive number; it is None"),
    ({"VOLUME_DROP": 2}, "below 1"),
    ({"INTERVAL": 0.5}, "a whole number of seconds; it is 0.5"),
    ({"INTERVAL": True}, "'INTERVAL'] must be a positive number; it is True"),
    ({"VOLUME_SPIKE": 0.5}, "above 1"),
])
def test_bad_settings_say_what_to_fix(settings, values, message):
    use_alerts(settings, **values)
    with pytest.raises(ImproperlyConfigured) as raised:
        alerts.alert_settings()
    assert message in str(raised.value)


def test_the_beat_task_checks_and_returns_the_kinds_raised():
    seed(2, EmailStatus.QUEUED, due_ago=datetime.timedelta(days=1))
    assert tasks.check_alerts.name == "transactional_mail.check_alerts"
    assert tasks.check_alerts() == ["outbox_stuck"]
    assert tasks.check_alerts() == []  # still active, already mailed


def test_migrate_installs_the_alerts_beat_row():
    row = PeriodicTask.objects.get(name="transactional_mail.check_alerts")
    assert row.task == "transactional_mail.check_alerts"
    assert (row.interval.every, row.interval.period) == (300, "seconds")
    assert row.enabled


def test_stale_checks_are_noticed(settings):
    seed(2, EmailStatus.QUEUED, due_ago=datetime.timedelta(days=1))
    alerts.check_alerts(NOW)
    active = alerts.active_alerts()
    assert not alerts.checks_look_stale(active, NOW + datetime.timedelta(minutes=14))
    assert alerts.checks_look_stale(active, NOW + datetime.timedelta(minutes=16))
    assert not alerts.checks_look_stale([], NOW)
