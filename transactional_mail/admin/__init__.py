"""Staff UI. This is the plain first version; the template editor comes later."""

from .dashboard import MailStatDayAdmin
from .layouts import LayoutAdmin
from .log import EmailAdmin
from .suppression import SuppressionAdmin
from .templates import EmailTemplateAdmin
from .triggers import TriggerAdmin

__all__ = [
    "EmailAdmin", "EmailTemplateAdmin", "LayoutAdmin", "MailStatDayAdmin", "SuppressionAdmin",
    "TriggerAdmin",
]
