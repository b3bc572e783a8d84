"""Receivers: the signals that fire triggers, and the old field values "changed" compares.

Model events come from ``post_save`` / ``post_delete``, received for every model and
matched to triggers at call time (so ``override_settings`` works). ``"changed"`` knows a
field's old value from a snapshot taken when the instance was loaded (``post_init``), so
it costs no query per save; only an instance whose value was never loaded (deferred, or
built by hand with a primary key) costs one query in ``pre_save``. After ``migrate``,
``sync_trigger_rows`` gives each trigger its row, the admin's on/off switch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from django.core.signals import setting_changed
from django.db import DatabaseError, models
from django.db.models.signals import post_delete, post_init, post_save, pre_delete, pre_save

from ..conf import get_setting
from ..exceptions import ConfigurationError
from ..models import Trigger as TriggerSwitch
from .definitions import (
    INITIAL_VALUES_ATTR,
    Trigger,
    all_triggers,
    forget_triggers,
    tracked_fields,
    triggers_for_model,
)
from .firing import fire

logger = logging.getLogger(__name__)

#: What ``connect()`` connected, for ``disconnect()`` to undo: ``{"triggers": {key: Trigger}}``.
_connected: dict[str, dict[str, Trigger]] = {}


def connect() -> None:
    """Connect the receivers the current settings need (from ``ready()`` and on change)."""
    post_save.connect(_model_saved, weak=False, dispatch_uid="transactional_mail.post_save")
    setting_changed.connect(_settings_changed, weak=False,
                            dispatch_uid="transactional_mail.setting_changed")
    try:
        triggers = all_triggers()
    except ConfigurationError:
        # manage.py check reports it with an id and a hint. Until it is fixed, refuse
        # every save and delete before anything is written: the error is loud, and no
        # row is committed without the email it should have queued.
        pre_save.connect(_refuse_broken_triggers, weak=False, dispatch_uid=_BROKEN_UID)
        pre_delete.connect(_refuse_broken_triggers, weak=False, dispatch_uid=_BROKEN_UID)
        return
    for model in {t.model for t in triggers.values() if t.on == "changed"}:
        uid = f"transactional_mail.track.{model._meta.label}"
        post_init.connect(_remember_values, sender=model, weak=False, dispatch_uid=uid)
        pre_save.connect(_load_unknown_values, sender=model, weak=False, dispatch_uid=uid)
    # Only models with a "deleted" trigger: any post_delete receiver turns off Django's
    # fast (signal-free) delete for that model.
    for model in {t.model for t in triggers.values() if t.on == "deleted"}:
        post_delete.connect(_model_deleted, sender=model, weak=False,
                            dispatch_uid=f"transactional_mail.deleted.{model._meta.label}")
    for trigger in triggers.values():
        if trigger.signal is not None:
            trigger.signal.connect(_signal_receiver(trigger.key), weak=False,
                                   dispatch_uid=f"transactional_mail.signal.{trigger.key}")
    _connected["triggers"] = triggers


def disconnect() -> None:
    """Undo ``connect()`` for the settings it was called with."""
    pre_save.disconnect(dispatch_uid=_BROKEN_UID)
    pre_delete.disconnect(dispatch_uid=_BROKEN_UID)
    for trigger in _connected.pop("triggers", {}).values():
        if trigger.on == "deleted":
            uid = f"transactional_mail.deleted.{trigger.model._meta.label}"
            post_delete.disconnect(sender=trigger.model, dispatch_uid=uid)
        if trigger.on == "changed":
            uid = f"transactional_mail.track.{trigger.model._meta.label}"
            post_init.disconnect(sender=trigger.model, dispatch_uid=uid)
            pre_save.disconnect(sender=trigger.model, dispatch_uid=uid)
        if trigger.signal is not None:
            trigger.signal.disconnect(dispatch_uid=f"transactional_mail.signal.{trigger.key}")


_BROKEN_UID = "transactional_mail.broken_triggers"


def _refuse_broken_triggers(sender, raw=False, **kwargs) -> None:
    if not raw:
        all_triggers()  # raises the ConfigurationError that says what to fix


def _settings_changed(setting: str, **kwargs) -> None:
    if setting == "TRANSACTIONAL_MAIL":
        disconnect()
        forget_triggers()
        connect()


def _remember_values(sender, instance, only=None, **kwargs) -> None:
    """Keep the tracked fields' values as the database has them now.

    After a save with ``update_fields``, only those fields reached the database.
    """
    loaded = instance.__dict__
    remembered = loaded.setdefault(INITIAL_VALUES_ATTR, {})
    for name, attname in tracked_fields(sender).items():
        if attname in loaded and (only is None or name in only or attname in only):
            remembered[name] = loaded[attname]


def _load_unknown_values(sender, instance, raw=False, using=None, **kwargs) -> None:
    """Before a save, fetch old values that were never loaded (one query, rarely)."""
    if raw or instance.pk is None:
        return
    initial = instance.__dict__.setdefault(INITIAL_VALUES_ATTR, {})
    if instance._state.adding:
        # Built by hand with a primary key: what it holds may not be what the row holds.
        initial.clear()
    tracked = tracked_fields(sender)
    missing = [name for name in tracked if name not in initial]
    if missing:
        attnames = [tracked[name] for name in missing]
        row = sender._base_manager.using(using).filter(pk=instance.pk).values(*attnames).first()
        if row is not None:
            for name, attname in zip(missing, attnames, strict=True):
                initial[name] = row[attname]


def _model_saved(sender, instance, created, update_fields=None, raw=False, using=None,
                 **kwargs) -> None:
    if raw:
        return  # loaddata: fixtures are not events
    triggers = triggers_for_model(sender)
    if not triggers:
        return
    for trigger in triggers:
        if trigger.matches_save(instance, created, update_fields):
            fire(trigger, instance)
    if any(trigger.on == "changed" for trigger in triggers):
        _remember_values(sender, instance, only=update_fields)  # the next save compares


def _model_deleted(sender, instance, using=None, **kwargs) -> None:
    # The log keeps the deleted object's type and id as text, like admin's LogEntry.
    for trigger in triggers_for_model(sender):
        if trigger.on == "deleted":
            fire(trigger, instance)


def _signal_receiver(key: str) -> Callable[..., None]:
    def receiver(sender, **kwargs):
        trigger = all_triggers().get(key)
        if trigger is None or (trigger.sender is not None and sender is not trigger.sender):
            return
        instance = kwargs.get(trigger.instance_arg)
        extra = {name: value for name, value in kwargs.items() if name != "signal"}
        fire(trigger, instance, extra=extra,
             source=instance if isinstance(instance, models.Model) else None)

    return receiver


def sync_trigger_rows(using: str = "default", **kwargs) -> None:
    """Create a ``Trigger`` row (enabled) for each trigger in settings; runs after migrate."""
    definitions = get_setting("TRIGGERS")
    keys = set(definitions) if isinstance(definitions, Mapping) else set()
    try:
        existing = set(TriggerSwitch.objects.using(using).values_list("key", flat=True))
        TriggerSwitch.objects.using(using).bulk_create(
            [TriggerSwitch(key=key) for key in sorted(keys - existing) if isinstance(key, str)]
        )
    except DatabaseError:
        logger.warning("Could not sync trigger rows on %r; run migrate.", using, exc_info=True)
