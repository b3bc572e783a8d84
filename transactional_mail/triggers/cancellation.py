"""The send-time re-check of a trigger's email: ``when`` and ``cancel_when`` on the object now.

Delivery asks it through ``transactional_mail.send_checks``, where the app registers it
when it is ready: delivery never imports the triggers.
"""

from __future__ import annotations

from .definitions import all_triggers


def cancellation_reason(email) -> str:
    """Why a trigger's email should not go out now; "" to send it.

    Delayed emails of model triggers re-check ``when``, and every email checks
    ``cancel_when``, against the object as it is now: no review request for an order
    refunded in the meantime. A signal trigger's ``when`` is not re-checked: it was
    decided with the signal's arguments (the request...), which are gone.
    """
    trigger = all_triggers().get(email.trigger_key) if email.trigger_key else None
    if trigger is None or (trigger.cancel_when is None and trigger.delay is None):
        return ""
    if trigger.on == "deleted" or not email.source_content_type_id:
        return ""
    model = email.source_content_type.model_class()
    instance = model._base_manager.filter(pk=email.source_object_id).first() if model else None
    if instance is None:
        return f"Cancelled: the {email.source_content_type.name} it was about no longer exists."
    what = f"{model._meta.verbose_name} {instance}"
    recheck_when = trigger.delay is not None and trigger.when is not None and trigger.model
    if recheck_when and not trigger.wanted(instance, {}):
        return (f"Cancelled: the {what} no longer meets the “when” condition of the "
                f"trigger “{trigger.key}”.")
    if trigger.cancel_when is not None and trigger.cancel_when(instance):
        return (f"Cancelled: the {what} now meets the “cancel_when” condition of the "
                f"trigger “{trigger.key}”.")
    return ""
