"""A layout rendered with its brand values: the HTML before and after its content slot.

A layout is the branded shell around every template. Its ``html`` and ``css`` may use the
brand variables ``{{ brand.logo_url }}``, ``{{ brand.primary_color }}``,
``{{ brand.background_color }}``, ``{{ brand.text_color }}``, ``{{ brand.font_family }}``,
``{{ brand.footer_address }}``, ``{{ brand.legal_text }}``, ``{{ brand.help_url }}``,
``{{ brand.name }}`` and ``{{ brand.footer_html }}`` (the layout's footer, itself a
template of the other brand values, inserted as HTML); ``{{ brand.language }}`` and
``{{ brand.direction }}`` become each email's language and text direction (``ltr``/``rtl``)
when it is rendered, for ``<html lang dir>``, and ``{{ brand.preheader }}`` its preheader
(the hidden preview line: the template's own, else the context's ``preheader``; empty in the
subject and the text part). Layouts
are rendered once per layout revision with those values only, so per-email data belongs
in the template (in a layout, ``{{ order }}`` renders empty). The content slot
``{{ content }}`` (exactly once, outside any block tag) is then replaced by the template's
*source*, and ``layout.css`` (rendered without autoescaping) goes into a ``<style>``
element at the end of the head. Templates do not see ``brand``: a context key of that name
stays the caller's.

``{{ unsubscribe_url }}`` and ``{{ preferences_url }}`` (in the layout's html and footer)
are each email's own links for non-essential mail, and empty for essential mail: a layout
is rendered in two variants per revision, with markers :func:`localize` replaces by the
email's links, and with empty values, so ``{% if unsubscribe_url %}`` holds in both.
"""

from __future__ import annotations

import re
import secrets
from types import MappingProxyType
from typing import Any

from django.template import Context
from django.utils.html import escape
from django.utils.safestring import SafeString

from ..exceptions import RenderError
from .budget import render_budget
from .context import FrozenDict
from .engine import RestrictedTemplate

_BRAND_FIELDS = (
    "name", "logo_url", "primary_color", "background_color", "text_color", "font_family",
    "footer_address", "legal_text", "help_url",
)
_LAYOUT_FIELDS = ("html", "css", "footer_html", *_BRAND_FIELDS)
#: The brand values a layout may hold per language (``layout.translations``).
TRANSLATABLE_FIELDS = ("footer_html", "footer_address", "legal_text", "help_url")
# The names a layout's parts render under (in errors), and the field each comes from.
_LAYOUT_PARTS = MappingProxyType(
    {"layout html": "html", "layout css": "css", "layout footer": "footer_html"}
)


#: What ``{{ brand.language }}``, ``{{ brand.direction }}`` and ``{{ brand.preheader }}``
#: render to in a layout. The layout renders once per revision, so :func:`localize` puts
#: each email's language (``fr``), direction (``ltr``/``rtl``) and preheader (the template's
#: or the context's, escaped) in their place when the email is rendered.
LANGUAGE_MARKER = "tm-email-language-3f9c"
DIRECTION_MARKER = "tm-email-direction-3f9c"
PREHEADER_MARKER = "tm-email-preheader-3f9c"
#: What ``{{ unsubscribe_url }}`` and ``{{ preferences_url }}`` render to in the variant
#: of a layout for non-essential mail (:func:`with_subscription_links`).
UNSUBSCRIBE_MARKER = "tm-unsubscribe-url-3f9c"
PREFERENCES_MARKER = "tm-preferences-url-3f9c"


def localize(rendered: str, *, language: str, bidi: bool, preheader: str = "",
             unsubscribe_url: str = "", preferences_url: str = "", html: bool = True) -> str:
    """Put the email's language, direction, preheader and links where the layout used
    markers (the links escaped for HTML unless ``html`` is False: the text part)."""
    quote = escape if html else str
    return (
        rendered.replace(LANGUAGE_MARKER, language)
        .replace(DIRECTION_MARKER, "rtl" if bidi else "ltr")
        .replace(PREHEADER_MARKER, escape(" ".join(preheader.split())))
        .replace(UNSUBSCRIBE_MARKER, quote(unsubscribe_url))
        .replace(PREFERENCES_MARKER, quote(preferences_url))
    )


