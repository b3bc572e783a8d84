"""Models of transactional_mail, one module per concept."""

from .alerts import Alert, AlertKind, AlertSeverity
from .attempts import AttemptOutcome, EmailAttempt
from .caps import CapCount
from .digests import DigestItem, DigestWindow
from .layouts import Layout, LayoutRevision
from .log import Email, EmailEvent, EmailStatus
from .schedules import ScheduleRun, ScheduleRunStatus
from .stats import MailStatDay, StatFlag
from .suppression import (
    SoftBounceStreak,
    Suppression,
    SuppressionChange,
    SuppressionHistory,
    SuppressionReason,
)
from .templates import EmailTemplate, TemplateRevision
from .triggers import Trigger

__all__ = [
    "Alert",
    "AlertKind",
    "AlertSeverity",
    "AttemptOutcome",
    "CapCount",
    "DigestItem",
    "DigestWindow",
    "Email",
    "EmailAttempt",
    "EmailEvent",
    "EmailStatus",
    "EmailTemplate",
    "Layout",
    "LayoutRevision",
    "MailStatDay",
    "ScheduleRun",
    "ScheduleRunStatus",
    "SoftBounceStreak",
    "Suppression",
    "SuppressionChange",
    "SuppressionHistory",
    "StatFlag",
    "SuppressionReason",
    "TemplateRevision",
    "Trigger",
]
