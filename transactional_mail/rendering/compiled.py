"""Compiled (template revision, layout revision) pairs, and the per-process cache of them.

:func:`_compile` compiles the subject, the text and the HTML composed into its layout,
with the CSS inlined once by :mod:`transactional_mail.rendering.precompile` when that is
exact, or marked to be inlined per email (logging why) when it is not. :func:`_compiled`
keeps the result in a per-process LRU cache of ``INLINE_CACHE_SIZE`` entries, keyed by
:func:`inline_cache_key`; revisions are immutable, so an entry never goes stale.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.template import Template, TemplateSyntaxError
from django.template.base import TokenType

from ..conf import get_setting
from ..exceptions import RenderError
from .engine import _error_line, _parse, _syntax_error_message, _text_token, _tokenize
from .html_scan import _NotPrecompilable
from .layout import _LAYOUT_FIELDS, _render_layout
from .precompile import _precompile

__all__ = ["clear_inline_cache", "inline_cache_key", "invalidate_inline_cache"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Compiled:
    """Everything render_email needs for one (template revision, layout revision)."""

    sources: tuple[str, ...]
    subject: Template
    preheader: Template | None
    text: Template | None
    html: Template
    inline_per_email: bool
    reason: str = ""


def _sources(template: Any, layout: Any) -> tuple[str, ...]:
    values = [template.subject, _preheader_source(template), template.html, template.text]
    if layout is not None:
        values.extend(getattr(layout, field, "") for field in _LAYOUT_FIELDS)
    return tuple("" if value is None else str(value) for value in values)


def _preheader_source(template: Any) -> str:
    """The template's own preheader (blank, or absent on older objects: the context's)."""
    return getattr(template, "preheader", "") or ""


def _compile_source(source: str, what: str, template: Any) -> Template:
    try:
        return _parse(_tokenize(source), what)
    except TemplateSyntaxError as err:
        line = _error_line(err)
        where = f"Line {line}: " if line else ""
        raise RenderError(
            f"The {what} of template {getattr(template, 'pk', None)} does not compile: "
            f"{where}{_syntax_error_message(err)}"
        ) from err


def _compile(template: Any, layout: Any, *, precompile: bool = True) -> _Compiled:
    """Compile the parts; ``precompile=False`` skips CSS inlining (a sample render)."""
    sources = _sources(template, layout)
    subject = _compile_source(template.subject or "", "subject", template)
    preheader_source = _preheader_source(template)
    preheader = (
        _compile_source(preheader_source, "preheader", template)
        if preheader_source.strip() else None
    )
    text = (
        _compile_source(template.text, "text", template) if (template.text or "").strip() else None
    )
    html = _compile_source(template.html or "", "html", template)  # reports syntax errors
    items = _tokenize(template.html or "")
    if layout is not None:
        try:
            before, after = _render_layout(layout)
        except TemplateSyntaxError as err:
            raise RenderError(
                f"Layout {getattr(layout, 'pk', None)} does not compile: {err}"
            ) from err
        items = [_text_token(before), *items, _text_token(after)]
        html = _parse(items, "html")
    has_style = any(
        token.token_type is TokenType.TEXT and "<style" in token.contents.lower() for token in items
    )
    if not has_style or not precompile:
        return _Compiled(sources, subject, preheader, text, html, inline_per_email=False)
    try:
        inlined = _precompile(items, "html")
    except _NotPrecompilable as err:
        reason = str(err)
        logger.info(
            "CSS of email template %s in layout %s is inlined per email: %s.",
            getattr(template, "pk", None),
            getattr(layout, "pk", None),
            reason,
        )
    except Exception as err:
        # CSS premailer cannot apply fails again, with the error, when each email is
        # inlined; and a bug of the optimiser must cost speed, never emails.
        reason = f"the precompiler failed: {err!r}"
        logger.warning(
            "CSS of email template %s in layout %s is inlined per email: %s.",
            getattr(template, "pk", None),
            getattr(layout, "pk", None),
            reason,
            exc_info=True,
        )
    else:
        return _Compiled(sources, subject, preheader, text, inlined, inline_per_email=False)
    return _Compiled(sources, subject, preheader, text, html, inline_per_email=True, reason=reason)


def inline_cache_key(template_pk: Any, layout_pk: Any, layout_language: str = "",
                     subscription_links: bool = False) -> tuple[str, Any, Any, str, bool]:
    """The cache key of a (template revision, layout revision) pair.

    The one function used both to look entries up and to invalidate them. Revisions are
    immutable, so a key never goes stale; ``layout_pk`` is None for a template without a
    layout. ``layout_language`` is the layout translation's language, when one applies;
    ``subscription_links`` marks the layout's variant for non-essential mail.
    """
    return ("transactional_mail.inline", template_pk, layout_pk, layout_language,
            subscription_links)


_cache: OrderedDict[tuple[str, Any, Any, str, bool], _Compiled] = OrderedDict()
_cache_lock = threading.Lock()


def invalidate_inline_cache(template_pk: Any, layout_pk: Any) -> None:
    """Drop the compiled entries of one (template revision, layout revision) pair."""
    with _cache_lock:
        for key in [key for key in _cache if key[1:3] == (template_pk, layout_pk)]:
            del _cache[key]


def clear_inline_cache() -> None:
    """Empty this process's cache of compiled, CSS-inlined templates (for tests)."""
    with _cache_lock:
        _cache.clear()


def _compiled(template: Any, layout: Any) -> _Compiled:
    """Return the compiled entry, from the cache when both objects are saved revisions."""
    layout_pk = None if layout is None else layout.pk
    cacheable = template.pk is not None and (layout is None or layout_pk is not None)
    if not cacheable:  # an admin preview of unsaved edits
        return _compile(template, layout)
    key = inline_cache_key(template.pk, layout_pk,
                           getattr(layout, "translation_language", "") or "",
                           bool(getattr(layout, "subscription_links", False)))
    with _cache_lock:
        entry = _cache.get(key)
        if entry is not None:
            _cache.move_to_end(key)
    # The entry keeps its sources: a cheap comparison guards against a mutable object
    # (an EmailTemplate instead of its revision) being passed with a reused pk.
    if entry is not None and entry.sources == _sources(template, layout):
        return entry
    entry = _compile(template, layout)
    size = get_setting("INLINE_CACHE_SIZE") or 0
    with _cache_lock:
        if size > 0:
            _cache[key] = entry
            _cache.move_to_end(key)
            while len(_cache) > size:
                _cache.popitem(last=False)
    return entry