class _LinkedLayout:
    """A layout (or its translation) rendered for non-essential mail: its
    ``{{ unsubscribe_url }}`` and ``{{ preferences_url }}`` are markers."""

    subscription_links = True

    def __init__(self, layout: Any) -> None:
        self._layout = layout

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_layout"], name)


def with_subscription_links(layout: Any) -> Any:
    """``layout`` as non-essential mail renders it (None stays None)."""
    return None if layout is None else _LinkedLayout(layout)


class TranslatedLayout:
    """A layout as an email in ``language`` sees it: the values of its translation for
    that language in place of the default ones (a blank translated value keeps the
    default). Everything else is the layout's own."""

    def __init__(self, layout: Any, language: str, values: dict[str, str]) -> None:
        self._layout = layout
        self.translation_language = language
        self._values = {name: value for name, value in values.items()
                        if name in TRANSLATABLE_FIELDS and isinstance(value, str)
                        and value.strip()}

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        return getattr(self.__dict__["_layout"], name)


def translated(layout: Any, language: str | None) -> Any:
    """``layout`` with its translation for ``language`` (``fr-ca``, else ``fr``) applied,
    or ``layout`` itself when it has none."""
    translations = getattr(layout, "translations", None)
    if not language or not isinstance(translations, dict) or not translations:
        return layout
    language = language.lower()
    for code in dict.fromkeys((language, language.split("-")[0])):
        values = translations.get(code)
        if isinstance(values, dict) and values:
            return TranslatedLayout(layout, code, values)
    return layout


def _brand_context(layout: Any) -> dict[str, Any]:
    linked = getattr(layout, "subscription_links", False)
    links = {"unsubscribe_url": UNSUBSCRIBE_MARKER if linked else "",
             "preferences_url": PREFERENCES_MARKER if linked else ""}
    brand: dict[str, Any] = {
        field: str(getattr(layout, field, "") or "") for field in _BRAND_FIELDS
    }
    brand.update(language=LANGUAGE_MARKER, direction=DIRECTION_MARKER,
                 preheader=PREHEADER_MARKER)
    # The footer is a staff-written template too (it may use the other brand values);
    # its output is HTML as trusted as the layout's own, so it is not escaped again.
    footer = getattr(layout, "footer_html", "") or ""
    brand["footer_html"] = SafeString(
        _render_brand(
            footer,
            {"brand": FrozenDict(dict(brand, footer_html="")), **links},
            autoescape=True,
            name="layout footer",
        )
        if footer.strip()
        else ""
    )
    # Read-only, like the context of a template: a layout cannot clear its own values.
    return {"brand": FrozenDict(brand), **links}


def _render_brand(source: str, context: dict[str, Any], *, autoescape: bool, name: str) -> str:
    return RestrictedTemplate(source, name).render(Context(context, autoescape=autoescape))


def _style_element(css: str) -> str:
    # "</" would end the element early; "<\/" means the same to CSS.
    return '<style type="text/css">\n' + css.replace("</", "<\\/") + "\n</style>"


_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_BODY_START = re.compile(r"<body[\s>]", re.IGNORECASE)


def _render_layout(layout: Any) -> tuple[str, str]:
    """Render a layout with its brand values; return the HTML before and after the slot.

    The layout (footer, HTML and CSS) renders under a budget of its own, once per layout
    revision and process.
    """
    with render_budget():
        return _render_layout_parts(layout)


def _render_layout_parts(layout: Any) -> tuple[str, str]:
    marker = f"tmslot{secrets.token_hex(8)}"
    context = _brand_context(layout)
    html = _render_brand(
        getattr(layout, "html", "") or "",
        {**context, "content": SafeString(marker)},
        autoescape=True,
        name="layout html",
    )
    if html.count(marker) != 1:
        raise RenderError(
            f"Layout {getattr(layout, 'pk', None)} must render the content slot "
            "{{ content }} exactly once."
        )
    before, after = html.split(marker)
    css = _render_brand(
        getattr(layout, "css", "") or "", context, autoescape=False, name="layout css"
    )
    if css.strip():
        style = _style_element(css)
        head_end = _HEAD_END.search(before)
        body_start = _BODY_START.search(before)
        if head_end:
            before = before[: head_end.start()] + style + before[head_end.start() :]
        elif body_start:
            before = before[: body_start.start()] + style + before[body_start.start() :]
        else:
            before = style + before
    return before, after
