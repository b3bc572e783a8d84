"""Composing one email: template revision + layout revision + JSON context -> RenderedEmail.

This module is pure: no database queries, no writes, no network. The worker, the admin
preview and the test send all call :func:`render_email`, which renders the three parts
of an email under one render budget.

The subject is rendered without autoescaping and collapsed to one line: every run of
whitespace (``\\r``, ``\\n``, tabs, Unicode line separators) becomes one space and other
control characters are dropped, whatever the context holds. The template's ``preheader``
(the hidden preview line of the layout) is rendered the same way; when it is blank, the
context's ``preheader`` key is used instead. The text part is the
template's ``text`` rendered without autoescaping, or, when that is blank, derived from
the final HTML by :func:`~transactional_mail.rendering.text.html_to_text` (a parse per
email: a template with its own text part renders faster). In the HTML, a URL attribute
(``href``, ``src``...) whose scheme could run script (``javascript:`` from a context
value) becomes ``#`` (:func:`~transactional_mail.rendering.links.neutralize_urls`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.template import Context
from django.utils import translation

from ..exceptions import RenderError
from .budget import render_budget
from .compiled import _Compiled, _compiled
from .context import freeze_context
from .inlining import inline_css
from .layout import localize, translated, with_subscription_links
from .links import neutralize_urls
from .text import html_to_text

__all__ = ["RenderedEmail", "one_line", "render_email"]


@dataclass(frozen=True)
class RenderedEmail:
    """The three rendered parts of one email."""

    subject: str
    html: str
    text: str


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(value: str) -> str:
    """Collapse all whitespace (CR, LF, tabs, Unicode separators) to single spaces and
    drop other control characters: a subject can never become two header lines."""
    return _CONTROL_CHARACTERS.sub("", " ".join(value.split()))


def render_email(
    template: Any,
    layout: Any,
    context: Mapping[str, Any] | None,
    *,
    language: str | None = None,
    unsubscribe_url: str = "",
    preferences_url: str = "",
) -> RenderedEmail:
    """Render one email.

    ``template`` has ``pk``, ``subject``, ``html`` and ``text`` (a template revision);
    ``layout`` is None or has ``pk``, ``html``, ``css``, ``logo_url``, ``primary_color``,
    ``background_color``, ``text_color`` and ``footer_html`` (a layout revision). A None
    ``pk`` (unsaved edits in an admin preview) is compiled without being cached.
    ``context`` is the JSON snapshot; templates see a read-only copy. With ``language``,
    rendering runs under ``translation.override(language)`` (date names, number formats);
    a language missing from ``LANGUAGES`` renders in ``LANGUAGE_CODE``.
    ``unsubscribe_url`` and ``preferences_url`` (non-essential mail) are what the layout's
    ``{{ unsubscribe_url }}`` and ``{{ preferences_url }}`` render to; without them the
    layout sees them empty. In the final HTML, a URL attribute whose scheme could run
    script becomes ``#`` (:func:`~transactional_mail.rendering.links.neutralize_urls`).

    Raise :class:`~transactional_mail.exceptions.RenderError` when the stored template
    does not compile or the context holds something other than JSON data.
    """
    rendered = _render_email(template, layout, context, language=language,
                             unsubscribe_url=unsubscribe_url, preferences_url=preferences_url)
    # Autoescaping leaves "javascript:..." from the context as it is: no link may run
    # script. On the final HTML: what localize() fills in counts too.
    return replace(rendered, html=neutralize_urls(rendered.html))


def _render_email(
    template: Any,
    layout: Any,
    context: Mapping[str, Any] | None,
    *,
    language: str | None,
    unsubscribe_url: str,
    preferences_url: str,
) -> RenderedEmail:
    """:func:`render_email` before its URL attributes are neutralised: what the editor's
    preview warns about (a link staff wrote with a refused scheme)."""
    data = freeze_context(context)
    override = (
        translation.override(_supported_language(language)) if language
        else contextlib.nullcontext()
    )
    with override:
        layout = translated(layout, translation.get_language())
        if unsubscribe_url or preferences_url:
            layout = with_subscription_links(layout)
        compiled = _compiled(template, layout)
        try:
            subject, preheader, html, text = _render_parts(compiled, data)
            if preheader is None:  # no preheader of its own: the context's, as before
                preheader = data.get("preheader")
                preheader = preheader if isinstance(preheader, str) else ""
            marks = {"language": translation.get_language() or settings.LANGUAGE_CODE,
                     "bidi": translation.get_language_bidi()}
            links = {"unsubscribe_url": unsubscribe_url, "preferences_url": preferences_url}
            html = localize(html, **marks, **links, preheader=one_line(preheader))
            subject = localize(subject, **marks).strip()
            text = localize(text, **marks, **links, html=False).strip()
        except RenderError:
            raise
        except Exception as err:
            raise RenderError(
                f"Template {getattr(template, 'pk', None)} failed to render: {err!r}"
            ) from err
    return RenderedEmail(subject=one_line(subject), html=html, text=text)


def _supported_language(language: str) -> str:
    """``language`` or its closest variant in ``LANGUAGES`` (``fr-ch`` -> ``fr``); a language
    the site does not have falls back to ``LANGUAGE_CODE``, so its formats apply too."""
    try:
        return translation.get_supported_language_variant(language)
    except LookupError:
        return settings.LANGUAGE_CODE


def _render_parts(
    compiled: _Compiled, data: dict[str, Any]
) -> tuple[str, str | None, str, str]:
    """Subject, preheader (None when the template has none), HTML and text of one email,
    under one render budget."""
    with render_budget() as budget:
        rendered = compiled.html.render(Context(dict(data), autoescape=True))
        html = rendered
        if compiled.inline_per_email:
            html = inline_css(rendered)
            # Inlining adds style attributes: what it adds counts too.
            budget.charge_output(len(html) - len(rendered))
        subject = compiled.subject.render(Context(dict(data), autoescape=False))
        preheader = (
            compiled.preheader.render(Context(dict(data), autoescape=False))
            if compiled.preheader is not None else None
        )
        if compiled.text is not None:
            text = compiled.text.render(Context(dict(data), autoescape=False)).strip()
        else:
            text = html_to_text(html)
    return subject, preheader, html, text
