"""Django's password reset through the outbox: ``PasswordResetForm``, a drop-in.

``django.contrib.auth``'s form looks the address up and sends its mail in the request:
the mail bypasses the outbox, the log and the staff's templates, and an address with an
account costs the request a token and an SMTP conversation that an unknown address does
not, which tells an attacker who has an account. This form does the same work for every
address on the request path: it validates the address and queues one small task. The
worker looks the users up and calls ``send()`` for each with the ``password_reset``
template, the reset link marked secret (see ``transactional_mail.redaction``).

Use it as ``PasswordResetView.form_class``, or set ``TRANSACTIONAL_MAIL[
"USE_PASSWORD_RESET_FORM"] = True`` to make Django's own ``PasswordResetView`` (the one
``django.contrib.auth.urls`` routes to) use it. See docs/accounts.md.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.contrib.sites.shortcuts import get_current_site
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.module_loading import import_string

from . import publishing
from .api import record_unsent, send
from .conf import get_setting
from .exceptions import ConfigurationError
from .snapshots import json_snapshot, resolve_path
from .tasks import broker_producer

logger = logging.getLogger(__name__)

#: The dotted path of Django's default token generator, which the worker imports.
DEFAULT_TOKEN_GENERATOR = "django.contrib.auth.tokens.default_token_generator"


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's password reset form, whose mail goes through the outbox.

    ``save()`` queues one task per request, whatever the address, so a request for an
    unknown address does the same work as one for a known address and gets the same
    response. The worker (``send_password_reset``) calls ``get_users()`` and
    ``queue_email()``; override them in a subclass as with Django's form (the worker
    uses the subclass: its dotted path travels in the task).
    """

    #: The template the email is rendered from.
    template_key = "password_reset"
    #: The URL name of the page the link opens (Django's ``PasswordResetConfirmView``).
    reset_url_name = "password_reset_confirm"
    #: The dotted path of the token generator the worker makes the link's token with.
    token_generator = DEFAULT_TOKEN_GENERATOR

    def save(
        self,
        domain_override=None,
        subject_template_name=None,
        email_template_name=None,
        use_https=False,
        token_generator=default_token_generator,
        from_email=None,
        request=None,
        html_email_template_name=None,
        extra_email_context=None,
    ) -> None:
        """Queue the reset email's task for the address, known or not.

        Takes the arguments of Django's ``PasswordResetForm.save()``; the templates
        named by ``*_template_name`` are not used (the app's ``password_reset``
        template is). The task is published when the transaction commits.
        """
        if token_generator is not import_string(self.token_generator):
            raise ConfigurationError(
                f"{type(self).__name__} makes the reset token in a worker, with "
                f"{self.token_generator}; the view passed another token generator. Set "
                "token_generator on a subclass of the form to the dotted path of yours."
            )
        if domain_override:
            site_name = domain = domain_override
        else:
            site = get_current_site(request)
            site_name, domain = site.name, site.domain
        options = {
            "form": f"{type(self).__module__}.{type(self).__qualname__}",
            "domain": domain,
            "site_name": site_name,
            "use_https": bool(use_https),
            "language": translation.get_language() or "",
            "from_email": from_email,
            "extra_context": json_snapshot(extra_email_context or {}),
        }
        address = self.cleaned_data["email"]
        transaction.on_commit(lambda: publish_password_reset(address, options))

    def queue_email(self, user, options: dict[str, Any]):
        """Queue the reset email of ``user`` with ``send()``; return its ``Email`` row."""
        address = getattr(user, get_user_model().get_email_field_name())
        language = self.user_language(user) or options["language"] or None
        site_url = f"{'https' if options['use_https'] else 'http'}://{options['domain']}"
        token = import_string(self.token_generator).make_token(user)
        uid = urlsafe_base64_encode(force_bytes(user._meta.pk.value_to_string(user)))
        with translation.override(language):  # i18n_patterns: the link in her language
            path = reverse(self.reset_url_name, kwargs={"uidb64": uid, "token": token})
        context = {
            "user": {"name": display_name(user), "email": address},
            "reset_url": site_url + path,
            "link_valid_hours": reset_link_valid_hours(),
            "site_name": options["site_name"],
            "site_url": site_url,
            **options["extra_context"],
        }
        return send(self.template_key, address, context, secret_keys=["reset_url"],
                    language=language, from_email=options["from_email"], source=user)

    def user_language(self, user) -> str | None:
        """The language of ``user``'s email: the attribute ``PASSWORD_RESET_LANGUAGE``
        names (e.g. ``"profile.language"``), or None for the request's language (also
        when the user has no such related object, or it is blank)."""
        path = get_setting("PASSWORD_RESET_LANGUAGE")
        if not path:
            return None
        try:
            return resolve_path(user, path) or None
        except ObjectDoesNotExist:  # a one-to-one the user does not have (no profile)
            return None


