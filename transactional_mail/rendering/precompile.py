"""Rendering: a template revision + a layout revision + a JSON context -> a RenderedEmail.

This module is pure: no database queries, no writes, no network. The worker, the admin
preview and the test send all call :func:`render_email`.

Pipeline
========

Templates are staff-edited, so they compile in the restricted engine of
:mod:`transactional_mail.template_engine` (allow-listed tags and filters, read-only JSON
context) and are checked on save by :func:`validate_template_source`,
:func:`validate_html_source`, :func:`validate_layout_source` and
:func:`validate_css_source`, which name the offending line; a template is also rendered
with its sample context (:func:`validate_template_budget`) and a layout with its brand
values (:func:`validate_layout_budget`) under the render budget of
:mod:`transactional_mail.render_budget`, which bounds every render (``render_email``
renders the three parts of an email under one budget).

Stylesheets load nothing. On save, ``@import``, ``url()`` other than http(s)/data/cid and
``<link rel="stylesheet">`` are refused (in static text: what template tags assemble at
render time is not seen there). Whatever is stored, premailer parses CSS with a cssutils
parser whose fetcher refuses every URL (``_premailer_class``), so neither
validation, nor inlining, nor rendering ever opens a URL or a file.

A layout is the branded shell around every template. Its ``html`` and ``css`` may use the
brand variables ``{{ brand.logo_url }}``, ``{{ brand.primary_color }}``,
``{{ brand.background_color }}``, ``{{ brand.text_color }}``, ``{{ brand.name }}`` and
``{{ brand.footer_html }}`` (the layout's footer, itself a template of the other brand
values, inserted as HTML). Layouts are rendered once per layout revision with those
values only, so per-email data belongs in the template (in a layout, ``{{ order }}``
renders empty). The content slot ``{{ content }}`` (exactly once, outside any block tag)
is then replaced by the template's *source*, and ``layout.css`` (rendered without
autoescaping) goes into a ``<style>`` element at the end of the head. Templates do not
see ``brand``: a context key of that name stays the caller's.

CSS inlining, once per revision
-------------------------------

Mail clients ignore ``<style>``, so CSS is inlined with premailer. Premailer costs about
45 renders, so it must not run per email: for each (template revision, layout revision)
the composed source is inlined *once*, with every template tag replaced by a placeholder,
and the result is compiled and kept in a per-process LRU cache (``INLINE_CACHE_SIZE``
entries, keyed by :func:`inline_cache_key`). Per email only the compiled template renders.

Placeholders are HTML comments where a tag sits between elements or in text (lxml keeps
comments where they are, even between table rows, and CSS selectors do not see them) and
plain ``[0-9a-z]`` words inside quoted attribute values, ``<title>`` and comments. After
premailer, the serialised HTML is split at the placeholders back into Django tokens (the
static text never goes through Django's lexer again, so text in a layout that looks like
template syntax stays text). Attributes that libxml2 URI-escapes on output (``href``,
``src``, ``action``, ``<a name>``) get their rendered value escaped the same way.

This is exact only when premailer's work does not depend on what the tags render. The
compiler checks that before using a precompiled template and otherwise keeps the
*per-email* strategy (render, then inline: always correct, about 45x slower), logging why
(an unexpected error of the precompiler also means per-email: the optimiser can cost
speed, never an email). ``tests/test_rendering.py`` proves the equality on the corpus of
``tests/rendering_corpus`` and on hostile context values. A template is inlined per email
when:

* a tag sits where a placeholder cannot go: a tag or attribute name, an unquoted
  attribute value, ``<style>``/``<script>``, right after a bare ``&``, or directly in
  ``<html>``/``<head>``; or a fragment without a layout starts or ends with a tag;
* lxml moves things around: a block (``{% if %}``...``{% endif %}``, ``{% for %}``...) does
  not contain whole elements, so its parts end up under different parents;
* rendering produces markup the CSS could match: ``{% filter %}``,
  string literals containing ``< > " '``, or ``linebreaks``/``urlize``/``unordered_list``
  when an inlinable selector could match the ``p``/``br``/``a``/``ul``/``li`` they make;
* a selector depends on rendered content: ``.class``, ``#id`` or ``[attr]`` when that
  attribute holds a template tag somewhere (``class="{% if vip %}gold{% endif %}"``), or a
  structural selector (``:first-child``, ``:last-child``, ``+``, ``~``) in a template
  whose blocks add or remove elements;
* a ``style`` attribute holding a template tag is on an element a rule matches (premailer
  reparses and normalises it), or on an ``<img>``; a ``<style>`` sits inside a block.

Known limitation, by design: CSS selectors that depend on rendered content (classes or
ids computed from the context, structure changed by loops) are not supported by the
once-per-revision inlining. Such templates still render correctly, at per-email speed;
put the variation in ``style`` attributes or separate elements to keep them fast. ``*``
selectors are not inlined (premailer's default; they would bloat every element).

Premailer options, chosen deliberately (see :data:`PREMAILER_OPTIONS`): no network and no
files (``allow_network=False``: a ``<link>`` stylesheet is left alone, never fetched;
cssutils ignores it for ``@import``, hence our own fetcher), no URL rewriting;
``disable_validation=True`` so vendor properties survive; cssutils logging silenced;
``keep_style_tags=False`` so only rules that cannot be inlined (media queries,
``:hover``) stay in a ``<style>``, and ``strip_important=False`` so those keep the
``!important`` they need to beat inline styles (responsive emails rely on it);
``remove_classes=False`` because media queries refer to the classes; no pretty printing.

Subject and text
----------------

The subject is rendered without autoescaping and collapsed to one line: every run of
whitespace (``\\r``, ``\\n``, tabs, Unicode line separators) becomes one space and other
control characters are dropped, whatever the context holds. The text part is the
template's ``text`` rendered without autoescaping, or, when that is blank, derived from
the final HTML by :func:`html_to_text` (a parse per email: a template with its own text
part renders faster).
"""

from __future__ import annotations

import contextlib
import functools
import html as html_module
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from django.core.exceptions import ValidationError
from django.template import Context, Library, Node, Template, TemplateSyntaxError
from django.template.base import Lexer, Parser, Token, TokenType
from django.utils import translation
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from lxml import etree

from .conf import get_setting
from .exceptions import RenderError, RenderLimitExceeded
from .render_budget import current_budget, render_budget
from .template_engine import (
    ALLOWED_TAGS,
    BLOCK_TAGS,
    INTERMEDIATE_TAGS,
    MARKUP_FILTERS,
    FrozenDict,
    RestrictedTemplate,
    allowed_library,
    freeze_context,
)

