"""Operator alerts: bounce and complaint rates, volume against last week, a stuck outbox.

``check_alerts()`` (run by the ``transactional_mail.check_alerts`` beat task) measures
each condition with a few indexed queries over a bounded window of the send log, keeps
one ``Alert`` row per kind, and raises an alert (the ``alert_raised`` signal and a mail
to ``settings.ADMINS``) when it is found, turns critical, or is still there after
``ALERTS["REPEAT_AFTER"]`` seconds. See docs/alerts.md.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.mail import mail_admins
from django.db.models import Count, Min, Q
from django.utils import timezone

from .conf import DEFAULTS, get_setting
from .exceptions import ConfigurationError
from .models import Alert, AlertKind, AlertSeverity, Email, EmailStatus
from .signals import alert_raised

logger = logging.getLogger(__name__)

#: Statuses of emails the ESP accepted: the denominator of the bounce and complaint rates.
ACCEPTED_STATUSES = (EmailStatus.SENT, EmailStatus.DELIVERED, EmailStatus.DEFERRED,
                     EmailStatus.BOUNCED, EmailStatus.COMPLAINED)
#: Statuses of emails still in the outbox.
WAITING_STATUSES = (EmailStatus.QUEUED, EmailStatus.SCHEDULED, EmailStatus.SENDING)
#: A stuck outbox is counted up to this many emails: the count stays an index range scan
#: of bounded length however large the backlog.
STUCK_COUNT_CAP = 10_000
#: The volume comparison: the last hour against the same hour this long before.
VOLUME_PERIOD = datetime.timedelta(hours=1)
VOLUME_BASELINE_AGO = datetime.timedelta(days=7)


@dataclass(frozen=True)
class Finding:
    """A condition one check found: what the ``Alert`` row of ``kind`` will hold."""

    kind: str
    severity: str
    message: str
    value: float
    threshold: float


def alert_settings() -> dict[str, Any]:
    """``ALERTS`` merged over its defaults; raise ``ConfigurationError`` naming a bad key."""
    given = get_setting("ALERTS")
    defaults = DEFAULTS["ALERTS"]
    if not isinstance(given, Mapping):
        raise ConfigurationError(
            f"TRANSACTIONAL_MAIL['ALERTS'] must be a dict, not {type(given).__name__}.")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigurationError(
            f"TRANSACTIONAL_MAIL['ALERTS'] has unknown keys {unknown}; the keys are "
            f"{sorted(defaults)} (docs/alerts.md).")
    merged = {**defaults, **given}
    for key in ("COMPLAINT_RATE", "BOUNCE_RATE"):
        pair = merged[key]
        if pair is not None and not (
            isinstance(pair, (list, tuple)) and len(pair) == 2
            and all(isinstance(rate, (int, float)) and 0 < rate <= 1 for rate in pair)
            and pair[0] <= pair[1]
        ):
            raise ConfigurationError(
                f"TRANSACTIONAL_MAIL['ALERTS'][{key!r}] must be None or a pair (warning, "
                f"critical) of fractions between 0 and 1, warning first, e.g. (0.001, "
                f"0.003) for 0.1 % and 0.3 %; it is {pair!r}.")
    for key in ("INTERVAL", "WINDOW", "MIN_EMAILS", "VOLUME_DROP", "VOLUME_SPIKE",
                "VOLUME_MIN", "STUCK_AFTER", "REPEAT_AFTER"):
        value = merged[key]
        required = key in ("INTERVAL", "WINDOW", "MIN_EMAILS", "VOLUME_MIN", "REPEAT_AFTER")
        if (value is None and required) or (value is not None and not (
                isinstance(value, (int, float)) and not isinstance(value, bool)
                and value > 0)):
            raise ConfigurationError(
                f"TRANSACTIONAL_MAIL['ALERTS'][{key!r}] must be a positive number"
                f"{'' if required else ' or None'}; it is {value!r}.")
    if not isinstance(merged["INTERVAL"], int):
        raise ConfigurationError(
            "TRANSACTIONAL_MAIL['ALERTS']['INTERVAL'] is the beat row's interval, a whole "
            f"number of seconds; it is {merged['INTERVAL']!r}.")
    if merged["VOLUME_DROP"] is not None and merged["VOLUME_DROP"] >= 1:
        raise ConfigurationError(
            "TRANSACTIONAL_MAIL['ALERTS']['VOLUME_DROP'] is the fraction of last week's "
            f"volume under which to warn, below 1 (0.5: half); it is {merged['VOLUME_DROP']!r}.")
    if merged["VOLUME_SPIKE"] is not None and merged["VOLUME_SPIKE"] <= 1:
        raise ConfigurationError(
            "TRANSACTIONAL_MAIL['ALERTS']['VOLUME_SPIKE'] is the multiple of last week's "
            f"volume over which to warn, above 1 (3: three times); it is "
            f"{merged['VOLUME_SPIKE']!r}.")
    return merged


# --- Measuring ---------------------------------------------------------------------------


def find(now: datetime.datetime | None = None) -> list[Finding]:
    """Every condition found now (nothing is written)."""
    now = now or timezone.now()
    config = alert_settings()
    return [finding for finding in (*_rates(config, now), _volume(config, now),
                                    _stuck(config, now)) if finding is not None]


def _rates(config: Mapping[str, Any], now: datetime.datetime) -> list[Finding | None]:
    """Bounce and complaint rates of the emails created in the window the ESP accepted.

    One GROUP BY over the window: a range of the ``(status, created_at)`` index
    (``tmail_email_status_idx``) per status, or of ``created_at`` (``tmail_email_created_idx``)
    with the status filtered, as the planner prefers; either reads the window's rows only.
    """
    if config["COMPLAINT_RATE"] is None and config["BOUNCE_RATE"] is None:
        return []
    since = now - datetime.timedelta(seconds=config["WINDOW"])
    counts = dict(
        Email.objects.filter(status__in=ACCEPTED_STATUSES, created_at__gte=since,
                             created_at__lte=now)
        .order_by().values_list("status").annotate(n=Count("*"))
    )
    accepted = sum(counts.values())
    if accepted < config["MIN_EMAILS"]:
        return []  # too few emails for a rate to mean anything
    hours = config["WINDOW"] / 3600
    period = f"{hours:g} hours" if hours != 1 else "hour"
    return [
        _rate(AlertKind.COMPLAINT_RATE, counts.get(EmailStatus.COMPLAINED, 0), accepted,
              config["COMPLAINT_RATE"], period,
              "Mailbox providers throttle or reject a sender over 0.3 % (Gmail). Find the "
              "template or trigger the complaints come from (send log, status "
              "\"complained\") and stop or fix it."),
        _rate(AlertKind.BOUNCE_RATE, counts.get(EmailStatus.BOUNCED, 0), accepted,
              config["BOUNCE_RATE"], period,
              "Bounces mean stale or mistyped addresses, or a blocked sender: check the "
              "send log's bounced emails and their events (a list imported by mistake, a "
              "trigger mailing unverified addresses, a DNS or reputation problem)."),
    ]


def _rate(kind: str, count: int, accepted: int, thresholds, period: str,
          advice: str) -> Finding | None:
    if thresholds is None:
        return None
    rate = count / accepted
    warning, critical = thresholds
    if rate <= warning:
        return None
    severity, threshold = ((AlertSeverity.CRITICAL, critical) if rate >= critical
                           else (AlertSeverity.WARNING, warning))
    name = AlertKind(kind).label
    return Finding(kind, severity, (
        f"The {name} is {rate:.2%} over the last {period} ({count} of {accepted} emails "
        f"the ESP accepted), above the {severity} threshold of {threshold:.2%}. {advice}"),
        rate, threshold)


def _volume(config: Mapping[str, Any], now: datetime.datetime) -> Finding | None:
    """The last hour's emails against the same hour last week.

    Two counts over the ``created_at`` index (``tmail_email_created_idx``), each a range
    of one hour, and one probe of it: a log younger than a week has no last week to
    compare with (a new site would warn of a spike every hour of its first week).
    """
    if config["VOLUME_DROP"] is None and config["VOLUME_SPIKE"] is None:
        return None
    start = now - VOLUME_PERIOD
    if not Email.objects.filter(created_at__lt=start - VOLUME_BASELINE_AGO).exists():
        return None
    current = Email.objects.filter(created_at__gte=start, created_at__lt=now).count()
    baseline = Email.objects.filter(created_at__gte=start - VOLUME_BASELINE_AGO,
                                    created_at__lt=now - VOLUME_BASELINE_AGO).count()
    if max(current, baseline) < config["VOLUME_MIN"]:
        return None  # too quiet an hour for a ratio to mean anything
    compared = (f"{current} emails in the last hour against {baseline} in the same hour "
                "a week ago")
    drop, spike = config["VOLUME_DROP"], config["VOLUME_SPIKE"]
    if drop is not None and current < baseline * drop:
        return Finding(AlertKind.VOLUME_DROP, AlertSeverity.WARNING, (
            f"Volume dropped: {compared} (below {drop:g} times). Is a trigger disabled or "
            "failing, a template broken, or is the site itself down?"),
            current / baseline, drop)
    # A near-empty hour last week (night, a holiday) is no base to multiply: the spike
    # is measured against at least VOLUME_MIN.
    if spike is not None and current > max(baseline, config["VOLUME_MIN"]) * spike:
        return Finding(AlertKind.VOLUME_SPIKE, AlertSeverity.WARNING, (
            f"Volume spiked: {compared} (above {spike:g} times). Check for a trigger "
            "firing in a loop, a bulk import or a script sending through the app."),
            current / max(baseline, 1), spike)
    return None


def _stuck(config: Mapping[str, Any], now: datetime.datetime) -> Finding | None:
    """Emails due for longer than ``STUCK_AFTER`` and still in the outbox.

    Counted over the outbox index ``(status, next_attempt_at)`` (``tmail_email_outbox_idx``),
    capped at ``STUCK_COUNT_CAP``.
    """
    if config["STUCK_AFTER"] is None:
        return None
    due_before = now - datetime.timedelta(seconds=config["STUCK_AFTER"])
    stuck = Email.objects.filter(status__in=WAITING_STATUSES, next_attempt_at__lte=due_before)
    count = stuck.order_by()[:STUCK_COUNT_CAP].count()
    if not count:
        return None
    oldest = stuck.aggregate(oldest=Min("next_attempt_at"))["oldest"]
    minutes = (now - oldest).total_seconds() / 60 if oldest else 0
    shown = f"{count}+" if count >= STUCK_COUNT_CAP else str(count)
    emails_have = "email has" if count == 1 else "emails have"
    return Finding(AlertKind.OUTBOX_STUCK, AlertSeverity.CRITICAL, (
        f"{shown} {emails_have} been due in the outbox for more than "
        f"{config['STUCK_AFTER'] / 60:g} minutes (the oldest for {minutes:,.0f} minutes). "
        "Check that Celery workers and celery beat are running and the broker is up."),
        count, config["STUCK_AFTER"])


def outbox_stuck_now() -> Finding | None:
    """The stuck-outbox condition measured now, for the admin banner: the beat task that
    records alerts needs the broker and a worker, which may be what is down."""
    return _stuck(alert_settings(), timezone.now())


# --- Recording and notifying -------------------------------------------------------------


def check_alerts(now: datetime.datetime | None = None) -> list[Alert]:
    """Measure every condition, record it, resolve the alerts that ended, and notify the
    ones due; return the alerts raised (notified) by this check."""
    now = now or timezone.now()
    findings = {finding.kind: finding for finding in find(now)}
    raised = [alert for alert in (_record(finding, now) for finding in findings.values())
              if alert is not None]
    ended = Alert.objects.filter(resolved_at__isnull=True).exclude(kind__in=findings)
    for kind in ended.values_list("kind", flat=True):
        logger.info("Alert resolved: %s", kind)
    ended.update(resolved_at=now, checked_at=now)
    return raised


def _record(finding: Finding, now: datetime.datetime) -> Alert | None:
    """Write ``finding`` on its kind's row; notify when due; return the row if notified."""
    fields = {"severity": finding.severity, "message": finding.message,
              "value": finding.value, "threshold": finding.threshold, "checked_at": now}
    alert, created = Alert.objects.get_or_create(
        kind=finding.kind, defaults={**fields, "raised_at": now})
    if not created:
        # A new episode after a resolved one. Conditional, so that of two checks at once
        # only one resets the row (the other would clear the first one's notified_at).
        Alert.objects.filter(pk=alert.pk, resolved_at__isnull=False).update(
            raised_at=now, resolved_at=None, notified_at=None, notified_severity="")
        Alert.objects.filter(pk=alert.pk).update(**fields)
    # Claim the notification with one conditional UPDATE: of two checks running at once
    # (two beat processes, a manual run), one mails.
    due = Q(notified_at__isnull=True) | Q(notified_at__lte=now - datetime.timedelta(
        seconds=alert_settings()["REPEAT_AFTER"]))
    if finding.severity == AlertSeverity.CRITICAL:
        due |= ~Q(notified_severity=AlertSeverity.CRITICAL)
    previous = Alert.objects.filter(pk=alert.pk).values_list(
        "notified_at", "notified_severity").get()
    if not Alert.objects.filter(pk=alert.pk).filter(due).update(
            notified_at=now, notified_severity=finding.severity):
        return None
    alert.refresh_from_db()
    if not _notify(alert):
        # Mail again at the next check rather than after REPEAT_AFTER.
        Alert.objects.filter(pk=alert.pk, notified_at=now).update(
            notified_at=previous[0], notified_severity=previous[1])
    return alert


