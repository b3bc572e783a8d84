"""Models of transactional_mail, one module per concept."""

from .attempts import AttemptOutcome, EmailAttempt
from .layouts import Layout, LayoutRevision
from .log import Email, EmailEvent, EmailStatus
from .stats import MailStatDay, StatFlag
from .suppression import (
    Suppression,
    SuppressionChange,
    SuppressionHistory,
    SuppressionReason,
)
from .templates import EmailTemplate, TemplateRevision
from .triggers import Trigger

__all__ = [
    "AttemptOutcome",
    "Email",
    "EmailAttempt",
    "EmailEvent",
    "EmailStatus",
    "EmailTemplate",
    "Layout",
    "LayoutRevision",
    "MailStatDay",
    "Suppression",
    "SuppressionChange",
    "SuppressionHistory",
    "StatFlag",
    "SuppressionReason",
    "TemplateRevision",
    "Trigger",
]
