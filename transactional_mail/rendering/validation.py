"""Source validation on save: the checks the models' ``clean()`` runs, naming the line.

Templates are staff-edited, so they are checked on save by
:func:`validate_template_source`, :func:`validate_html_source`,
:func:`validate_layout_source` and :func:`validate_css_source`, which name the offending
line; a template is also rendered with its sample context
(:func:`validate_template_budget`) and a layout with its brand values
(:func:`validate_layout_budget`) under the render budget of
:mod:`transactional_mail.rendering.budget`, which bounds every render.

Stylesheets load nothing. On save, ``@import``, ``url()`` other than http(s)/data/cid and
``<link rel="stylesheet">`` are refused (in static text: what template tags assemble at
render time is not seen there). Whatever is stored, premailer parses CSS with a cssutils
parser whose fetcher refuses every URL (:mod:`transactional_mail.rendering.inlining`), so
neither validation, nor inlining, nor rendering ever opens a URL or a file.
"""

from __future__ import annotations

import contextlib
import html as html_module
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.template import TemplateSyntaxError
from django.template.base import Lexer, Token, TokenType
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..conf import get_setting
from ..exceptions import RenderError, RenderLimitExceeded
from .budget import render_budget
from .compiled import _compile
from .compose import _render_parts
from .context import freeze_context
from .engine import _error_line, _parse, _syntax_error_message, _tokenize
from .inlining import _STYLE_ELEMENT, inline_css
from .layout import (
    _LAYOUT_PARTS,
    TRANSLATABLE_FIELDS,
    _brand_context,
    _render_brand,
    _render_layout,
    _style_element,
    translated,
)
from .library import _END_TAGS, ALLOWED_TAGS, BLOCK_TAGS, INTERMEDIATE_TAGS

__all__ = [
    "validate_css_source",
    "validate_html_source",
    "validate_layout_budget",
    "validate_layout_source",
    "validate_template_budget",
    "validate_template_source",
    "validate_translations",
    "translation_problems",
    "TranslationProblem",
]

logger = logging.getLogger(__name__)


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


def validate_template_source(source: str, *, field_name: str = "html") -> None:
    """Check that ``source`` compiles in the restricted engine.

    Raise :class:`~django.core.exceptions.ValidationError` (keyed by ``field_name``, for
    ``Model.clean()``) whose message starts with ``Line N:`` for a syntax error, a tag or
    filter outside the allow-list, or a ``{% load %}``.
    """
    source = source or ""
    tokens = _tokenize(source)
    _refuse_stray_openers(tokens, field_name)
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


_STRAY_OPENER = re.compile(r"\{\{|\{%")


def _refuse_stray_openers(tokens: list[Token], field_name: str) -> None:
    """Refuse a ``{{`` or ``{%`` the lexer left in text: it was never closed on its line,
    so Django would send the raw braces. ``{% verbatim %}`` blocks may hold them."""
    verbatim = False
    for token in tokens:
        if token.token_type is TokenType.BLOCK:
            name = token.contents.split()[:1]
            if name == ["verbatim"]:
                verbatim = True
            elif name == ["endverbatim"]:
                verbatim = False
            continue
        if token.token_type is not TokenType.TEXT or verbatim:
            continue
        match = _STRAY_OPENER.search(token.contents)
        if match:
            opener = match.group()
            closer = "}}" if opener == "{{" else "%}"
            line = token.lineno + token.contents.count("\n", 0, match.start())
            raise _invalid(field_name, line, _(
                "%(opener)s is not closed by %(closer)s on the same line, so it would be sent "
                "as raw text. Close it, or write {%% templatetag openvariable %%} or "
                "{%% templatetag openblock %%} for literal braces."
            ) % {"opener": opener, "closer": closer})


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
        css = _rendered_css(source or "", layout)
    except RenderLimitExceeded as err:
        field = field_name if err.template_name == "layout css" else "footer_html"
        raise _invalid(field, err.line, err.reason) from err
    problem = _rendered_css_problem(css)
    if problem:  # made by template tags or brand values: no line to name
        raise _invalid(field_name, None, problem)
    document = f"<html><head>{_style_element(css)}</head><body><p>x</p></body></html>"
    try:
        inline_css(document)
    except Exception as err:  # premailer/cssselect raise many unrelated types
        raise _invalid(
            field_name, None, _("The CSS cannot be inlined: %(error)s") % {"error": err}
        ) from err


def _rendered_css(source: str, layout: Any) -> str:
    """The layout CSS ``source`` rendered with the brand values of ``layout``, under the
    render budget."""
    with render_budget():
        return _render_brand(source, _brand_context(layout), autoescape=False,
                             name="layout css")


def _rendered_css_problem(css: str) -> str | None:
    """What loads a resource in rendered layout CSS, as a message, or None."""
    problem = _stylesheet_problem(css)
    if problem is None:
        return None
    return _("As rendered with the brand values: %(problem)s") % {"problem": problem[1]}


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


