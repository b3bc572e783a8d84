"""``{% transactional_mail_alerts %}``: the banner of active operator alerts in the admin.

The app's admin shows it above the send log and the admin index (docs/alerts.md); a site
with its own admin index template loads this library and places the tag itself.
"""

from __future__ import annotations

from typing import Any

from django import template

from ..alerts import active_alerts, checks_look_stale, outbox_stuck_now
from ..exceptions import ConfigurationError
from ..models import AlertKind

register = template.Library()

#: Who sees the banner: alerts tell volumes and rates of the send log.
VIEW_PERMISSION = "transactional_mail.view_email"


@register.inclusion_tag("admin/transactional_mail/alerts_banner.html", takes_context=True)
def transactional_mail_alerts(context: template.Context) -> dict[str, Any]:
    """The active alerts, and a stuck outbox no check has recorded yet (the check runs on
    the broker and a worker, which may be what is down), for staff who may view the send
    log (nothing for others)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm(VIEW_PERMISSION):
        return {"alerts": []}
    alerts = active_alerts()
    stale, unrecorded = False, None
    try:
        stale = checks_look_stale(alerts)
        if not any(alert.kind == AlertKind.OUTBOX_STUCK for alert in alerts):
            # One capped count over the outbox index: shown even when no check runs.
            unrecorded = outbox_stuck_now()
    except ConfigurationError:  # reported by manage.py check; the admin must still load
        pass
    return {"alerts": alerts, "stale": stale, "unrecorded": unrecorded}
