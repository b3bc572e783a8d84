"""Event-triggered transactional email for Django.

``send(template_key, to, context=None, **options)`` queues one email; see ``api.send``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

if TYPE_CHECKING:
    from .models import Email


def send(template_key: str, to, context=None, **options: Any) -> Email:
    """Queue one email through the outbox and return its ``Email`` row.

    See ``transactional_mail.api.send`` for the options.
    """
    from .api import send as _send

    return _send(template_key, to, context, **options)


__all__ = ["send"]
