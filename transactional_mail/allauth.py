"""django-allauth's emails through the app: ``AccountAdapter``.

``ACCOUNT_ADAPTER = "transactional_mail.allauth.AccountAdapter"`` sends allauth's account
emails (confirmation, password reset, sign-in code, security notices) with ``send()``
and the app's templates, in the staff's branding, logged, through the outbox. Each
allauth template prefix maps to a template key (``ALLAUTH_TEMPLATES`` in the
``TRANSACTIONAL_MAIL`` setting maps more); allauth's context (a user object, URLs, codes,
the request) becomes a JSON context in the starter templates' keys, with links and
codes marked secret. A prefix that is not mapped, or whose template does not exist
yet, goes out as allauth sends it (with a warning in the second case). See
docs/accounts.md for the table.

Needs the ``allauth`` extra: ``pip install "django-transactional-mail[allauth]"``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.sites.shortcuts import get_current_site
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation

from .exceptions import ConfigurationError, TemplateNotFound

try:
    from allauth.account import app_settings as allauth_settings
    from allauth.account.adapter import DefaultAccountAdapter
    from allauth.core import context as allauth_context
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ConfigurationError(
        "transactional_mail.allauth needs django-allauth. Install the extra: "
        'pip install "django-transactional-mail[allauth]".'
    ) from err

from .api import send
from .auth import display_name, reset_link_valid_hours
from .conf import get_setting

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """How one allauth message becomes an email of the app."""

    template_key: str
    #: allauth's context key -> the app's, for the values copied as they are.
    renames: Mapping[str, str] = field(default_factory=dict)
    #: The app's keys that hold secrets (links that sign in or reset, codes).
    secret_keys: tuple[str, ...] = ()
    #: Adds the message's own keys: ``extra(adapter, context, site_url) -> dict``.
    extra: Callable[..., dict[str, Any]] | None = None


def _activation(adapter, context, site_url) -> dict[str, Any]:
    return {"link_valid_days": allauth_settings.EMAIL_CONFIRMATION_EXPIRE_DAYS}


def _reset(adapter, context, site_url) -> dict[str, Any]:
    return {"link_valid_hours": reset_link_valid_hours()}


def _sign_in_code(adapter, context, site_url) -> dict[str, Any]:
    return {"code_valid_minutes": max(1, round(allauth_settings.LOGIN_BY_CODE_TIMEOUT / 60))}


def _security(view_name: str) -> Callable[..., dict[str, Any]]:
    """The keys of a security notice: when, from where, and the page to act on it."""

    def extra(adapter, context, site_url) -> dict[str, Any]:
        return {
            "changed_at": context.get("timestamp") or timezone.now(),
            "ip_address": context.get("ip", ""),
            "device": context.get("user_agent", ""),
            "security_url": site_url + _reverse_or_empty(view_name),
        }

    return extra


def _reverse_or_empty(view_name: str) -> str:
    try:
        return reverse(view_name)
    except NoReverseMatch:
        return "/"


_ACTIVATION = Message("account_activation", {"activate_url": "activation_url"},
                      ("activation_url", "code"), _activation)
_PASSWORD_CHANGED = Message("password_changed", extra=_security("account_change_password"))

#: allauth's template prefix -> the app's message. Unmapped prefixes go out as allauth
#: sends them (unknown_account, account_already_exists, email_deleted, the mfa notices,
#: password_reset_code), unless ``ALLAUTH_TEMPLATES`` maps them.
MESSAGES: dict[str, Message] = {
    "account/email/email_confirmation_signup": _ACTIVATION,
    "account/email/email_confirmation": _ACTIVATION,
    "account/email/password_reset_key": Message(
        "password_reset", {"password_reset_url": "reset_url"}, ("reset_url",), _reset),
    "account/email/login_code": Message("sign_in_code", secret_keys=("code",),
                                        extra=_sign_in_code),
    "account/email/password_changed": _PASSWORD_CHANGED,
    "account/email/password_set": _PASSWORD_CHANGED,
    "account/email/password_reset": _PASSWORD_CHANGED,
    "account/email/email_changed": Message(
        "email_changed", {"from_email": "old_email", "to_email": "new_email"},
        extra=_security("account_email")),
}

#: allauth's context keys that are secrets wherever they appear (a prefix mapped by the
#: ALLAUTH_TEMPLATES setting keeps allauth's names).
GENERIC_SECRETS = ("activate_url", "password_reset_url", "code")

#: allauth's context keys never copied: objects, and what the app's keys replace.
_NOT_COPIED = {"request", "user", "current_site", "email", "timestamp", "ip", "user_agent",
               "key", "uid", "reauthentication"}


class AccountAdapter(DefaultAccountAdapter):
    """allauth's account adapter whose emails go through ``transactional_mail.send()``."""

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        """Send allauth's message ``template_prefix`` to ``email`` with the app's template
        mapped to it; allauth's own mail when none is."""
        message = self.app_message(template_prefix)
        if message is None:
            return super().send_mail(template_prefix, email, context)
        # allauth keeps the current request in a context variable (its middleware sets it).
        request = context.get("request") or allauth_context.request
        app_context = self.app_context(message, email, context, request)
        secret_keys = [key for key in message.secret_keys if key in app_context]
        user = context.get("user")
        try:
            send(message.template_key, email, app_context, secret_keys=secret_keys,
                 language=translation.get_language(),
                 source=user if getattr(user, "pk", None) is not None else None)
        except TemplateNotFound:
            logger.warning("No %r template for allauth's %s: sent with allauth's own "
                           "templates. Add the template (manage.py "
                           "install_starter_templates) to send it through the outbox.",
                           message.template_key, template_prefix)
            return super().send_mail(template_prefix, email, context)
        return None

    def app_message(self, template_prefix: str) -> Message | None:
        """The app's message for allauth's ``template_prefix``: ``ALLAUTH_TEMPLATES``
        first (a template key: allauth's context keys, the generic secrets), then
        ``MESSAGES``."""
        extra = get_setting("ALLAUTH_TEMPLATES") or {}
        if template_prefix in extra:
            return Message(str(extra[template_prefix]), secret_keys=GENERIC_SECRETS)
        return MESSAGES.get(template_prefix)

    def app_context(self, message: Message, email: str, context: Mapping[str, Any],
                    request) -> dict[str, Any]:
        """allauth's ``context`` as the JSON context of the app's template: ``user``
        (``name``, ``email``), ``site_name``, ``site_url``, allauth's plain values (links
        and codes under the app's names) and the message's own keys."""
        site = get_current_site(request)
        scheme = "https" if request is not None and request.is_secure() else "http"
        site_url = f"{scheme}://{site.domain}"
        user = context.get("user")
        result: dict[str, Any] = {
            "user": {"name": display_name(user) if user is not None else email.partition("@")[0],
                     "email": email},
            "site_name": site.name,
            "site_url": site_url,
        }
        for name, value in context.items():
            if name not in _NOT_COPIED and isinstance(value, (str, int, float, bool)):
                result[message.renames.get(name, name)] = value
        if message.extra is not None:
            result.update(message.extra(self, context, site_url))
        return result

