"""Unsubscribe links: the signed per-email token, and the URLs and headers built from it.

A non-essential email carries a token that names it (its id, signed with the site's
``SECRET_KEY`` and a salt of its own, so no other signed value of the site passes for
one). Anyone holding the link may unsubscribe its recipient from its category or change
their preferences, without logging in (RFC 8058); a token that does not verify changes
nothing. The token does not expire: an old email's link keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from django.core import signing
from django.urls import NoReverseMatch, reverse

from .categories import Category
from .conf import get_setting

#: The salt of unsubscribe tokens: a value signed for anything else never verifies here.
TOKEN_SALT = "transactional_mail.unsubscribe"
#: Longest token the views try to verify (a real one is about 60 characters).
TOKEN_MAX_LENGTH = 200


def make_token(email_id: int) -> str:
    """The unsubscribe token of the email ``email_id``."""
    return signing.Signer(salt=TOKEN_SALT).sign(str(int(email_id)))


def read_token(token: str) -> int | None:
    """The email id ``token`` was made for, or None when it is forged, tampered with or
    signed for something else."""
    if not isinstance(token, str) or len(token) > TOKEN_MAX_LENGTH:
        return None
    try:
        value = signing.Signer(salt=TOKEN_SALT).unsign(token)
    except signing.BadSignature:
        return None
    return int(value) if value.isdigit() and 0 < int(value) < 2**63 else None


@dataclass(frozen=True)
class Links:
    """An email's unsubscribe and preferences URLs ("" each for essential mail)."""

    unsubscribe_url: str = ""
    preferences_url: str = ""


def links(email_id: int, category: Category) -> Links:
    """The absolute links of a non-essential email; empty ones when the category is
    essential or ``BASE_URL`` is not set."""
    base_url = (get_setting("BASE_URL") or "").rstrip("/")
    if category.essential or not base_url:
        return Links()
    token = make_token(email_id)
    return Links(
        unsubscribe_url=base_url + reverse("transactional_mail:unsubscribe", args=[token]),
        preferences_url=base_url + reverse("transactional_mail:preferences", args=[token]),
    )


def preview_links(category: Category) -> Links:
    """Stand-ins for a non-essential email's links in the admin's previews, so a layout
    shows its unsubscribe line there as the email will. Their token opens nothing."""
    if category.essential:
        return Links()
    try:
        unsubscribe = reverse("transactional_mail:unsubscribe", args=["preview"])
        preferences = reverse("transactional_mail:preferences", args=["preview"])
    except NoReverseMatch:  # the site has not included the app's URLs (check W020 says)
        unsubscribe = preferences = "#"
    base_url = (get_setting("BASE_URL") or "").rstrip("/")
    return Links(unsubscribe_url=base_url + unsubscribe, preferences_url=base_url + preferences)


def list_headers(email_id: int, category: Category, email_links: Links) -> dict[str, str]:
    """The ``List-Unsubscribe``, ``List-Unsubscribe-Post`` and ``List-Help`` headers of
    an email.

    Essential mail gets no List-Unsubscribe (the person cannot opt out of it); every
    email gets List-Help when ``LIST_HELP`` is set. The one-click POST header goes only
    with an https URL: RFC 8058 allows no other.
    """
    headers = {}
    help_target = get_setting("LIST_HELP")
    if help_target:
        headers["List-Help"] = f"<{help_target}>"
    if category.essential:
        return headers
    targets = []
    if email_links.unsubscribe_url:
        targets.append(f"<{email_links.unsubscribe_url}>")
    mailto = get_setting("UNSUBSCRIBE_MAILTO")
    if mailto:
        # The token in the subject tells whoever processes the mailbox which email (and so
        # which address and category) the request is about.
        subject = quote(f"unsubscribe {make_token(email_id)}")
        targets.append(f"<mailto:{mailto}?subject={subject}>")
    if targets:
        headers["List-Unsubscribe"] = ", ".join(targets)
    if email_links.unsubscribe_url.startswith("https://"):
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers
