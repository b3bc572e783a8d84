"""The preview of an unsaved layout around a sample template, in light and dark mode.

Pure, like the rest of the package: the admin hands it the layout's fields as typed (a
mapping of strings), optionally a template's sources and sample context, and gets back a
:class:`LayoutPreview`: the email rendered by
:func:`~transactional_mail.rendering.render_email` (the worker's renderer, under the same
budget) around :data:`SAMPLE_HTML` (a heading, a paragraph, a button and a table) or the
template given, the same HTML with its dark-mode rules turned on (:func:`dark_mode`), or
the errors with their field and line.

Dark mode cannot be forced on an iframe (``prefers-color-scheme`` follows the viewer's
system), so :func:`dark_mode` rewrites the rendered HTML: every ``prefers-color-scheme:
dark`` media condition becomes one that is always true, every ``prefers-color-scheme:
light`` one that is never true, and the document declares ``<meta name="color-scheme"
content="dark">`` (a dark canvas and form controls), which is what a dark-mode mail client
that honours the layout's rules shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from ..exceptions import RenderError, RenderLimitExceeded
from .brand import logo_data_uri, validate_css_color, validate_font_stack
from .compose import render_email
from .layout import _LAYOUT_PARTS
from .validation import (
    _Draft,
    translation_problems,
    validate_css_source,
    validate_html_source,
    validate_layout_budget,
    validate_layout_source,
)

__all__ = [
    "SAMPLE_CONTEXT",
    "SAMPLE_HTML",
    "SAMPLE_SUBJECT",
    "LayoutDraft",
    "LayoutPreview",
    "dark_mode",
    "preview_layout",
]

#: The built-in sample content: what most emails hold, to see the layout's styles on.
SAMPLE_SUBJECT = "Your order {{ order.number }} is confirmed"
SAMPLE_HTML = """<h1>Thanks for your order, {{ customer.name }}!</h1>
<p>We have received order <strong>{{ order.number }}</strong> and will let you know when it
ships. You can follow it from your account at any time.</p>
<p><a class="button" href="{{ order.url }}">View your order</a></p>
<table role="presentation" width="100%" cellpadding="6" cellspacing="0" border="0">
<tr><th align="left">Item</th><th align="right">Qty</th><th align="right">Price</th></tr>
{% for item in order.items %}<tr><td>{{ item.name }}</td><td align="right">{{ item.quantity }}</td>
<td align="right">{{ item.price }}</td></tr>
{% endfor %}<tr><td colspan="2"><strong>Total</strong></td>
<td align="right"><strong>{{ order.total }}</strong></td></tr>
</table>
<p>Questions? Just reply to this email.</p>"""
SAMPLE_CONTEXT: Mapping[str, Any] = {
    "preheader": "Order A-1001 is confirmed: here is what happens next.",
    "customer": {"name": "Ann"},
    "order": {
        "number": "A-1001",
        "url": "https://shop.example.com/orders/A-1001",
        "items": [
            {"name": "Linen shirt", "quantity": 1, "price": "€49.00"},
            {"name": "Canvas tote bag", "quantity": 2, "price": "€24.00"},
        ],
        "total": "€97.00",
    },
}

#: The layout fields a preview reads, with the value a missing one takes.
LAYOUT_FIELDS = (
    "name", "html", "css", "logo_url", "primary_color", "background_color", "text_color",
    "font_family", "footer_html", "footer_address", "legal_text", "help_url",
)
_COLOR_FIELDS = ("primary_color", "background_color", "text_color")
_URL_FIELDS = ("logo_url", "help_url")
#: The longest value a preview accepts for one field (a layout is a few kilobytes).
MAX_FIELD_CHARS = 200_000


@dataclass(frozen=True)
class LayoutDraft:
    """Unsaved layout values (pk None: compiled without being cached)."""

    pk: None = None
    name: str = ""
    html: str = ""
    css: str = ""
    logo_url: str = ""
    primary_color: str = ""
    background_color: str = ""
    text_color: str = ""
    font_family: str = ""
    footer_html: str = ""
    footer_address: str = ""
    legal_text: str = ""
    help_url: str = ""
    translations: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PreviewError:
    """An error: a stable ``code``, the words, the layout field at fault and its line."""

    code: str
    message: str
    field: str = ""
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "part": self.field,
                "line": self.line}


@dataclass(frozen=True)
class LayoutPreview:
    """The rendered email in light (``html``) and dark (``dark_html``) mode, or errors."""

    subject: str = ""
    html: str = ""
    dark_html: str = ""
    errors: tuple[PreviewError, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "html": self.html, "dark_html": self.dark_html,
                "errors": [error.as_dict() for error in self.errors]}


def _errors_from(err: ValidationError, default_field: str) -> list[PreviewError]:
    found = []
    for key, errors in (err.error_dict if hasattr(err, "error_dict")
                        else {default_field: err.error_list}).items():
        for error in errors:
            line = (error.params or {}).get("line")
            found.append(PreviewError("invalid", error.messages[0], key, line))
    return found


def _url(value: str) -> str:
    """A URL as the form would store it: without a scheme, https (the form's default)."""
    value = value.strip()
    if value and "://" not in value:
        value = f"https://{value}"
    return value


def layout_draft(values: Mapping[str, Any]) -> tuple[LayoutDraft, list[PreviewError]]:
    """The layout ``values`` describe (strings, as posted), and what is wrong with them."""
    cleaned: dict[str, str] = {}
    errors: list[PreviewError] = []
    for name in LAYOUT_FIELDS:
        value = str(values.get(name) or "")
        if len(value) > MAX_FIELD_CHARS:
            errors.append(PreviewError(
                "invalid", f"This field is {len(value):,} characters long; at most "
                f"{MAX_FIELD_CHARS:,} can be previewed.", name))
            value = ""
        cleaned[name] = value
    for name in _COLOR_FIELDS:
        try:
            validate_css_color(cleaned[name])
        except ValidationError as err:
            errors.extend(_errors_from(err, name))
    try:
        validate_font_stack(cleaned["font_family"])
    except ValidationError as err:
        errors.extend(_errors_from(err, "font_family"))
    for name in _URL_FIELDS:
        cleaned[name] = _url(cleaned[name])
        if cleaned[name]:
            try:
                URLValidator(schemes=["http", "https"])(cleaned[name])
            except ValidationError:
                errors.append(PreviewError("invalid", "Enter a valid URL (https://...).",
                                           name))
                cleaned[name] = ""
    translations = values.get("translations") or {}
    return LayoutDraft(**cleaned, translations=translations), errors


def _source_errors(draft: LayoutDraft) -> list[PreviewError]:
    errors: list[PreviewError] = []
    # The footer first: the CSS check renders it (the CSS may use brand.footer_html).
    for name, validate in (
        ("html", validate_layout_source),
        ("footer_html", validate_html_source),
        ("css", lambda source, field_name: validate_css_source(
            source, field_name=field_name, layout=draft)),
    ):
        if name == "css" and any(error.field == "footer_html" for error in errors):
            continue
        try:
            validate(getattr(draft, name), field_name=name)
        except ValidationError as err:
            errors.extend(_errors_from(err, name))
        except RecursionError:
            errors.append(PreviewError("invalid", "The template nests too deeply.", name))
    if not errors:
        errors.extend(PreviewError("invalid", problem.message,
                                   f"{problem.language} {problem.field}".strip())
                      for problem in translation_problems(draft))
    if not errors:
        try:
            validate_layout_budget(draft)
        except ValidationError as err:
            errors.extend(PreviewError("budget", error.message, error.field, error.line)
                          for error in _errors_from(err, "html"))
    return errors


def preview_layout(
    values: Mapping[str, Any],
    *,
    template: Any = None,
    context: Mapping[str, Any] | None = None,
    language: str | None = None,
    logo: bytes | None = None,
    links: Any = None,
) -> LayoutPreview:
    """Render the unsaved layout ``values`` around ``template`` (anything with ``subject``,
    ``html`` and ``text``; the built-in sample when None) with ``context``
    (:data:`SAMPLE_CONTEXT` for the sample). ``logo``: the content of a logo chosen for
    upload and not saved yet, shown (as a ``data:`` URI) in place of the logo URL.
    ``links`` (``subscriptions.Links``, for a non-essential template) fill the layout's
    ``{{ unsubscribe_url }}`` and ``{{ preferences_url }}``.

    Errors (a field that is not valid, a source that does not compile, a render over
    budget) come back in ``errors`` with their field and line, never as exceptions.
    """
    draft, errors = layout_draft(values)
    if logo is not None:
        try:
            draft = replace(draft, logo_url=logo_data_uri(logo))
        except ValidationError as err:
            errors.append(PreviewError("invalid", err.messages[0], "logo_file"))
    if errors:
        return LayoutPreview(errors=tuple(errors))
    errors = _source_errors(draft)
    if errors:
        return LayoutPreview(errors=tuple(errors))
    if template is None:
        sample = _Draft(pk=None, subject=SAMPLE_SUBJECT, html=SAMPLE_HTML, text="")
        context = SAMPLE_CONTEXT
    else:
        sample = _Draft(pk=None, subject=template.subject or "", html=template.html or "",
                        text=template.text or "")
    try:
        rendered = render_email(sample, draft, context or {}, language=language or None,
                                unsubscribe_url=getattr(links, "unsubscribe_url", ""),
                                preferences_url=getattr(links, "preferences_url", ""))
    except RenderLimitExceeded as err:
        part = _LAYOUT_PARTS.get(err.template_name, err.template_name or "html")
        if err.template_name not in _LAYOUT_PARTS:
            part = f"template {part}"
        message = err.reason[0].upper() + err.reason[1:]
        return LayoutPreview(errors=(PreviewError("budget", message, part, err.line),))
    except (RenderError, RecursionError) as err:
        return LayoutPreview(errors=(PreviewError("render", str(err)),))
    return LayoutPreview(subject=rendered.subject, html=rendered.html,
                         dark_html=dark_mode(rendered.html))


# --- Dark mode -----------------------------------------------------------------------------

_DARK = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.IGNORECASE)
_LIGHT = re.compile(r"\(\s*prefers-color-scheme\s*:\s*light\s*\)", re.IGNORECASE)
_COLOR_SCHEME_META = re.compile(
    r"<meta\b[^>]*\bname\s*=\s*[\"']?color-scheme[\"']?[^>]*>", re.IGNORECASE)
_HEAD_START = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_DARK_META = '<meta name="color-scheme" content="dark">'


def dark_mode(html: str) -> str:
    """``html`` as a dark-mode client shows it: its ``prefers-color-scheme: dark`` rules on
    (the condition becomes ``(min-width: 0)``, always true), its light-only rules off
    (``(max-width: 0)``), and the document's colour scheme dark."""
    html = _DARK.sub("(min-width: 0)", html)
    html = _LIGHT.sub("(max-width: 0)", html)
    html = _COLOR_SCHEME_META.sub("", html)
    head = _HEAD_START.search(html)
    if head:
        return html[: head.end()] + _DARK_META + html[head.end():]
    return _DARK_META + html