def reset_link_valid_hours() -> int:
    """How long a reset link is valid, in whole hours (at least 1): Django's tokens (and
    allauth's) expire after ``PASSWORD_RESET_TIMEOUT`` seconds."""
    return max(1, round(settings.PASSWORD_RESET_TIMEOUT / 3600))


def display_name(user) -> str:
    """The name an email greets ``user`` by: the full name, else the username."""
    full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return (full_name or "").strip() or user.get_username()


def publish_password_reset(address: str, options: dict[str, Any], task=None) -> None:
    """Publish ``task`` (``send_password_reset`` by default) for ``address``; log, never
    raise, when the broker is down (the response must not tell; the person asks again)."""
    task = task or send_password_reset
    try:
        with broker_producer(task.app) as producer:
            publishing.publish(task, (address, options), producer=producer,
                               queue=get_setting("QUEUE"))
    except Exception as err:
        logger.error("Could not queue a password reset (%s: %s; the broker unreachable?).",
                     type(err).__name__, err, exc_info=True)


@shared_task(name="transactional_mail.send_password_reset", ignore_result=True)
def send_password_reset(address: str, options: dict[str, Any]) -> int:
    """Queue the reset email of each account of ``address``; return how many (0 for an
    address without an account: nothing is sent, nothing is logged).

    An account whose email cannot be queued (no ``password_reset`` template yet, an
    address ``send()`` refuses) gets a failed row in the send log with the reason, as a
    trigger's would, and the others are still queued.
    """
    form_class = import_string(options["form"])
    if not (isinstance(form_class, type) and issubclass(form_class, PasswordResetForm)):
        raise ConfigurationError(f"{options['form']} is not a PasswordResetForm.")
    form = form_class()
    queued = 0
    for user in form.get_users(address):
        try:
            form.queue_email(user, options)
        except Exception as err:
            logger.exception("Password reset of user %s could not be queued", user.pk)
            record_unsent(form.template_key, f"Password reset could not be queued: "
                          f"{type(err).__name__}: {err}", to=[address], source=user)
            continue
        queued += 1
    return queued


def sync_password_reset_form(**kwargs) -> None:
    """Make Django's ``PasswordResetView`` use ``PasswordResetForm`` while
    ``USE_PASSWORD_RESET_FORM`` is on (and give it back Django's form when it is turned
    off); a view whose form a site set itself is left alone.

    Called by ``ready()`` and whenever settings change (``override_settings``).
    """
    from django.contrib.auth.views import PasswordResetView

    if kwargs.get("setting") not in (None, "TRANSACTIONAL_MAIL"):
        return
    current = PasswordResetView.form_class
    if get_setting("USE_PASSWORD_RESET_FORM"):
        if current is auth_forms.PasswordResetForm:
            PasswordResetView.form_class = PasswordResetForm
    elif current is PasswordResetForm:
        PasswordResetView.form_class = auth_forms.PasswordResetForm
