"""``send()``: queue one email through the outbox."""

from __future__ import annotations

import base64
import contextlib
import datetime
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.files.base import File
from django.db import IntegrityError, models, router, transaction
from django.utils import timezone

from . import outbox_insert
from .categories import get_category, undeclared_category_problem
from .conf import default_from_email, get_setting
from .durations import parse_delay
from .exceptions import InvalidEmailOption, TemplateNotFound
from .headers import check_address, check_header_value, one_line
from .models import Email, EmailStatus
from .models.templates import language_fallbacks, normalize_language, template_languages
from .snapshots import json_snapshot
from .tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

Recipients = str | Iterable[str] | None


def send(
    template_key: str,
    to: Recipients,
    context: Mapping[str, Any] | None = None,
    *,
    language: str | None = None,
    cc: Recipients = None,
    bcc: Recipients = None,
    reply_to: Recipients = None,
    from_email: str | None = None,
    attachments: Iterable[Any] | None = None,
    headers: Mapping[str, str] | None = None,
    tags: Iterable[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    send_at: datetime.datetime | None = None,
    delay: datetime.timedelta | str | int | float | None = None,
    idempotency_key: str | None = None,
    category: str | None = None,
    source: models.Model | None = None,
    trigger_key: str = "",
    is_test: bool = False,
    secret_keys: Iterable[str] | None = None,
) -> Email:
    """Queue one email and return its ``Email`` row.

    ``secret_keys`` names the top-level context keys that hold secrets (a reset link, a
    sign-in code): the message is rendered with them, but no stored copy keeps them (the
    subject, bodies and errors are stored redacted; the context loses them once the email
    is sent, fails for good or is cancelled), the admin never shows them, and the email
    cannot be resent (see docs/accounts.md).

    ``is_test`` marks a test send by staff (the admin's "send test email"): the send log
    filters on it, and it changes nothing else about delivery.

    The row is written in the caller's transaction; delivery is enqueued when that
    transaction commits, so a rollback sends nothing. Nothing is rendered or sent here.

    Raises ``TemplateNotFound`` for an unknown key, ``ContextNotSerializable`` when the
    context is not JSON data, and ``InvalidEmailOption`` for malformed options (a header
    value that is not one line, an address naming several mailboxes or over 320
    characters, more recipients than ``MAX_RECIPIENTS``, attachments over
    ``MAX_ATTACHMENTS_SIZE``, a secret key the context does not have, a ``category``
    ``CATEGORIES`` does not declare once any is declared); in each case nothing is written.
    ``category=None`` is the template's category, ``""`` none (essential).
    """
    using = router.db_for_write(Email)
    if idempotency_key is not None:
        existing = Email.objects.using(using).filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    email = build_email(
        template_key, to, context, language=language, cc=cc, bcc=bcc, reply_to=reply_to,
        from_email=from_email, attachments=attachments, headers=headers, tags=tags,
        metadata=metadata, send_at=send_at, delay=delay, idempotency_key=idempotency_key,
        category=category, source=source, trigger_key=trigger_key, is_test=is_test,
        secret_keys=secret_keys, using=using,
    )
    due = email.next_attempt_at

    if idempotency_key is None:
        outbox_insert.insert(email, using)
    else:
        try:
            with transaction.atomic(using=using):
                outbox_insert.insert(email, using)
        except IntegrityError:
            # A concurrent transaction queued the same key first; return its row.
            return Email.objects.using(using).get(idempotency_key=idempotency_key)

    enqueue_on_commit(email.pk, due, using)
    return email


def build_email(
    template_key: str,
    to: Recipients,
    context: Mapping[str, Any] | None = None,
    *,
    language: str | None = None,
    cc: Recipients = None,
    bcc: Recipients = None,
    reply_to: Recipients = None,
    from_email: str | None = None,
    attachments: Iterable[Any] | None = None,
    headers: Mapping[str, str] | None = None,
    tags: Iterable[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    send_at: datetime.datetime | None = None,
    delay: datetime.timedelta | str | int | float | None = None,
    idempotency_key: str | None = None,
    category: str | None = None,
    source: models.Model | None = None,
    trigger_key: str = "",
    is_test: bool = False,
    secret_keys: Iterable[str] | None = None,
    using: str | None = None,
) -> Email:
    """The ``Email`` row ``send()`` would queue, validated and unsaved.

    For callers that insert many rows at once (``bulk_create``) and enqueue their
    delivery themselves (``tasks.enqueue_delivery``), as scheduled runs do. Raises what
    ``send()`` raises; its ``next_attempt_at`` is when it is due.
    """
    using = using or router.db_for_write(Email)
    if context is not None and not isinstance(context, Mapping):
        raise InvalidEmailOption(
            f"context must be a dict of template variables, not {type(context).__name__}."
        )
    secrets = _secret_keys(secret_keys, context or {})
    _check_language(language)
    _check_lengths(template_key=template_key, trigger_key=trigger_key, category=category,
                   language=language, idempotency_key=idempotency_key)
    if category is not None and not isinstance(category, str):
        raise InvalidEmailOption(f"category must be a category key (a string), not "
                                 f"{category!r}.")
    if category:
        # None (the template's category) and "" (none: essential) are always allowed.
        problem = undeclared_category_problem(category)
        if problem:
            raise InvalidEmailOption(problem)
    template_category = _template_category(template_key, language)
    category = template_category if category is None else category
    # The category's sender and reply-to stand in for the ones the caller did not give;
    # the row records the sender the email is sent from.
    stream = get_category(category)
    now = timezone.now()
    due = _due_time(now, send_at, delay)
    recipients = {"to": _addresses("to", to), "cc": _addresses("cc", cc),
                  "bcc": _addresses("bcc", bcc),
                  "reply_to": _addresses("reply_to", reply_to or list(stream.reply_to))}
    _check_recipient_count(recipients)
    email = Email(
        status=EmailStatus.SCHEDULED if due > now else EmailStatus.QUEUED,
        template_key=template_key,
        trigger_key=trigger_key,
        category=category,
        language=normalize_language(language),
        from_email=check_address("from_email",
                                 from_email or stream.from_email or default_from_email()),
        **recipients,
        headers=_headers(headers),
        tags=[check_header_value("tags", str(tag)) for tag in _strings(tags)],
        metadata=json_snapshot(metadata or {}, name="metadata"),
        attachments=_attachments(attachments),
        context=json_snapshot(context or {}),
        secret_keys=secrets,
        idempotency_key=idempotency_key,
        is_test=bool(is_test),
        next_attempt_at=due,
    )
    if source is not None:
        source_id = str(source.pk)
        if len(source_id) > _MAX_SOURCE_ID:
            raise InvalidEmailOption(
                f"source's primary key is {len(source_id)} characters long; the send log "
                f"links a source by a key of at most {_MAX_SOURCE_ID}. Pass no source (or "
                "one with a shorter key).")
        email.source_content_type = ContentType.objects.db_manager(using).get_for_model(source)
        email.source_object_id = source_id
    return email


#: The longest source primary key (as text) an email row links to.
_MAX_SOURCE_ID = 255


def record_unsent(
    template_key: str,
    reason: str,
    *,
    to: Iterable[str] = (),
    trigger_key: str = "",
    source: models.Model | None = None,
) -> Email:
    """Log an email that could not be queued (no valid recipient, a failing trigger).

    The row is ``failed`` with the reason, so the problem shows in the send log instead
    of vanishing or breaking the request that caused it. The addresses are stored made one
    line: they may be why the email failed, and PostgreSQL cannot store a NUL.
    """
    now = timezone.now()
    email = Email(
        status=EmailStatus.FAILED,
        template_key=template_key[:100],
        trigger_key=trigger_key,
        from_email=default_from_email(),
        to=[one_line(str(address)) for address in to],
        last_error=reason,
        next_attempt_at=now,
    )
    source_id = "" if source is None else str(source.pk)
    if len(source_id) > _MAX_SOURCE_ID:
        # Too long a key to link (send() refuses it): the row is still written, unlinked.
        email.last_error = f"{reason} (Its source, {source!r}, has too long a key to link.)"
    elif source is not None:
        email.source_content_type = ContentType.objects.get_for_model(source)
        email.source_object_id = source_id
    email.save()
    return email


#: The longest value each column of the Email row holds.
_MAX_LENGTHS = {"template_key": 100, "trigger_key": 100, "category": 50, "language": 15,
                "idempotency_key": 255}


#: Control characters and lone UTF-16 surrogates: no language code holds one, and the
#: database cannot store a NUL or a surrogate.
_NOT_IN_A_LANGUAGE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _check_language(language: Any) -> None:
    """Refuse a language that is not a string, or holds a character no language code
    has: a NUL or a lone surrogate would fail the INSERT (on PostgreSQL), and with it the
    caller's transaction. Any other unknown language falls back to the default template."""
    if language is None:
        return
    if not isinstance(language, str):
        raise InvalidEmailOption(f"language must be a language code like 'fr' or 'pt-br' "
                                 f"(a string), not {language!r}.")
    if _NOT_IN_A_LANGUAGE.search(language.strip()):
        raise InvalidEmailOption(f"language {language!r} holds a control character or a "
                                 "lone surrogate; give a language code like 'fr' or 'pt-br'.")


def _check_lengths(**values: str | None) -> None:
    """Refuse a value the row cannot hold before anything is written: on PostgreSQL a
    failed INSERT would abort the caller's whole transaction."""
    for name, value in values.items():
        if value is not None and len(str(value)) > _MAX_LENGTHS[name]:
            raise InvalidEmailOption(
                f"{name} is {len(str(value))} characters long; at most "
                f"{_MAX_LENGTHS[name]} fit. Shorten it."
            )


def _secret_keys(keys: Iterable[str] | None, context: Mapping[str, Any]) -> list[str]:
    """The secret keys as stored: each a top-level key of ``context``, listed once.

    A key the context lacks is refused rather than ignored: it is most likely a typo, and
    the secret it meant would be stored in clear.
    """
    keys = list(dict.fromkeys(_strings(keys)))
    for key in keys:
        if not isinstance(key, str):
            raise InvalidEmailOption(
                f"secret_keys holds {key!r} ({type(key).__name__}); name top-level context "
                "keys, e.g. secret_keys=['reset_url']."
            )
        if key not in context:
            raise InvalidEmailOption(
                f"secret_keys names {key!r}, which the context does not have (its keys: "
                f"{', '.join(sorted(map(str, context))) or 'none'}). Name top-level keys "
                "of the context, e.g. secret_keys=['reset_url']."
            )
    return keys


def _template_category(key: str, language: str | None) -> str:
    """The category of the template ``key`` would use; ``TemplateNotFound`` if none."""
    languages = template_languages(key)
    candidates = language_fallbacks(language)
    for candidate in candidates:
        if candidate in languages:
            return languages[candidate]
    raise TemplateNotFound(key, candidates)


def _due_time(now, send_at, delay) -> datetime.datetime:
    if send_at is not None and delay is not None:
        raise InvalidEmailOption("Give send_at or delay, not both.")
    if send_at is not None:
        if not isinstance(send_at, datetime.datetime) or timezone.is_naive(send_at):
            raise InvalidEmailOption(
                f"send_at={send_at!r} must be a timezone-aware datetime "
                "(e.g. timezone.now() + timedelta(hours=2))."
            )
        return max(send_at, now)
    if delay is not None:
        return now + max(parse_delay(delay), datetime.timedelta(0))
    return now


def _strings(value: str | Iterable[str] | None) -> list[str]:
    """A single string is one item (``tags="orders"``), not a list of its characters."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _addresses(option: str, value: Recipients) -> list[str]:
    """Normalise a recipient option to a list of strings, each one line naming one mailbox
    in at most 320 characters; whether an address is valid is checked at delivery."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    try:
        addresses = list(value)
    except TypeError:
        raise InvalidEmailOption(
            f"{option} must be an address or a list of addresses, not {type(value).__name__}."
        ) from None
    for address in addresses:
        if not isinstance(address, str):
            raise InvalidEmailOption(
                f"{option} holds {address!r} ({type(address).__name__}); addresses are strings."
            )
    addresses = [address.strip() for address in addresses if address.strip()]
    _check_count(option, len(addresses), "addresses")
    for address in addresses:
        check_address(option, address)
    return addresses


def _check_count(what: str, count: int, unit: str = "recipients (to + cc + bcc)") -> None:
    limit = get_setting("MAX_RECIPIENTS")
    if count > limit:
        raise InvalidEmailOption(
            f"{what} has {count} {unit}; at most {limit} are allowed "
            "(TRANSACTIONAL_MAIL['MAX_RECIPIENTS']). Send one email per recipient, or raise "
            "the setting if your ESP accepts more in one message."
        )


def _check_recipient_count(recipients: dict[str, list[str]]) -> None:
    """Every ESP caps the recipients of one message (Postmark and Amazon SES at 50)."""
    _check_count("The email", sum(len(recipients[name]) for name in ("to", "cc", "bcc")))


def _headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    result = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not re.fullmatch(r"[!-9;-~]+", name):
            raise InvalidEmailOption(
                f"Header name {name!r} is not valid: use printable ASCII without spaces or ':'."
            )
        result[name] = check_header_value(f"headers[{name!r}]", str(value))
    return result


def _attachments(items: Iterable[Any] | None) -> list[dict[str, str]]:
    """The attachments as stored on the row, refused past ``MAX_ATTACHMENTS_SIZE`` bytes."""
    limit = get_setting("MAX_ATTACHMENTS_SIZE")
    stored, total = [], 0
    for item in items or ():
        attachment, size = _attachment(item, room=limit - total)
        total += size
        if total > limit:
            raise InvalidEmailOption(
                f"The attachments total {total} bytes with {attachment['filename']!r}; at most "
                f"{limit} are allowed (TRANSACTIONAL_MAIL['MAX_ATTACHMENTS_SIZE']). Link to "
                "large files instead, or raise the setting up to your ESP's message size "
                "limit (see the settings reference)."
            )
        stored.append(attachment)
    return stored


def _attachment(item: Any, room: int) -> tuple[dict[str, str], int]:
    """An attachment as filename, MIME type and base64 content, and its size in bytes.

    A file is read no further than ``room`` + 1 bytes: past that it is refused anyway.
    """
    if isinstance(item, File):
        item.open("rb")
        filename, content, mimetype = item.name.rsplit("/", 1)[-1], item.read(room + 1), None
    elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
        filename, content, *rest = item
        mimetype = rest[0] if rest else None
    else:
        raise InvalidEmailOption(
            f"Attachment {item!r} must be a (filename, content, mimetype) tuple or a File."
        )
    if isinstance(content, str):
        content = content.encode("utf-8")
    if not isinstance(content, (bytes, bytearray)):
        raise InvalidEmailOption(f"Attachment {filename!r}: content must be bytes or str.")
    size = len(content)
    if isinstance(item, File) and size > room:
        with contextlib.suppress(AttributeError, OSError):
            size = max(size, item.size)  # the whole file, for the error message
    if not mimetype:
        import mimetypes

        mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return {
        "filename": check_header_value("attachment filename", str(filename)),
        "mimetype": check_header_value("attachment mimetype", str(mimetype)),
        # Past the room it is refused: no need to encode it.
        "content": base64.b64encode(bytes(content)).decode("ascii") if size <= room else "",
    }, size
