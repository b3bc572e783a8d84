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

allauth's password reset is moved off the request path as ``auth.PasswordResetForm``
moves Django's: ``ResetPasswordForm`` (which allauth's ``PasswordResetView`` uses while
this adapter is ``ACCOUNT_ADAPTER``) queues one small task for any address, and the
worker looks the accounts up and sends the reset mail, or allauth's "unknown account"
mail: the request for an address with an account does the same work as for one without.

Needs the ``allauth`` extra: ``pip install "django-transactional-mail[allauth]"``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import shared_task
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.sites.shortcuts import get_current_site
from django.db import transaction
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from .exceptions import ConfigurationError, TemplateNotFound

try:
    from allauth.account import app_settings as allauth_settings
    from allauth.account import forms as allauth_forms
    from allauth.account.adapter import DefaultAccountAdapter, get_adapter
    from allauth.account.internal.flows import password_reset as reset_flow
    from allauth.account.internal.userkit import filter_users_by_email
    from allauth.core import context as allauth_context
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    raise ConfigurationError(
        "transactional_mail.allauth needs django-allauth. Install the extra: "
        'pip install "django-transactional-mail[allauth]".'
    ) from err

from .api import send
from .auth import display_name, publish_password_reset, reset_link_valid_hours
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



class ResetPasswordForm(allauth_forms.ResetPasswordForm):
    """allauth's password reset form whose work happens in a worker.

    allauth's form looks the accounts up, makes a token and sends the mail in the
    request for an address with an account, and sends nothing (or its "unknown account"
    mail, through Django's backend) for one without: the time tells who has an account.
    This one validates the address and queues one task (``send_allauth_password_reset``)
    whatever the address; the worker runs allauth's own reset flow. allauth's
    ``PasswordResetView`` uses it while ``AccountAdapter`` is ``ACCOUNT_ADAPTER``
    (``sync_reset_password_form``); a site with its own form subclasses this one.
    """

    def clean_email(self) -> str:
        """The address, cleaned by the adapter; looked up only when allauth is set to
        tell an unknown address (``ACCOUNT_PREVENT_ENUMERATION = False``)."""
        if not allauth_settings.PREVENT_ENUMERATION:
            return super().clean_email()
        address = self.cleaned_data["email"]
        get_adapter().clean_email(address.lower())  # the adapter's checks may refuse it
        self.users = []  # the worker looks them up
        return address

    def save(self, request: HttpRequest, **kwargs) -> str:
        """Queue the reset for the address, known or not (published when the transaction
        commits); allauth's own save for a reset by code, whose state lives in the
        session of this request."""
        if allauth_settings.PASSWORD_RESET_BY_CODE_ENABLED:
            if allauth_settings.PREVENT_ENUMERATION:
                self.users = filter_users_by_email(self.cleaned_data["email"].lower(),
                                                   is_active=True, prefer_verified=True,
                                                   for_login=True)
            return super().save(request, **kwargs)
        address = self.cleaned_data["email"]
        options = {"host": request.get_host(), "secure": request.is_secure(),
                   "language": translation.get_language() or ""}
        transaction.on_commit(
            lambda: publish_password_reset(address, options, send_allauth_password_reset))
        return address


class WorkerRequest(HttpRequest):
    """The request allauth's reset flow reads in the worker (its host and scheme build
    the links), rebuilt from what the form's request said; an anonymous user."""

    def __init__(self, host: str, secure: bool) -> None:
        super().__init__()
        self.META["HTTP_HOST"] = host
        self.secure = secure
        self.user = AnonymousUser()

    def _get_scheme(self) -> str:
        return "https" if self.secure else "http"


@shared_task(name="transactional_mail.send_allauth_password_reset", ignore_result=True)
def send_allauth_password_reset(address: str, options: dict[str, Any]) -> int:
    """Run allauth's reset flow for ``address`` in the worker: the reset mail of each of
    its accounts (through ``AccountAdapter.send_mail``, so the outbox), or allauth's
    "unknown account" mail when ``ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS`` is on. Returns how
    many accounts it found."""
    request = WorkerRequest(options["host"], options["secure"])
    users = filter_users_by_email(address.lower(), is_active=True, prefer_verified=True,
                                  for_login=True)
    with allauth_context.request_context(request), \
            translation.override(options["language"] or None):
        reset_flow.request_password_reset(request, address, users, None)
    return len(users)


def adapter_is_ours() -> bool:
    """Whether ``ACCOUNT_ADAPTER`` names ``AccountAdapter`` (or a subclass of it)."""
    path = getattr(settings, "ACCOUNT_ADAPTER", "")
    try:
        adapter = import_string(path) if path else None
    except ImportError:
        return False
    return isinstance(adapter, type) and issubclass(adapter, AccountAdapter)


def sync_reset_password_form(**kwargs) -> None:
    """Make allauth's ``PasswordResetView`` use ``ResetPasswordForm`` while
    ``ACCOUNT_ADAPTER`` is ``AccountAdapter`` (and give it back allauth's form when it is
    not); a form set by ``ACCOUNT_FORMS["reset_password"]`` wins, as in allauth.

    Called by ``ready()`` and whenever settings change (``override_settings``).
    """
    from allauth.account.views import PasswordResetView

    if kwargs.get("setting") not in (None, "ACCOUNT_ADAPTER"):
        return
    current = PasswordResetView.form_class
    if adapter_is_ours():
        if current is allauth_forms.ResetPasswordForm:
            PasswordResetView.form_class = ResetPasswordForm
    elif current is ResetPasswordForm:
        PasswordResetView.form_class = allauth_forms.ResetPasswordForm
