"""Previewing a template against a real object: its trigger, its objects, their context.

For a template bound to a trigger (an entry of ``TRANSACTIONAL_MAIL["TRIGGERS"]`` with a
``model`` whose ``template`` is the template's key), the editor lets staff pick one object
of the trigger's model and renders the draft with the context that trigger builds for it:
:func:`~transactional_mail.triggers.firing.plan` (what ``fire()`` queues), turned into the
JSON snapshot the outbox stores. That context is personal data: the views that use this
module require the send log's view permission (:data:`VIEW_EMAIL_PERMISSION`).

The search is bounded: at most :data:`MAX_RESULTS` objects, newest first, matched by their
primary key exactly, or by the ``search_fields`` the site's own ``ModelAdmin`` of that model
declares (the fields the site already made searchable in its admin, with the admin's
``^``/``=`` prefixes). A model without a ``ModelAdmin`` is searched by id only: scanning
arbitrary text columns of a large table is not something this page should start.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db.models import Q

from ..exceptions import ConfigurationError
from ..models import Email
from ..redaction import REDACTED, redact_context
from ..rendering.preview import context_from_paths
from ..snapshots import json_snapshot
from ..triggers.definitions import Trigger, all_triggers
from ..triggers.firing import plan

__all__ = ["MAX_QUERY_CHARS", "MAX_RESULTS", "VIEW_EMAIL_PERMISSION", "ObjectProblem",
           "TriggerContext", "bound_trigger", "declared_paths", "object_context",
           "search_objects", "trigger_context"]

logger = logging.getLogger(__name__)

#: Seeing a real object's context is seeing what the send log shows: personal data.
VIEW_EMAIL_PERMISSION = "transactional_mail.view_email"
#: At most this many objects per search.
MAX_RESULTS = 20
#: A longer search text is cut to this length.
MAX_QUERY_CHARS = 100


class ObjectProblem(Exception):
    """The picked object cannot give a context; the message says why, for staff."""


def bound_trigger(template_key: str) -> Trigger | None:
    """The first trigger with a model that sends ``template_key``, or None."""
    try:
        triggers = all_triggers()
    except ConfigurationError:  # reported by ``manage.py check``; no picker meanwhile
        return None
    return next((trigger for trigger in triggers.values()
                 if trigger.template == template_key and trigger.model is not None), None)


def _search_lookup(field: str) -> str | None:
    if field.startswith("^"):
        return f"{field[1:]}__istartswith"
    if field.startswith("="):
        return f"{field[1:]}__iexact"
    if field.startswith("@"):  # full-text search needs the database's setup: skipped
        return None
    return f"{field}__icontains"


def search_fields(trigger: Trigger, admin_site) -> list[str]:
    """The ``search_fields`` of the site's ``ModelAdmin`` for the trigger's model."""
    model_admin = admin_site._registry.get(trigger.model)
    return list(getattr(model_admin, "search_fields", None) or ())


def search_objects(trigger: Trigger, query: str, admin_site) -> list[dict[str, str]]:
    """At most ``MAX_RESULTS`` objects of the trigger's model, newest first, as id and str.

    An empty ``query`` gives the newest objects (an index scan of the primary key).
    """
    model = trigger.model
    query = (query or "").strip()[:MAX_QUERY_CHARS]
    queryset = model._default_manager.order_by("-pk")
    if query:
        condition = Q()
        with contextlib.suppress(ValidationError, ValueError, TypeError):  # not an id
            condition |= Q(pk=model._meta.pk.to_python(query))
        for field in search_fields(trigger, admin_site):
            lookup = _search_lookup(field)
            if lookup:
                condition |= Q(**{lookup: query})
        if not condition:
            return []
        queryset = queryset.filter(condition)
        if any("__" in field for field in search_fields(trigger, admin_site)):
            queryset = queryset.distinct()  # a to-many search field repeats rows
    return [{"id": str(obj.pk), "str": str(obj)} for obj in queryset[:MAX_RESULTS]]


def object_context(trigger: Trigger, object_id: str) -> tuple[dict[str, Any], list[str]]:
    """The JSON context the trigger queues for the object ``object_id``, and notes.

    The context is ``plan()``'s (the one ``fire()`` passes to ``send()``), snapshotted as
    the outbox stores it. When the trigger would not fire for the object now (its
    ``when`` is false, it is disabled) the context is still built, with a note saying so.
    The trigger's ``secret_keys`` hold the redaction marker, never the values.
    Raise :class:`ObjectProblem` when the object does not exist or the context fails.
    """
    model = trigger.model
    name = model._meta.verbose_name
    try:
        instance = model._default_manager.get(pk=object_id)
    except (model.DoesNotExist, ValidationError, ValueError, TypeError):
        raise ObjectProblem(f"There is no {name} with id {object_id!r}.") from None
    notes = []
    try:
        result = plan(trigger, instance)
        if result.fires:
            context = result.context
        else:
            notes.append(f"The trigger {trigger.key!r} would not send this email for "
                         f"{instance} now ({result.reason}); the preview uses the context "
                         f"it would build.")
            context = trigger.context(instance)
        secret_keys = trigger.options.get("secret_keys") or ()
        if secret_keys:
            # The callable may have made a live secret (a sign-in link for this user):
            # staff preview the email with the marker in its place.
            context = redact_context(context, secret_keys)
            notes.append(f"{', '.join(secret_keys)}: secret, shown as {REDACTED}.")
        return json_snapshot(context), notes
    except Exception as err:
        logger.warning("Preview: trigger %s failed for %s %s", trigger.key, name, object_id,
                       exc_info=True)
        raise ObjectProblem(
            f"The trigger {trigger.key!r} failed for {name} {object_id}: "
            f"{type(err).__name__}: {err}. A real email would be logged as failed with "
            f"this reason.") from None


def declared_paths(trigger: Trigger) -> tuple[str, ...] | None:
    """The context paths a trigger declares statically, or None when a callable builds it.

    No ``context``: the default ``object.id`` and ``object.str``; a list of paths: those
    paths and their parents (``customer.name`` gives ``customer`` and ``customer.name``).
    """
    value = trigger.definition.get("context")
    if value is None:
        return ("object", "object.id", "object.str")
    if isinstance(value, (list, tuple)):
        paths: list[str] = []
        for path in value:
            parts = str(path).split(".")
            for end in range(1, len(parts) + 1):
                prefix = ".".join(parts[:end])
                if prefix not in paths:
                    paths.append(prefix)
        return tuple(paths)
    return None


class TriggerContext(NamedTuple):
    """A context a template's trigger builds, and where it came from (for messages)."""

    context: dict[str, Any]
    source: str


