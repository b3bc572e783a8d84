"""The public unsubscribe and preferences pages that non-essential mail links to.

No login: the signed token in the link (``subscriptions.make_token``) is the authority,
so the views are exempt from CSRF (mail clients' one-click POSTs carry no cookie, RFC
8058) and answer a token that does not verify with 400, changing nothing. A GET never
changes anything (link scanners and prefetchers follow GETs); a POST unsubscribes, and
doing it again changes nothing more. The pages speak the email's language.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from . import stats
from .categories import Category, declared_categories, get_category
from .models import (
    Email,
    Suppression,
    SuppressionChange,
    SuppressionHistory,
    SuppressionReason,
)
from .models.suppression import normalize_address
from .subscriptions import read_token

logger = logging.getLogger(__name__)

#: The note each change made from these pages leaves in the suppression history.
_NOTE = "By the recipient, on the {page} page of email {email_id}."


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a page with a button (nothing changes). POST: unsubscribe the email's
    recipients from its category at once (RFC 8058 one-click)."""
    email = _email(token)
    if email is None:
        return _invalid(request)
    category = get_category(email.category)
    with _language(email):
        context = {"token": token, "category": category,
                   "addresses": [_masked(a) for a in _addresses(email)]}
        if category.essential:
            return _page(request, "essential", context)
        if request.method == "POST":
            for address in _addresses(email):
                _unsubscribe(address, category.key, email, page="unsubscribe")
            return _page(request, "unsubscribed", context)
        return _page(request, "unsubscribe", context)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    """Which non-essential categories the email's recipients get; a POST saves the
    choice (the categories ticked are subscribed, the others unsubscribed)."""
    email = _email(token)
    if email is None:
        return _invalid(request)
    addresses = _addresses(email)
    categories = [c for c in declared_categories().values() if not c.essential]
    saved = False
    if request.method == "POST":
        chosen = set(request.POST.getlist("subscribed"))
        for address in addresses:
            _save_preferences(address, categories, chosen, email)
        saved = True
    unsubscribed = set(
        Suppression.objects.filter(address__in=addresses, reason=SuppressionReason.UNSUBSCRIBE)
        .values_list("category", flat=True)
    )
    blocked = Suppression.objects.filter(address__in=addresses, category="").exclude(
        reason=SuppressionReason.UNSUBSCRIBE).exists()
    with _language(email):
        return _page(request, "preferences", {
            "token": token,
            "addresses": [_masked(a) for a in addresses],
            "choices": [(c, "" not in unsubscribed and c.key not in unsubscribed)
                        for c in categories],
            "saved": saved,
            "blocked": blocked,
        })


def _email(token: str) -> Email | None:
    """The email the token was made for, if it verifies and the email still has a
    recipient (an erased row has none: its link no longer works)."""
    email_id = read_token(token)
    email = None if email_id is None else Email.objects.filter(pk=email_id).first()
    return email if email is not None and _addresses(email) else None


def _addresses(email: Email) -> list[str]:
    """The email's ``to`` addresses, normalised (an erased row has none)."""
    addresses = {normalize_address(address) for address in email.to}
    return sorted(address for address in addresses if "@" in address)


def _masked(address: str) -> str:
    """``a***@example.com``: enough for the person to recognise, little for anyone the
    link was forwarded to."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


@contextlib.contextmanager
def _language(email: Email) -> Iterator[None]:
    """The email's language, when the site has it (else the request's)."""
    try:
        language = translation.get_supported_language_variant(email.language or "")
    except LookupError:
        yield
        return
    with translation.override(language):
        yield


def _unsubscribe(address: str, category: str, email: Email, *, page: str) -> None:
    """Suppress ``address`` for ``category`` (once: a replay adds nothing)."""
    try:
        with transaction.atomic():
            _, created = Suppression.objects.get_or_create(
                address=address, category=category,
                defaults={"reason": SuppressionReason.UNSUBSCRIBE, "email": email,
                          "source": f"{page} page"},
            )
            if created:
                _history(address, category, SuppressionChange.ADDED, email, page)
                stats.record_unsubscribe(email)
    except IntegrityError:
        pass  # a concurrent request (a scanner and the person) added it first


def _save_preferences(address: str, categories: list[Category], chosen: set[str],
                      email: Email) -> None:
    with transaction.atomic():
        everything = Suppression.objects.filter(
            address=address, category="", reason=SuppressionReason.UNSUBSCRIBE).first()
        if everything is not None and categories:
            # An unsubscribe from all non-essential mail (an ESP's): split it into one per
            # category, so the categories ticked can be re-subscribed one by one.
            everything.delete()
            _history(address, "", SuppressionChange.REMOVED, email, "preferences")
        for category in categories:
            if category.key in chosen:
                removed, _ = Suppression.objects.filter(
                    address=address, category=category.key,
                    reason=SuppressionReason.UNSUBSCRIBE).delete()
                if removed:
                    _history(address, category.key, SuppressionChange.REMOVED, email,
                             "preferences")
            else:
                _unsubscribe(address, category.key, email, page="preferences")


def _history(address: str, category: str, change: str, email: Email, page: str) -> None:
    SuppressionHistory.objects.create(
        address=address, category=category, change=change,
        suppression_reason=SuppressionReason.UNSUBSCRIBE,
        note=_NOTE.format(page=page, email_id=email.pk),
    )


def _page(request: HttpRequest, name: str, context: dict, status: int = 200) -> HttpResponse:
    response = render(request, f"transactional_mail/subscriptions/{name}.html", context,
                      status=status)
    # The token in the URL is a key: keep it out of caches, search engines and the
    # Referer header of any link on the page.
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _invalid(request: HttpRequest) -> HttpResponse:
    logger.info("Unsubscribe link refused: its token does not verify.")
    return _page(request, "invalid", {}, status=400)
