"""Models of transactional_mail, one module per concept."""

from .layouts import Layout, LayoutRevision
from .log import Email, EmailEvent, EmailStatus
from .suppression import Suppression, SuppressionReason
from .templates import EmailTemplate, TemplateRevision
from .triggers import Trigger

__all__ = [
    "Email",
    "EmailEvent",
    "EmailStatus",
    "EmailTemplate",
    "Layout",
    "LayoutRevision",
    "Suppression",
    "SuppressionReason",
    "TemplateRevision",
    "Trigger",
]