#: A language code as ``LANGUAGES`` writes it: ``fr``, ``pt-br``, ``zh-hans``. Used with
#: ``fullmatch``: ``$`` would also match before a final newline (``"fr\n"``).
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*")


@dataclass(frozen=True)
class TranslationProblem:
    """What is wrong with a layout translation: its language, value (``""``: the whole
    translation) and the message."""

    language: str
    field: str
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.language, self.field, self.message) if part)


def translation_problems(layout: Any) -> list[TranslationProblem]:
    """What is wrong with ``layout.translations``: it maps language codes to the
    translatable brand values (``TRANSLATABLE_FIELDS``) as text; a translated footer must
    compile, a help link be a full URL, and the layout render under budget with each
    translation (checked once the values are right)."""
    translations = getattr(layout, "translations", None)
    if translations in (None, ""):
        return []
    if not isinstance(translations, dict):
        return [TranslationProblem("", "", 'Give an object of language codes, e.g. '
                                           '{"fr": {"legal_text": "..."}}.')]
    problems: list[TranslationProblem] = []
    for code, values in translations.items():
        if not isinstance(code, str) or not _LANGUAGE_CODE.fullmatch(code):
            problems.append(TranslationProblem(str(code), "", "not a language code: write "
                                               "it as LANGUAGES does, in lower case (fr, "
                                               "pt-br)."))
        elif not isinstance(values, dict):
            problems.append(TranslationProblem(code, "", 'give an object of values, e.g. '
                                                         '{"legal_text": "..."}.'))
        else:
            problems.extend(_translated_value_problems(code, values))
    if problems:
        return problems
    default_css = _default_css(layout)
    for code in translations:
        translation_layout = translated(layout, code)
        try:
            _render_layout(translation_layout)
            css = _rendered_css(getattr(layout, "css", "") or "", translation_layout)
        except RenderLimitExceeded as err:
            field = "footer_html" if err.template_name == "layout footer" else ""
            problems.append(TranslationProblem(code, field, err.reason))
            continue
        except (RenderError, TemplateSyntaxError) as err:
            problems.append(TranslationProblem(code, "", str(err)))
            continue
        # CSS the translation leaves as the default values render it is the css field's
        # business (validate_css_source): report only what the translated values change.
        problem = _rendered_css_problem(css) if css != default_css else None
        if problem:
            problems.append(TranslationProblem(code, "", problem))
    return problems


def _default_css(layout: Any) -> str | None:
    """The layout CSS rendered with the default brand values; None when it does not
    render (the css field's own checks say why)."""
    try:
        return _rendered_css(getattr(layout, "css", "") or "", layout)
    except (RenderError, TemplateSyntaxError):
        return None


def _translated_value_problems(code: str, values: dict) -> list[TranslationProblem]:
    problems = []
    for name, value in values.items():
        if name not in TRANSLATABLE_FIELDS:
            problems.append(TranslationProblem(code, str(name), "cannot be translated; these "
                                               f"can: {', '.join(TRANSLATABLE_FIELDS)}."))
        elif not isinstance(value, str):
            problems.append(TranslationProblem(code, name, "must be text."))
        elif name == "footer_html":
            try:
                validate_html_source(value, field_name="footer_html")
            except ValidationError as err:
                problems.extend(TranslationProblem(code, name, message)
                                for message in err.messages)
        elif name == "help_url" and value.strip():
            try:
                URLValidator(schemes=["https", "http"])(value.strip())
            except ValidationError:
                problems.append(TranslationProblem(code, name, "enter a full URL "
                                                               "(https://...)."))
    return problems


def validate_translations(layout: Any) -> None:
    """Raise one ``ValidationError`` listing :func:`translation_problems`, if any."""
    problems = translation_problems(layout)
    if problems:
        raise ValidationError([str(problem) for problem in problems], code="translations")


def validate_template_budget(
    template: Any, layout: Any, context: Mapping[str, Any] | None, *, language: str | None = None
) -> None:
    """Render ``template`` in ``layout`` with a sample ``context`` under the render budget.

    The same render as :func:`render_email`, before CSS inlining. Raise
    ``ValidationError`` keyed by the part (``subject``, ``html`` or ``text``; ``layout``
    when the layout itself is over budget) naming the line when known. Other errors are
    not this check's business (the sample context may simply not fit the template).
    """
    draft = _Draft(pk=None, subject=template.subject, html=template.html, text=template.text,
                   preheader=getattr(template, "preheader", "") or "")
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
    preheader: str = ""


# --- Stylesheets: nothing that makes the server (or a mail client) load a file -------------

_ALLOWED_URL_SCHEMES = frozenset({"http", "https", "data", "cid"})
_URL_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
# A CSS line continuation, and the characters browsers drop anywhere in a URL.
_URL_IGNORED = re.compile(r"\\(?:\r\n|[\n\r\f])|[\t\n\r]")
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