def _notify(alert: Alert) -> bool:
    """Send ``alert_raised`` and mail ``ADMINS``; return whether the mail went out.

    The mail goes through Django's ``mail_admins`` (``settings.EMAIL_BACKEND``), never
    through the outbox the alert may be about.
    """
    log = logger.critical if alert.severity == AlertSeverity.CRITICAL else logger.warning
    log("Alert %s (%s): %s", alert.kind, alert.severity, alert.message)
    # A failing receiver (a pager integration down) must not stop the mail; Django logs
    # its exception on the "django.dispatch" logger.
    alert_raised.send_robust(sender=Alert, alert=alert)
    subject = f"[{alert.severity}] transactional mail: {alert.get_kind_display()}"
    body = (f"{alert.message}\n\nRaised at {alert.raised_at:%Y-%m-%d %H:%M} UTC, checked at "
            f"{alert.checked_at:%Y-%m-%d %H:%M} UTC. This mail is repeated while the alert "
            "lasts (TRANSACTIONAL_MAIL['ALERTS']['REPEAT_AFTER']); the admin shows the "
            "active alerts above the send log.")
    try:
        mail_admins(subject, body, fail_silently=False)
    except Exception:  # any backend error: the alert must still be recorded and logged
        logger.exception("Could not mail ADMINS about alert %s; retried at the next check.",
                         alert.kind)
        return False
    return True


def active_alerts() -> list[Alert]:
    """The alerts active now, critical first (a handful of rows: one per kind)."""
    alerts = list(Alert.objects.filter(resolved_at__isnull=True))
    return sorted(alerts, key=lambda alert: (alert.severity != AlertSeverity.CRITICAL,
                                             alert.raised_at))


def checks_look_stale(alerts: list[Alert], now: datetime.datetime | None = None) -> bool:
    """Whether the newest check of ``alerts`` is older than three check intervals: the
    beat task has stopped, and the banner may show an alert that has ended."""
    if not alerts:
        return False
    now = now or timezone.now()
    newest = max(alert.checked_at for alert in alerts)
    return now - newest > datetime.timedelta(seconds=3 * alert_settings()["INTERVAL"])
