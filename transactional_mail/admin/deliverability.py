"""Deliverability lint of a template revision, shown as warnings when it is published.

The draft is rendered with its sample context in its layout (``rendering.preview``): no
text part of its own, HTML over Gmail's clipping size, images without ``alt``, relative
or ``http:`` links. Then its category: a non-essential one needs the unsubscribe link in
the layout (or the template), and a trigger sending it from another domain than the
category's sender splits the reputation the category keeps. See docs/staff-guide.md.
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Any

from django.utils.translation import gettext

from ..categories import Category, get_category
from ..exceptions import ConfigurationError
from ..rendering.layout import translated
from ..rendering.preview import preview_email
from ..triggers.definitions import all_triggers
from ..triggers.syntax import is_literal_address

#: The preview's warnings this lint repeats (the missing variables have their own warning).
RENDERED_CODES = ("no_text", "derived_text", "gmail_clipping", "image_alt", "insecure_link",
                  "relative_link")
#: ``{{ unsubscribe_url }}``, with filters or not.
UNSUBSCRIBE_VARIABLE = re.compile(r"\{\{\s*unsubscribe_url\b")
#: Stand-ins for the links the app fills in for each email, so that a sample context
#: without them does not warn of empty links or missing variables.
LINK_PLACEHOLDERS = {"unsubscribe_url": "https://example.com/mail/unsubscribe/",
                     "preferences_url": "https://example.com/mail/preferences/"}
#: The app's per-email links in a layout's source, with any filters.
_LINK_VARIABLE = re.compile(r"\{\{\s*(unsubscribe_url|preferences_url)\b[^}]*\}\}")


class _LintedLayout:
    """A layout revision whose per-email links are the placeholders: a layout is rendered
    once with its brand values only, so the variables would render as empty links.

    Its translation is applied already, and ``pk`` is None so the render is not cached.
    """

    pk = None
    translations: dict = {}

    def __init__(self, layout: Any) -> None:
        self._layout = layout

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._layout, name)
        if name in ("html", "footer_html") and isinstance(value, str):
            return _LINK_VARIABLE.sub(lambda match: LINK_PLACEHOLDERS[match[1]], value)
        return value


def deliverability_warnings(template: Any) -> list[str]:
    """What may keep ``template``'s current revision out of inboxes, for staff."""
    revision = template.current_revision
    if revision is None:
        return []
    layout = revision.layout.published_revision if revision.layout_id else None
    layout = translated(layout, template.language) if layout is not None else None
    found = _rendered(template, revision, layout)
    category_key = revision.category
    category = get_category(category_key)
    if not category.essential and not any(
        UNSUBSCRIBE_VARIABLE.search(source or "")
        for source in (revision.html, getattr(layout, "html", ""),
                       getattr(layout, "footer_html", ""))
    ):
        found.append(gettext(
            "its category %(category)s is not essential, but neither its layout (HTML or "
            "footer) nor the template shows {{ unsubscribe_url }}: people must be able to "
            "unsubscribe from the email itself. Add the link to the layout's footer."
        ) % {"category": category_key})
    found.extend(_foreign_senders(template.key, category_key, category))
    prefix = gettext("%(obj)s: revision #%(number)s: ") % {"obj": template,
                                                          "number": revision.number}
    return [prefix + message for message in found]


def _rendered(template: Any, revision: Any, layout: Any) -> list[str]:
    """The preview's warnings about the revision rendered with its sample context."""
    sample = template.sample_context if isinstance(template.sample_context, dict) else {}
    preview = preview_email(
        revision.subject, revision.html, revision.text,
        _LintedLayout(layout) if layout is not None else None,
        {**LINK_PLACEHOLDERS, **sample}, language=template.language or None,
        preheader=revision.preheader)
    if preview.errors:
        return [gettext("it does not render with its sample context, so its HTML could "
                        "not be checked: %(error)s") % {"error": preview.errors[0].message}]
    return [warning.message for warning in preview.warnings if warning.code in RENDERED_CODES]


def _domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2].lower()


def _foreign_senders(template_key: str, category_key: str,
                     category: Category) -> list[str]:
    """A warning per trigger of ``template_key`` whose literal sender is on another domain
    than the category's ``from_email``."""
    expected = _domain(category.from_email)
    if not expected:
        return []
    try:
        triggers = all_triggers()
    except ConfigurationError:  # reported by ``manage.py check``
        return []
    found = []
    for trigger in triggers.values():
        senders = trigger.definition.get("from_email") if trigger.template == template_key \
            else None
        for sender in senders if isinstance(senders, (list, tuple)) else [senders]:
            if is_literal_address(sender) and _domain(sender) != expected:
                found.append(gettext(
                    "trigger %(trigger)s sends it from %(sender)s, but its category "
                    "%(category)s sends from the domain %(domain)s: mailbox providers rate "
                    "each domain separately. Use an address on %(domain)s, or remove the "
                    "trigger's from_email.") % {"trigger": trigger.key, "sender": sender,
                                                "category": category_key, "domain": expected})
    return found