def trigger_context(template_key: str) -> TriggerContext | None:
    """The context the trigger bound to ``template_key`` gives its emails, to check a
    template's variables against; None when no trigger sends it or nothing shows one.

    In order: the paths the trigger declares (no ``context``, or a list of paths); else
    the context of the newest email the trigger queued (the send log's index on
    ``trigger_key, created_at``); else the context it builds for the newest object of its
    model. Only the keys matter to the caller: nothing here is shown.
    """
    trigger = bound_trigger(template_key)
    if trigger is None:
        return None
    paths = declared_paths(trigger)
    if paths is not None:
        return TriggerContext(context_from_paths(paths),
                              f"the context the trigger “{trigger.key}” declares")
    latest = (Email.objects.filter(trigger_key=trigger.key).order_by("-created_at", "-pk")
              .values_list("pk", "context").first())
    if latest is not None and isinstance(latest[1], dict):
        return TriggerContext(latest[1], f"the context of email #{latest[0]}, the newest "
                                         f"the trigger “{trigger.key}” queued")
    newest = trigger.model._default_manager.order_by("-pk").values_list("pk", flat=True)
    object_id = newest.first()
    if object_id is None:
        return None
    try:
        context, _notes = object_context(trigger, str(object_id))
    except ObjectProblem:
        return None
    return TriggerContext(context, f"the context the trigger “{trigger.key}” builds for "
                                   f"{trigger.model._meta.verbose_name} {object_id}")