__all__ = [
    "PREMAILER_OPTIONS",
    "RenderedEmail",
    "clear_inline_cache",
    "html_to_text",
    "inline_cache_key",
    "inline_css",
    "invalidate_inline_cache",
    "one_line",
    "render_email",
    "validate_css_source",
    "validate_html_source",
    "validate_layout_budget",
    "validate_layout_source",
    "validate_template_budget",
    "validate_template_source",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedEmail:
    """The three rendered parts of one email."""

    subject: str
    html: str
    text: str


# ======================================================================================
# Validation (called from the models' clean(): refused on save, naming the line)
# ======================================================================================

_OTHER_TEMPLATES = gettext_lazy(
    "an email template cannot use other templates (choose its layout instead)"
)
_FORBIDDEN_TAG_HINTS = {
    "load": gettext_lazy(
        "email templates can only use the built-in tags and filters; nothing can be loaded"
    ),
    "include": _OTHER_TEMPLATES,
    "extends": _OTHER_TEMPLATES,
    "block": _OTHER_TEMPLATES,
    "debug": gettext_lazy("it would show internal data"),
    "url": gettext_lazy("put the full URL in the context instead"),
    "csrf_token": gettext_lazy("emails have no request"),
    "lorem": gettext_lazy("a resent email must render the same"),
    "autoescape": gettext_lazy(
        "context data is always escaped; a layout author who needs raw markup writes it "
        "literally"
    ),
}
_END_TAGS = frozenset(f"end{name}" for name in BLOCK_TAGS)
_LINE_IN_MESSAGE = re.compile(r" on line \d+")
_INVALID_FILTER = re.compile(r"^Invalid filter: '([^']*)'$")


def _tokenize(source: str) -> list[Token]:
    """Lex ``source`` and drop comments, which render nothing.

    ``{# #}`` tokens and ``{% comment %}``...``{% endcomment %}`` ranges are removed the way
    Django's own parser skips them (to the first ``endcomment``), so their content is never
    validated or fed to the CSS inliner.
    """
    tokens: list[Token] = []
    skipping = False
    for token in Lexer(source).tokenize():
        if skipping:
            if token.token_type is TokenType.BLOCK and token.contents == "endcomment":
                skipping = False
            continue
        if token.token_type is TokenType.COMMENT:
            continue
        if token.token_type is TokenType.BLOCK and token.contents.split()[:1] == ["comment"]:
            skipping = True
            continue
        tokens.append(token)
    if skipping:
        # Unclosed: keep the tokens so the parser reports "Unclosed tag 'comment'".
        return Lexer(source).tokenize()
    return tokens


def _invalid(field_name: str, line: int | None, message: str) -> ValidationError:
    if line:
        error = ValidationError(
            _("Line %(line)s: %(error)s"),
            code="invalid_template",
            params={"line": line, "error": message},
        )
    else:
        error = ValidationError(message, code="invalid_template")
    return ValidationError({field_name: [error]})


def _syntax_error_message(err: TemplateSyntaxError) -> str:
    message = _LINE_IN_MESSAGE.sub("", str(err))
    match = _INVALID_FILTER.match(message)
    if match:
        return _("the filter |%(name)s is not available in email templates.") % {
            "name": match.group(1)
        }
    return message


def _error_line(err: Exception) -> int | None:
    token = getattr(err, "token", None)
    return getattr(token, "lineno", None)


def validate_template_source(source: str, *, field_name: str = "html") -> None:
    """Check that ``source`` compiles in the restricted engine.

    Raise :class:`~django.core.exceptions.ValidationError` (keyed by ``field_name``, for
    ``Model.clean()``) whose message starts with ``Line N:`` for a syntax error, a tag or
    filter outside the allow-list, or a ``{% load %}``.
    """
    source = source or ""
    tokens = _tokenize(source)
    for token in tokens:
        if token.token_type is not TokenType.BLOCK or not token.contents.split():
            continue
        name = token.contents.split()[0]
        if name in ALLOWED_TAGS or name in INTERMEDIATE_TAGS or name in _END_TAGS:
            continue
        hint = _FORBIDDEN_TAG_HINTS.get(name)
        if hint:
            message = _("{%% %(name)s %%} is not available in email templates: %(hint)s.") % {
                "name": name,
                "hint": hint,
            }
        else:
            message = _("{%% %(name)s %%} is not available in email templates.") % {"name": name}
        raise _invalid(field_name, token.lineno, message)
    try:
        _parse(tokens)
    except TemplateSyntaxError as err:
        raise _invalid(field_name, _error_line(err), _syntax_error_message(err)) from err


def _var_name(contents: str) -> str:
    return re.split(r"[|.\s]", contents.strip(), maxsplit=1)[0]


def validate_layout_source(source: str, *, field_name: str = "html") -> None:
    """Check a layout's HTML: a valid template with the slot ``{{ content }}`` exactly once.

    The slot must be written exactly so (no filters) and sit outside any block tag, since
    the template's source replaces it. Raise ``ValidationError`` naming the line.
    """
    validate_html_source(source, field_name=field_name)
    slots: list[Token] = []
    depth = 0
    for token in _tokenize(source or ""):
        if token.token_type is TokenType.BLOCK:
            name = token.contents.split()[0]
            if name in BLOCK_TAGS:
                depth += 1
            elif name in _END_TAGS:
                depth -= 1
        elif token.token_type is TokenType.VAR and _var_name(token.contents) == "content":
            if token.contents.strip() != "content":
                raise _invalid(
                    field_name,
                    token.lineno,
                    _("the content slot must be written {{ content }}, without filters."),
                )
            if depth:
                raise _invalid(
                    field_name,
                    token.lineno,
                    _("the content slot {{ content }} cannot be inside a block tag."),
                )
            slots.append(token)
    if not slots:
        raise _invalid(
            field_name,
            None,
            _(
                "The layout must contain the content slot {{ content }}, where each email's "
                "content goes."
            ),
        )
    if len(slots) > 1:
        raise _invalid(
            field_name,
            slots[1].lineno,
            _("the content slot {{ content }} can appear only once."),
        )


def validate_html_source(source: str, *, field_name: str = "html") -> None:
    """Check an HTML template: :func:`validate_template_source`, then its stylesheets.

    A ``<style>`` element must not ``@import`` (the server would fetch it) nor use a
    ``url()`` other than http(s), data or cid; no ``style`` attribute may either; and no
    ``<link rel="stylesheet">``. Raise ``ValidationError`` naming the line.
    """
    validate_template_source(source, field_name=field_name)
    static = _static_text(source or "")
    problem = _markup_problem(static)
    if problem:
        raise _invalid(field_name, *problem)
    rules = sum(css.count("{") for css in _STYLE_ELEMENT.findall(static))
    limit = get_setting("RENDER_MAX_CSS_RULES")
    if rules > limit:
        raise _invalid(field_name, None, _(
            "The stylesheets have %(rules)s rules; at most %(limit)s can be inlined "
            "(RENDER_MAX_CSS_RULES). Remove the rules the email does not use."
        ) % {"rules": f"{rules:,}", "limit": f"{limit:,}"})


def validate_css_source(source: str, *, field_name: str = "css", layout: Any = None) -> None:
    """Check a layout's CSS: a valid template (brand variables) that premailer can apply.

    The CSS must not ``@import`` nor use a ``url()`` other than http(s), data or cid, as
    written and as rendered with the brand values of ``layout`` (blank ones without it),
    and that render must stay within the render budget.
    """
    validate_template_source(source, field_name=field_name)
    problem = _stylesheet_problem(_static_text(source or ""))
    if problem:
        raise _invalid(field_name, *problem)
    try:
        with render_budget():
            css = _render_brand(
                source or "", _brand_context(layout), autoescape=False, name="layout css"
            )
    except RenderLimitExceeded as err:
        field = field_name if err.template_name == "layout css" else "footer_html"
        raise _invalid(field, err.line, err.reason) from err
    problem = _stylesheet_problem(css)
    if problem:  # made by template tags or brand values: no line to name
        raise _invalid(
            field_name,
            None,
            _("As rendered with the brand values: %(problem)s") % {"problem": problem[1]},
        )
    document = f"<html><head>{_style_element(css)}</head><body><p>x</p></body></html>"
    try:
        inline_css(document)
    except Exception as err:  # premailer/cssselect raise many unrelated types
        raise _invalid(
            field_name, None, _("The CSS cannot be inlined: %(error)s") % {"error": err}
        ) from err


def validate_layout_budget(layout: Any) -> None:
    """Render ``layout`` with its brand values under the render budget.

    Raise ``ValidationError`` keyed by the field (``html``, ``css`` or ``footer_html``)
    whose render went over a budget, naming the line when known.
    """
    try:
        _render_layout(layout)
    except RenderLimitExceeded as err:
        raise _invalid(_LAYOUT_PARTS.get(err.template_name, "html"), err.line, err.reason) from err
    except RenderError:  # not a budget problem: the per-field checks report what they can
        pass


def validate_template_budget(
    template: Any, layout: Any, context: Mapping[str, Any] | None, *, language: str | None = None
) -> None:
    """Render ``template`` in ``layout`` with a sample ``context`` under the render budget.

    The same render as :func:`render_email`, before CSS inlining. Raise
    ``ValidationError`` keyed by the part (``subject``, ``html`` or ``text``; ``layout``
    when the layout itself is over budget) naming the line when known. Other errors are
    not this check's business (the sample context may simply not fit the template).
    """
    draft = _Draft(pk=None, subject=template.subject, html=template.html, text=template.text)
    try:
        data = freeze_context(context if isinstance(context, Mapping) else {})
        override = translation.override(language) if language else contextlib.nullcontext()
        with override:
            _render_parts(_compile(draft, layout, precompile=False), data)
    except RenderLimitExceeded as err:
        field = "layout" if err.template_name in _LAYOUT_PARTS else err.template_name
        raise _invalid(field or "html", err.line, err.reason) from err
    except Exception:  # see the docstring
        logger.debug("The sample render of template %s failed.", template.pk, exc_info=True)


@dataclass(frozen=True)
class _Draft:
    """Unsaved template values (pk None: compiled without being cached)."""

    pk: None
    subject: str
    html: str
    text: str


# --- Stylesheets: nothing that makes the server (or a mail client) load a file -------------

_ALLOWED_URL_SCHEMES = frozenset({"http", "https", "data", "cid"})
_URL_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
# A CSS line continuation, and the characters browsers drop anywhere in a URL.
_URL_IGNORED = re.compile(r"\\(?:\r\n|[\n\r\f])|[\t\n\r]")
_STYLE_ELEMENT = re.compile(r"<style\b[^>]*>(.*?)(?:</style\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_LINK_ELEMENT = re.compile(r"<link\b[^>]*>", re.IGNORECASE)
_REL_STYLESHEET = re.compile(
    r"\brel\s*=\s*(?:\"[^\"]*\bstylesheet\b[^\"]*\"|'[^']*\bstylesheet\b[^']*'|stylesheet\b)",
    re.IGNORECASE,
)
_STYLE_ATTRIBUTE = re.compile(
    r"<[a-zA-Z][^>]*?\sstyle\s*=\s*(\"[^\"]*\"|'[^']*')", re.IGNORECASE | re.DOTALL
)


def _static_text(source: str) -> str:
    """``source`` with every template tag, variable and comment blanked out, lines kept.

    What the stylesheet checks read: static text with the same line numbers. Text that
    tags would assemble at render time is caught by premailer's refusing fetcher instead.
    """
    parts: list[str] = []
    skipping = False
    for token in Lexer(source).tokenize():
        if token.token_type is TokenType.TEXT:
            parts.append("\n" * token.contents.count("\n") if skipping else token.contents)
        elif token.token_type is TokenType.BLOCK:
            name = token.contents.split()[:1]
            if skipping and name == ["endcomment"]:
                skipping = False
            elif not skipping and name == ["comment"]:
                skipping = True
    return "".join(parts)


def _stylesheet_problem(css: str, first_line: int = 1) -> tuple[int, str] | None:
    """The first construct in ``css`` that loads a resource: (line, message), or None."""
    from cssutils import helper
    from cssutils.tokenize2 import Tokenizer

    for kind, value, line, _col in Tokenizer().tokenize(css):
        if kind == "IMPORT_SYM":
            return first_line + line - 1, _(
                "@import is not allowed: the server would fetch the stylesheet. Put its "
                "rules in the layout's CSS."
            )
        if kind == "URI":
            url = _URL_IGNORED.sub("", helper.urivalue(value)).strip()
            scheme = _URL_SCHEME.match(url)
            if scheme and scheme.group(1).lower() not in _ALLOWED_URL_SCHEMES:
                return first_line + line - 1, _(
                    "url(%(url)s) is not allowed: only http, https, data and cid URLs can "
                    "be used in an email's CSS."
                ) % {"url": url[:60]}
    return None


def _markup_problem(html: str) -> tuple[int, str] | None:
    """The first stylesheet construct in static HTML that loads a resource, or None."""
    found: list[tuple[int, str]] = []
    for match in _LINK_ELEMENT.finditer(html):
        if _REL_STYLESHEET.search(match.group()):
            found.append((
                html.count("\n", 0, match.start()) + 1,
                _(
                    "<link rel=\"stylesheet\"> is not allowed: put the CSS in the layout "
                    "(for a web font, an @font-face rule with src: url(https://...))."
                ),
            ))
    for match in _STYLE_ELEMENT.finditer(html):
        problem = _stylesheet_problem(
            match.group(1), html.count("\n", 0, match.start(1)) + 1
        )
        if problem:
            found.append(problem)
    for match in _STYLE_ATTRIBUTE.finditer(html):
        problem = _stylesheet_problem(
            "x{" + html_module.unescape(match.group(1)[1:-1]) + "}",
            html.count("\n", 0, match.start(1)) + 1,
        )
        if problem:
            found.append(problem)
    return min(found) if found else None


# ======================================================================================
# Compilation
# ======================================================================================


def _parse(tokens: list[Token], name: str = "email template") -> RestrictedTemplate:
    """Compile a token list (the inlined template is reassembled from premailer's output
    at the token level, so static HTML is never lexed again: text that looks like
    ``{{ x }}`` stays text)."""
    return RestrictedTemplate(list(tokens), name)


def _text_token(text: str) -> Token:
    return Token(TokenType.TEXT, text)


# --- URI attributes ---------------------------------------------------------------------

# libxml2's HTML serialiser URI-escapes these attributes (href, src, action, name on <a>):
# leading blanks dropped, then every byte outside printable ASCII written as %XX. The
# precompiled template applies the same to the rendered value (tested in test_rendering).
_URI_ATTRIBUTES = frozenset({"href", "src", "action"})
_URI_UNSAFE = re.compile(r"[^\x21-\x7e]+")
_LEADING_BLANKS = " \t\n\r"


def _percent_escape(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8", "surrogatepass"))


def _libxml2_uri_escape(value: str) -> str:
    # The parser turns CR and CRLF into LF, and NUL into U+FFFD, before the serialiser
    # sees the value.
    value = value.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")
    value = value.lstrip(_LEADING_BLANKS)
    return _URI_UNSAFE.sub(_percent_escape, value)


class _UriAttributeNode(Node):
    def __init__(self, nodelist: Any) -> None:
        self.nodelist = nodelist

    def render(self, context: Context) -> str:
        return _libxml2_uri_escape(self.nodelist.render(context))


# Tags only the compiler inserts; the engine staff templates are validated with lacks them.
_internal_library = Library()


@_internal_library.tag("tm_uri_attribute")
def _uri_attribute(parser: Parser, token: Token) -> _UriAttributeNode:
    nodelist = parser.parse(("tm_end_uri_attribute",))
    parser.delete_first_token()
    return _UriAttributeNode(nodelist)


# --- Premailer ----------------------------------------------------------------------------

#: The premailer options (see the module docstring for why each is set).
PREMAILER_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {
        "base_url": None,
        "disable_link_rewrites": True,
        "allow_network": False,
        "allow_loading_external_files": False,
        "external_styles": None,
        "keep_style_tags": False,
        "strip_important": False,
        "exclude_pseudoclasses": True,
        "include_star_selectors": False,
        "remove_classes": False,
        "capitalize_float_margin": False,
        "disable_validation": True,
        "cssutils_logging_level": logging.CRITICAL,
        "method": "html",
        "align_floating_images": True,
        "remove_unset_properties": True,
        "disable_leftover_css": False,
    }
)


def _refuse_fetch(url: str) -> None:
    """The fetcher of every CSS parser premailer uses here: nothing is ever fetched.

    cssutils loads ``@import`` with its own fetcher (urllib, no timeout, ``file:`` URLs
    included), whatever premailer's ``allow_network`` says. Returning None makes cssutils
    skip the rule as unreadable; premailer then drops it.
    """
    logger.warning("A stylesheet asked to load %r; refused (@import is never fetched).", url)


@functools.lru_cache(maxsize=256)
def _parse_stylesheet(css: str, validate: bool) -> Any:
    """Parse CSS with a cssutils parser whose fetcher refuses (cached, as premailer's own
    parse is: premailer only reads the sheets)."""
    import cssutils

    return cssutils.CSSParser(fetcher=_refuse_fetch).parseString(css, validate=validate)


@functools.cache
def _premailer_class() -> type:
    from premailer import Premailer

    class NoFetchPremailer(Premailer):
        """Premailer whose stylesheets are parsed by a cssutils parser that never fetches.

        Premailer parses every ``<style>`` (and, with ``allow_network``, which is off,
        every ``<link>`` stylesheet) through ``_parse_css_string``, which calls cssutils'
        module-level ``parseString``: a parser with the default urllib fetcher. Style
        attributes go through ``cssutils.parseStyle``, which parses declarations only (no
        ``@import``). So this method is the one place to put ours.
        """

        def _parse_css_string(self, css_body: str, validate: bool = True) -> Any:
            _check_css_rules(css_body.count("{"))
            return _parse_stylesheet(css_body, validate)

    return NoFetchPremailer


def _premailer() -> Any:
    return _premailer_class()(**PREMAILER_OPTIONS)


# Premailer's work grows with rules x elements (each rule is matched against the whole
# document), and cssutils' with the square of the rule count: neither runs under the
# render's clock, so both are bounded before premailer starts.
_ELEMENTS_PER_RULE_BUDGET = 2000
_STYLE_ELEMENT = re.compile(r"<style\b[^>]*>(.*?)</style\s*>", re.IGNORECASE | re.DOTALL)


def _check_css_rules(rules: int, elements: int = 0) -> None:
    """Refuse a stylesheet over ``RENDER_MAX_CSS_RULES`` rules, or a document whose rules
    x elements would keep premailer busy for long (``RenderLimitExceeded``)."""
    limit = get_setting("RENDER_MAX_CSS_RULES")
    if rules > limit:
        raise RenderLimitExceeded(
            "RENDER_MAX_CSS_RULES", limit, "the stylesheets have more rules than"
        )
    if rules * elements > limit * _ELEMENTS_PER_RULE_BUDGET:
        raise RenderLimitExceeded(
            "RENDER_MAX_CSS_RULES", limit,
            f"{rules:,} CSS rules to match against {elements:,} elements exceed what",
        )


def inline_css(html: str) -> str:
    """Inline the ``<style>`` CSS of an HTML document with premailer (the slow way).

    Used per email only for templates that cannot be precompiled; the precompiled
    templates are proven to give the same result as ``inline_css(rendered_html)``. A
    document whose CSS is too big to inline raises ``RenderLimitExceeded``.
    """
    rules = sum(css.count("{") for css in _STYLE_ELEMENT.findall(html))
    _check_css_rules(rules, html.count("<"))
    return _premailer().transform(html, pretty_print=False)


# --- Layouts --------------------------------------------------------------------------------

_BRAND_FIELDS = ("name", "logo_url", "primary_color", "background_color", "text_color")
_LAYOUT_FIELDS = ("html", "css", "footer_html", *_BRAND_FIELDS)
# The names a layout's parts render under (in errors), and the field each comes from.
_LAYOUT_PARTS = MappingProxyType(
    {"layout html": "html", "layout css": "css", "layout footer": "footer_html"}
)


def _brand_context(layout: Any) -> dict[str, Any]:
    brand: dict[str, Any] = {
        field: str(getattr(layout, field, "") or "") for field in _BRAND_FIELDS
    }
    # The footer is a staff-written template too (it may use the other brand values);
    # its output is HTML as trusted as the layout's own, so it is not escaped again.
    footer = getattr(layout, "footer_html", "") or ""
    brand["footer_html"] = SafeString(
        _render_brand(
            footer,
            {"brand": FrozenDict(dict(brand, footer_html=""))},
            autoescape=True,
            name="layout footer",
        )
        if footer.strip()
        else ""
    )
    # Read-only, like the context of a template: a layout cannot clear its own values.
    return {"brand": FrozenDict(brand)}


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


# --- The HTML context scanner ---------------------------------------------------------------

_RAWTEXT_ELEMENTS = frozenset({"style", "script", "xmp", "iframe", "noembed", "noframes"})
_RCDATA_ELEMENTS = frozenset({"title", "textarea"})
_WHITESPACE = " \t\n\r\f"
_UNSAFE_STATES = {
    "lt": "a tag name",
    "endlt": "an end tag",
    "tagname": "a tag name",
    "intag": "an HTML tag, outside a quoted attribute value",
    "attrname": "an attribute name",
    "afterattrname": "an HTML tag, outside a quoted attribute value",
    "beforevalue": "an unquoted attribute value",
    "unquoted": "an unquoted attribute value",
    "md": "a markup declaration",
    "decl": "a doctype or markup declaration",
    "raw": "a <style> or <script> element",
}
_CONTEXTS = {"data": "data", "dq": "attr", "sq": "attr", "rcdata": "rcdata", "comment": "comment"}
_OPEN_REFERENCE = re.compile(r"&[A-Za-z0-9#]*$")


class _NotPrecompilable(Exception):
    """The template must be inlined per email; the message says why."""


class _HtmlScanner:
    """Tracks where in HTML syntax the text fed so far ends (a small HTML5-ish tokenizer).

    Only static text is fed; at each template tag :meth:`context` tells whether a
    placeholder can go there. Unusual constructs end in states reported as unsafe, which
    only costs speed (per-email inlining), never correctness.
    """

    def __init__(self) -> None:
        self.state = "data"
        self.tag = ""
        self.is_end_tag = False
        self.markup = ""
        self.carry = ""
        self.tail = ""
        self.style_in_block = False

    def context(self) -> str:
        """Where the next template tag sits: data, attr, rcdata or comment."""
        if self.state not in _CONTEXTS:
            raise _NotPrecompilable(f"a template tag is inside {_UNSAFE_STATES[self.state]}")
        # "&{{ x }}": the rendered value could complete a character reference.
        if _OPEN_REFERENCE.search(self.tail):
            raise _NotPrecompilable("a template tag follows a bare '&'")
        self.tail = ""
        return _CONTEXTS[self.state]

    def feed(self, text: str, block_depth: int) -> None:
        """Advance over static text; ``block_depth`` is the number of open block tags."""
        self.tail = (self.tail + text)[-40:]
        i, n = 0, len(text)
        while i < n:
            state, char = self.state, text[i]
            if state == "data":
                i = text.find("<", i)
                if i < 0:
                    return
                i += 1
                self.state = "lt"
            elif state == "lt":
                if char == "!":
                    self.state, self.markup, i = "md", "", i + 1
                elif char == "/":
                    self.state, i = "endlt", i + 1
                elif char == "?":
                    self.state, i = "decl", i + 1
                elif char.isascii() and char.isalpha():
                    self.state, self.tag, self.is_end_tag = "tagname", "", False
                else:
                    self.state = "data"
            elif state == "endlt":
                if char.isascii() and char.isalpha():
                    self.state, self.tag, self.is_end_tag = "tagname", "", True
                elif char == ">":
                    self.state, i = "data", i + 1
                else:
                    self.state = "decl"
            elif state == "md":
                self.markup += char
                i += 1
                if self.markup == "--":
                    self.state, self.carry = "comment", ""
                elif not "--".startswith(self.markup):
                    self.state = "data" if char == ">" else "decl"
            elif state == "comment":
                combined = self.carry + text[i:]
                end = combined.find("-->")
                if end < 0:
                    self.carry = combined[-2:]
                    return
                i += end - len(self.carry) + 3
                self.state, self.carry = "data", ""
            elif state == "decl":
                i = text.find(">", i)
                if i < 0:
                    return
                self.state, i = "data", i + 1
            elif state == "tagname":
                if char in _WHITESPACE or char in "/>":
                    if self.tag == "style" and not self.is_end_tag and block_depth:
                        self.style_in_block = True
                    self.state = "intag"
                else:
                    self.tag += char.lower()
                    i += 1
            elif state in ("intag", "afterattrname"):
                if char == ">":
                    self._end_of_tag()
                    i += 1
                elif char == "=" and state == "afterattrname":
                    self.state, i = "beforevalue", i + 1
                elif char in _WHITESPACE or char == "/":
                    i += 1
                else:
                    self.state = "attrname"
                    i += 1
            elif state == "attrname":
                if char == "=":
                    self.state = "beforevalue"
                elif char in _WHITESPACE:
                    self.state = "afterattrname"
                elif char == "/":
                    self.state = "intag"
                elif char == ">":
                    self._end_of_tag()
                i += 1
            elif state == "beforevalue":
                if char in _WHITESPACE:
                    i += 1
                elif char == '"':
                    self.state, i = "dq", i + 1
                elif char == "'":
                    self.state, i = "sq", i + 1
                elif char == ">":
                    self._end_of_tag()
                    i += 1
                else:
                    self.state = "unquoted"
            elif state in ("dq", "sq"):
                i = text.find('"' if state == "dq" else "'", i)
                if i < 0:
                    return
                self.state, i = "intag", i + 1
            elif state == "unquoted":
                if char in _WHITESPACE:
                    self.state = "intag"
                elif char == ">":
                    self._end_of_tag()
                i += 1
            elif state in ("raw", "rcdata"):
                match = re.compile(rf"</{re.escape(self.tag)}(?=[\s/>])", re.I).search(text, i)
                if match is None:
                    return
                self.state, i = "data", match.start()

    def _end_of_tag(self) -> None:
        if not self.is_end_tag and self.tag in _RAWTEXT_ELEMENTS:
            self.state = "raw"
        elif not self.is_end_tag and self.tag in _RCDATA_ELEMENTS:
            self.state = "rcdata"
        else:
            self.state = "data"


# --- CSS analysis ---------------------------------------------------------------------------


@dataclass
class _SelectorFacts:
    attributes: set[str]  # attribute names the selector tests (class, id, href...)
    structural: bool  # depends on siblings: :first-child, :last-child, +, ~
    subject_tag: str | None  # the element type matched, None for any
    subject_needs_class_or_id: bool  # elements made by filters have neither


def _selector_facts(selector: str) -> _SelectorFacts:
    """What a CSS selector depends on: attribute names, sibling structure, subject tag."""
    from cssselect import parse
    from cssselect import parser as css

    facts = _SelectorFacts(set(), False, None, False)

    def walk(node: Any) -> None:
        if isinstance(node, css.Class):
            facts.attributes.add("class")
        elif isinstance(node, css.Hash):
            facts.attributes.add("id")
        elif isinstance(node, css.Attrib):
            facts.attributes.add(str(node.attrib).lower())
        elif isinstance(node, (css.Pseudo, css.Function)) or (
            isinstance(node, css.CombinedSelector) and node.combinator in "+~"
        ):
            facts.structural = True
        for value in vars(node).values():
            for child in value if isinstance(value, (list, tuple)) else (value,):
                if type(child).__module__ == css.__name__:
                    walk(child)

    for parsed in parse(selector):
        walk(parsed)
        subject = parsed.parsed_tree
        if isinstance(subject, css.CombinedSelector):
            subject = subject.subselector
        while not isinstance(subject, css.Element) and hasattr(subject, "selector"):
            if isinstance(subject, (css.Class, css.Hash)):
                facts.subject_needs_class_or_id = True
            subject = subject.selector
        element = getattr(subject, "element", None)
        facts.subject_tag = element.lower() if element and element != "*" else None
    return facts


def _inlinable_selectors(page: Any) -> list[str]:
    """The selectors premailer will inline into this document (not media queries etc.)."""
    premailer = _premailer()
    selectors: list[str] = []
    for index, element in enumerate(page.iter("style")):
        media = element.attrib.get("media")
        if media and media not in ("all", "screen"):
            continue
        if element.attrib.get(premailer.attribute_name) == "ignore":
            continue
        # Premailer's own parser, so the selection matches what transform() inlines.
        rules, _leftover = premailer._parse_style_rules(element.text, index)
        selectors.extend(selector for _specificity, selector, _bulk in rules)
    return selectors


# --- The precompiler ------------------------------------------------------------------------


@dataclass
class _Group:
    indexes: list[int]


def _precompile(items: list[Token], name: str) -> RestrictedTemplate:
    """Inline the CSS of the composed token stream once and compile the result.

    Raise :class:`_NotPrecompilable` when the result could differ from inlining each
    rendered email (see the module docstring for the rules).
    """
    nonce = secrets.token_hex(6)

    def placeholder(index: int) -> str:
        return f"tm{nonce}p{index}e"

    scanner = _HtmlScanner()
    parts: list[str] = []
    contexts: dict[int, str] = {}
    stack: list[_Group] = []
    groups: list[_Group] = []
    markup_tags: set[str] = set()
    blocks_in_data = False
    for index, token in enumerate(items):
        if token.token_type is TokenType.TEXT:
            scanner.feed(token.contents, len(stack))
            parts.append(token.contents)
            continue
        context = scanner.context()
        contexts[index] = context
        contents = token.contents
        if token.token_type is TokenType.BLOCK:
            tag = contents.split()[0] if contents.split() else ""
            if tag in BLOCK_TAGS:
                stack.append(_Group([index]))
                blocks_in_data = blocks_in_data or context == "data"
            elif tag in INTERMEDIATE_TAGS and stack:
                stack[-1].indexes.append(index)
            elif tag in _END_TAGS and stack:
                stack[-1].indexes.append(index)
                groups.append(stack.pop())
            if tag == "filter":
                raise _NotPrecompilable("{% filter %} rewrites the HTML of its block")
        for literal in re.findall(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', contents):
            if any(char in literal[1:-1] for char in "<>\"'"):
                raise _NotPrecompilable(f"the string {literal} may output HTML")
        for filter_name in re.findall(r"\|\s*(\w+)", contents):
            if filter_name in MARKUP_FILTERS:
                if context != "data":
                    raise _NotPrecompilable(f"|{filter_name} outputs HTML inside a tag")
                markup_tags |= MARKUP_FILTERS[filter_name]
        parts.append(f"<!--{placeholder(index)}-->" if context == "data" else placeholder(index))
    if scanner.style_in_block:
        raise _NotPrecompilable("a <style> element is inside a block tag")

    source = "".join(parts)
    static = [
        i
        for i, token in enumerate(items)
        if token.token_type is not TokenType.TEXT or token.contents.strip()
    ]
    if static and (
        items[static[0]].token_type is not TokenType.TEXT
        or items[static[-1]].token_type is not TokenType.TEXT
    ):
        raise _NotPrecompilable("the document starts or ends with a template tag")

    # Parse exactly as premailer.transform() does with a string.
    stripped = source.strip()
    tree = etree.fromstring(stripped, etree.HTMLParser()).getroottree()
    page = tree.getroot()
    keep_doctype = stripped.startswith(tree.docinfo.doctype)

    slots = _locate_placeholders(page, nonce, contexts)
    for group in groups:
        if len({slots[index] for index in group.indexes}) != 1:
            raise _NotPrecompilable(
                f"the block on line {items[group.indexes[0]].lineno} does not contain whole "
                "elements"
            )
    _check_css(page, nonce, markup_tags, structural_risk=blocks_in_data or bool(markup_tags))

    _premailer().transform(page, pretty_print=False)

    # Mark the values libxml2 will URI-escape, so the rendered values are escaped too.
    has_placeholder = re.compile(rf"tm{nonce}p\d+e").search
    for element in page.iter(etree.Element):
        for attribute, value in element.attrib.items():
            if (
                attribute in _URI_ATTRIBUTES or (attribute == "name" and element.tag == "a")
            ) and has_placeholder(value):
                # libxml2 drops leading blanks of these values; the marker must not
                # turn them into escaped inner blanks.
                value = value.lstrip(_LEADING_BLANKS)
                element.set(attribute, f"tm{nonce}us{value}tm{nonce}ue")

    output = etree.tostring(
        tree if keep_doctype else page, method="html", pretty_print=False, encoding="utf-8"
    ).decode("utf-8")
    return _reassemble(output, items, nonce, contexts, name)


def _locate_placeholders(page: Any, nonce: str, contexts: dict[int, str]) -> dict[int, Any]:
    """Map each placeholder to its slot (parent, attribute or text) in the parsed tree."""
    comment_form = re.compile(rf"tm{nonce}p(\d+)e")
    found: list[int] = []
    slots: dict[int, Any] = {}

    def record(text: str | None, slot: Any, kind: str) -> None:
        for match in comment_form.finditer(text or ""):
            index = int(match.group(1))
            if contexts.get(index) not in kind:
                raise _NotPrecompilable("lxml moved a template tag")
            found.append(index)
            slots[index] = slot

    for node in page.iter():
        if node.tag is etree.Comment:
            match = comment_form.fullmatch(node.text or "")
            parent = node.getparent()
            if match:
                if parent is None or parent.tag in ("html", "head"):
                    raise _NotPrecompilable("a template tag sits directly in <html> or <head>")
                record(node.text, ("data", parent), ("data",))
            else:
                record(node.text, ("comment", node), ("comment",))
        elif isinstance(node.tag, str):
            for attribute, value in node.attrib.items():
                record(value, ("attr", node, attribute), ("attr",))
            if node.tag in _RCDATA_ELEMENTS:
                record(node.text, ("rcdata", node), ("rcdata",))
            else:
                record(node.text, None, ())
        record(node.tail, None, ())
    if found != sorted(contexts):
        raise _NotPrecompilable("lxml dropped or reordered a template tag")
    return slots


def _check_css(page: Any, nonce: str, markup_tags: set[str], *, structural_risk: bool) -> None:
    """Refuse when an inlinable selector could match differently once rendered."""
    from lxml.cssselect import CSSSelector

    has_placeholder = re.compile(rf"tm{nonce}p\d+e").search
    dynamic = {
        attribute.lower()
        for element in page.iter(etree.Element)
        for attribute, value in element.attrib.items()
        if has_placeholder(value)
    }
    for element in page.iter("style"):
        if any(has_placeholder(value) for value in element.attrib.values()):
            raise _NotPrecompilable("a <style> attribute holds a template tag")
    for image in page.iter("img"):
        if has_placeholder(image.get("style", "")):
            raise _NotPrecompilable("an <img> style attribute holds a template tag")
    for selector in _inlinable_selectors(page):
        facts = _selector_facts(selector)
        if facts.attributes & dynamic:
            names = ", ".join(sorted(facts.attributes & dynamic))
            raise _NotPrecompilable(
                f"the selector {selector!r} depends on {names}, which holds a template tag"
            )
        if facts.structural and structural_risk:
            raise _NotPrecompilable(
                f"the structural selector {selector!r} meets blocks that add or remove elements"
            )
        could_match_markup = (
            facts.subject_tag in markup_tags
            if facts.subject_tag
            else not facts.subject_needs_class_or_id
        )
        if markup_tags and could_match_markup:
            raise _NotPrecompilable(
                f"the selector {selector!r} could match HTML made by a filter at render time"
            )
        if "style" in dynamic:
            for element in CSSSelector(selector)(page):
                if has_placeholder(element.get("style", "")):
                    raise _NotPrecompilable(
                        f"the selector {selector!r} matches an element "
                        "whose style attribute holds a template tag"
                    )


def _reassemble(
    output: str, items: list[Token], nonce: str, contexts: dict[int, str], name: str
) -> RestrictedTemplate:
    """Split premailer's output at the placeholders back into a Django token stream."""
    pattern = re.compile(rf"<!--tm{nonce}p(\d+)e-->|tm{nonce}p(\d+)e|tm{nonce}u([se])")
    tokens: list[Token] = []
    seen: list[int] = []
    position = 0
    for match in pattern.finditer(output):
        if match.start() > position:
            tokens.append(_text_token(output[position : match.start()]))
        position = match.end()
        comment_index, bare_index, uri = match.groups()
        if uri:
            tag = "tm_uri_attribute" if uri == "s" else "tm_end_uri_attribute"
            tokens.append(Token(TokenType.BLOCK, tag))
            continue
        index = int(comment_index or bare_index)
        if (comment_index is not None) != (contexts.get(index) == "data"):
            raise _NotPrecompilable("premailer changed a placeholder")
        seen.append(index)
        tokens.append(items[index])
    if position < len(output):
        tokens.append(_text_token(output[position:]))
    if seen != sorted(contexts):
        raise _NotPrecompilable("premailer dropped or reordered a template tag")
    try:
        return RestrictedTemplate(tokens, name, [allowed_library, _internal_library])
    except TemplateSyntaxError as err:
        raise _NotPrecompilable(f"the inlined template does not parse: {err}") from err


# --- Compiled entries and the cache ---------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    """Everything render_email needs for one (template revision, layout revision)."""

    sources: tuple[str, ...]
    subject: Template
    text: Template | None
    html: Template
    inline_per_email: bool
    reason: str = ""


def _sources(template: Any, layout: Any) -> tuple[str, ...]:
    values = [template.subject, template.html, template.text]
    if layout is not None:
        values.extend(getattr(layout, field, "") for field in _LAYOUT_FIELDS)
    return tuple("" if value is None else str(value) for value in values)


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
        return _Compiled(sources, subject, text, html, inline_per_email=False)
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
        return _Compiled(sources, subject, text, inlined, inline_per_email=False)
    return _Compiled(sources, subject, text, html, inline_per_email=True, reason=reason)


def inline_cache_key(template_pk: Any, layout_pk: Any) -> tuple[str, Any, Any]:
    """The cache key of a (template revision, layout revision) pair.

    The one function used both to look entries up and to invalidate them. Revisions are
    immutable, so a key never goes stale; ``layout_pk`` is None for a template without a
    layout.
    """
    return ("transactional_mail.inline", template_pk, layout_pk)


_cache: OrderedDict[tuple[str, Any, Any], _Compiled] = OrderedDict()
_cache_lock = threading.Lock()


def invalidate_inline_cache(template_pk: Any, layout_pk: Any) -> None:
    """Drop the compiled entry of one (template revision, layout revision) pair."""
    with _cache_lock:
        _cache.pop(inline_cache_key(template_pk, layout_pk), None)


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
    key = inline_cache_key(template.pk, layout_pk)
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


# ======================================================================================
# Rendering
# ======================================================================================

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
) -> RenderedEmail:
    """Render one email.

    ``template`` has ``pk``, ``subject``, ``html`` and ``text`` (a template revision);
    ``layout`` is None or has ``pk``, ``html``, ``css``, ``logo_url``, ``primary_color``,
    ``background_color``, ``text_color`` and ``footer_html`` (a layout revision). A None
    ``pk`` (unsaved edits in an admin preview) is compiled without being cached.
    ``context`` is the JSON snapshot; templates see a read-only copy. With ``language``,
    rendering runs under ``translation.override(language)`` (date names, number formats).

    Raise :class:`~transactional_mail.exceptions.RenderError` when the stored template
    does not compile or the context holds something other than JSON data.
    """
    data = freeze_context(context)
    override = translation.override(language) if language else contextlib.nullcontext()
    with override:
        compiled = _compiled(template, layout)
        try:
            subject, html, text = _render_parts(compiled, data)
        except RenderError:
            raise
        except Exception as err:
            raise RenderError(
                f"Template {getattr(template, 'pk', None)} failed to render: {err!r}"
            ) from err
    return RenderedEmail(subject=one_line(subject), html=html, text=text)


def _render_parts(compiled: _Compiled, data: dict[str, Any]) -> tuple[str, str, str]:
    """Subject, HTML and text of one email, under one render budget."""
    with render_budget() as budget:
        rendered = compiled.html.render(Context(dict(data), autoescape=True))
        html = rendered
        if compiled.inline_per_email:
            html = inline_css(rendered)
            # Inlining adds style attributes: what it adds counts too.
            budget.charge_output(len(html) - len(rendered))
        subject = compiled.subject.render(Context(dict(data), autoescape=False))
        if compiled.text is not None:
            text = compiled.text.render(Context(dict(data), autoescape=False)).strip()
        else:
            text = html_to_text(html)
    return subject, html, text


# ======================================================================================
# HTML to text
# ======================================================================================

_SKIPPED = frozenset({"head", "style", "script", "title", "template", "noscript"})
# Blank line before and after.
_PARAGRAPHS = frozenset(
    {
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "blockquote",
        "pre",
        "ul",
        "ol",
        "dl",
        "hr",
        "address",
        "figure",
    }
)
# Line break before and after.
_BLOCKS = frozenset(
    {
        "div",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "nav",
        "aside",
        "center",
        "tr",
        "dt",
        "dd",
        "li",
        "form",
        "fieldset",
        "caption",
        "tbody",
        "thead",
        "tfoot",
        "body",
        "html",
        "figcaption",
    }
)
_HIDDEN = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\n\r\f\v]+")
# Zero-width characters pad preheaders; they are noise in a text part.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u034f\u00ad]")


class _TextWriter:
    """Walks an lxml tree and writes readable plain text.

    Line breaks are *requested* (``pending``) and only written before the next visible
    text, so whitespace between block elements never turns into stray blank lines.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pending = 0  # newlines owed before the next text (2 = a blank line)
        self.prefix = ""  # a list bullet owed before the next text
        self.gap = False  # a table cell started: two spaces before the next text
        self.line_start = True
        self.lists: list[list[Any]] = []  # [tag, items so far] per open list
        self.pre = 0
        # The text part counts toward the render's budget as it is written.
        self.budget = current_budget()

    def newline(self, count: int) -> None:
        self.pending = max(self.pending, count) if self.parts else 0

    def write(self, text: str) -> None:
        if (self.pending or self.line_start) and not text.strip(" "):
            return
        if self.pending:
            self.parts.append("\n" * self.pending)
            self.pending, self.gap, self.line_start = 0, False, True
        if self.line_start:
            text = text.lstrip(" ")
            if not text:
                return
            text, self.prefix = self.prefix + text, ""
        elif self.gap:
            text = "  " + text.lstrip(" ")
        elif text.startswith(" ") and self.parts[-1].endswith(" "):
            text = text[1:]
        self.gap = self.line_start = False
        if text:
            if self.budget is not None:
                self.budget.charge_output(len(text))
            self.parts.append(text)

    def text(self, value: str | None) -> None:
        if not value:
            return
        if not self.pre and value.isspace():  # most text nodes: indentation
            self.write(" ")
            return
        if not value.isascii():
            value = _INVISIBLE.sub("", value).replace("\xa0", " ")
        if not self.pre:
            self.write(_SPACES.sub(" ", value))
            return
        for number, line in enumerate(value.replace("\r\n", "\n").split("\n")):
            if number:
                self.pending = max(self.pending, 1)
            self.write(line.replace("\t", "    "))

    def element(self, element: Any) -> None:
        tag = element.tag
        if not isinstance(tag, str):  # a comment or processing instruction
            self.text(element.tail)
            return
        style = element.get("style")
        hidden = (
            style and ("none" in style or "mso-hide" in style) and _HIDDEN.search(style)
        ) or element.get("hidden") is not None
        if tag in _SKIPPED or hidden:
            self.text(element.tail)
            return
        self._break(tag)
        if tag == "br":
            self.pending = min(self.pending + 1, 2)
            if self.line_start and not self.pending:
                self.pending = 1
        elif tag == "hr":
            self.write("-" * 20)
        elif tag == "img":
            self.text(element.get("alt"))
        elif tag in ("td", "th"):
            self.gap = True
        elif tag in ("ul", "ol"):
            self.lists.append([tag, 0])
        elif tag == "li":
            self._bullet()
        elif tag == "pre":
            self.pre += 1
        start = len(self.parts)
        self.text(element.text)
        for child in element:
            self.element(child)
        if tag == "a":
            self._link(element, start)
        elif tag in ("ul", "ol"):
            self.lists.pop()
        elif tag == "pre":
            self.pre -= 1
        self._break(tag)
        self.text(element.tail)

    def _break(self, tag: str) -> None:
        if tag in ("ul", "ol") and self.lists:  # a nested list: no blank line
            self.newline(1)
        elif tag in _PARAGRAPHS:
            self.newline(2)
        elif tag in _BLOCKS:
            self.newline(1)

    def _bullet(self) -> None:
        depth = min(max(len(self.lists), 1), _MAX_LIST_INDENT)
        bullet = "- "
        if self.lists and self.lists[-1][0] == "ol":
            self.lists[-1][1] += 1
            bullet = f"{self.lists[-1][1]}. "
        self.prefix = "  " * (depth - 1) + bullet

    def _link(self, element: Any, start: int) -> None:
        href = (element.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:")):
            return
        label = " ".join("".join(self.parts[start:]).split())
        shown = href.removeprefix("mailto:")
        if not label:
            self.write(shown)
        elif label not in (href, shown):
            self.write(f" ({shown})")

    def result(self) -> str:
        return "\n".join(line.rstrip() for line in "".join(self.parts).split("\n"))


# Deeper lists are indented no further (each level costs two spaces per line).
_MAX_LIST_INDENT = 8


def html_to_text(html: str) -> str:
    """Derive a readable plain-text part from an email's HTML.

    ``<head>``, ``<style>``, ``<script>`` and hidden elements (``display:none``, e.g. a
    preheader) are dropped; block elements become line breaks and paragraphs blank lines;
    ``<a href>`` becomes ``text (url)`` unless the text is the URL; list items start with
    ``- `` (or ``1. `` in ``<ol>``); table cells are separated by two spaces; entities are
    decoded and runs of blank lines collapsed.

    lxml (already required by premailer, BSD-licensed) parses the HTML: it is about ten
    times faster than ``html.parser``, and this runs for every email without a text part.
    """
    if not html or not html.strip():
        return ""
    root = etree.fromstring(html, etree.HTMLParser())
    if root is None:
        return ""
    writer = _TextWriter()
    writer.element(root)
    return writer.result()
