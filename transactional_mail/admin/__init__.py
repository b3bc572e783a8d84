"""Staff UI. This is the plain first version; the template editor comes later."""

from .alerts import AlertAdmin
from .dashboard import MailStatDayAdmin
from .digests import DigestWindowAdmin
from .layouts import LayoutAdmin
from .log import EmailAdmin
from .schedules import ScheduleRunAdmin
from .suppression import SuppressionAdmin
from .templates import EmailTemplateAdmin
from .triggers import TriggerAdmin

__all__ = [
    "AlertAdmin", "DigestWindowAdmin", "EmailAdmin", "EmailTemplateAdmin", "LayoutAdmin",
    "MailStatDayAdmin", "ScheduleRunAdmin", "SuppressionAdmin", "TriggerAdmin",
]
