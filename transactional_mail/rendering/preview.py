"""The preview of unsaved sources: what the admin's editor renders, and what it warns about.

Pure, like the rest of the package: the admin hands it the subject, HTML and text being
typed, a layout revision (or None) and the sample context as JSON text, and gets back a
:class:`Preview`: the rendered parts from :func:`~transactional_mail.rendering.render_email`
(the worker's own renderer, under the same budget), or the errors with their lines, and
the warnings staff should see before a customer does:

* ``missing_variable``: a variable the template uses that the context does not have (it
  would render as nothing); found by walking the compiled template's nodes, with loop and
  ``{% with %}`` variables in scope;
* ``no_text``: the text part is empty; ``derived_text``: it is derived from the HTML;
* ``gmail_clipping``: the HTML is over Gmail's clipping size (~102 KB);
* ``image_alt``: an image without an ``alt`` attribute;
* ``insecure_link`` / ``relative_link``: an ``http:`` link, or one that is relative or
  empty (it leads nowhere from a mail client).

The JSON context is hostile input (it comes from a form): :func:`parse_context` bounds its
size and depth and says in plain words what is wrong with it.

One module of over 400 lines, on purpose: the context's paths, the variable walk and the
HTML scan exist only to build one :class:`Preview`, and each reads the others' results
(the paths the panel lists are the ones the walk checks against).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from django.core.exceptions import ValidationError
from django.template import Node, NodeList
from django.template.base import FilterExpression, Variable
from django.template.defaulttags import (
    CycleNode,
    FilterNode,
    FirstOfNode,
    ForNode,
    IfNode,
    RegroupNode,
    WidthRatioNode,
    WithNode,
)

from ..exceptions import RenderError, RenderLimitExceeded
from .compose import _render_email
from .engine import _parse, _tokenize
from .links import neutralize_urls
from .secret_use import parts_problems
from .validation import _Draft, validate_html_source, validate_template_source

__all__ = [
    "GMAIL_CLIP_BYTES",
    "MAX_CONTEXT_CHARS",
    "Preview",
    "PreviewMessage",
    "context_paths",
    "html_warnings",
    "missing_variables",
    "parse_context",
    "preview_email",
]

#: Gmail hides the rest of a message whose HTML is over about 102 KB ("[Message clipped]").
GMAIL_CLIP_BYTES = 102 * 1024
#: The longest JSON context text a preview accepts.
MAX_CONTEXT_CHARS = 200_000
#: How deeply a preview context may nest (json.loads would otherwise recurse on it).
MAX_CONTEXT_DEPTH = 20
#: At most this many dotted paths are listed beside the editor.
MAX_PATHS = 300

_PARTS = ("subject", "preheader", "html", "text")


@dataclass(frozen=True)
class PreviewMessage:
    """A warning or an error: a stable ``code``, the words, and where (part and line)."""

    code: str
    message: str
    part: str = ""
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "part": self.part,
                "line": self.line}


@dataclass(frozen=True)
class Preview:
    """The rendered parts (empty when ``errors``), the warnings and the errors."""

    subject: str = ""
    html: str = ""
    text: str = ""
    warnings: tuple[PreviewMessage, ...] = ()
    errors: tuple[PreviewMessage, ...] = ()
    variables: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "html": self.html,
            "text": self.text,
            "warnings": [warning.as_dict() for warning in self.warnings],
            "errors": [error.as_dict() for error in self.errors],
            "variables": list(self.variables),
        }


# --- The context: JSON text from a form --------------------------------------------------


def parse_context(text: str | None) -> dict[str, Any]:
    """Parse the preview context: a JSON object, bounded in size and depth.

    Raise ``ValidationError`` with a message staff can act on (the line and column of a
    syntax error, what the top level should be).
    """
    text = (text or "").strip()
    if not text:
        return {}
    if len(text) > MAX_CONTEXT_CHARS:
        raise ValidationError(
            f"The sample context is {len(text):,} characters long; at most "
            f"{MAX_CONTEXT_CHARS:,} can be previewed."
        )
    depth = deepest = 0
    in_string = escaped = False
    for char in text:  # json.loads recurses: refuse deep nesting before it does
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    if deepest > MAX_CONTEXT_DEPTH:
        raise ValidationError(
            f"The sample context nests {deepest} levels deep; at most {MAX_CONTEXT_DEPTH}."
        )
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as err:
        raise ValidationError(
            f"The sample context is not valid JSON: {err.msg} (line {err.lineno}, "
            f"column {err.colno})."
        ) from None
    except ValueError as err:  # NaN/Infinity, or an integer too long to convert
        raise ValidationError(f"The sample context is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValidationError(
            'The sample context must be a JSON object, e.g. {"order": {"number": "A-1"}}, '
            f"not {type(data).__name__ if data is not None else 'null'}."
        )
    return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON data")


def context_paths(context: Mapping[str, Any]) -> tuple[str, ...]:
    """The dotted paths a template can use, e.g. ``order.number``, ``order.items.0.name``.

    A list shows its first item's keys (``.0.``); at most ``MAX_PATHS`` paths.
    """
    paths: list[str] = []

    def visit(value: Any, path: str, depth: int) -> None:
        if len(paths) >= MAX_PATHS:
            return
        if path:
            paths.append(path)
        if depth >= MAX_CONTEXT_DEPTH:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                visit(item, f"{path}.{key}" if path else str(key), depth + 1)
        elif isinstance(value, (list, tuple)) and value and path:
            visit(value[0], f"{path}.0", depth + 1)

    visit(context, "", 0)
    return tuple(paths)


# --- Variables the template uses that the context lacks ----------------------------------

_UNKNOWN = object()  # bound by a tag (a loop over nothing known, a with): not checked
_MISSING = object()


def missing_variables(
    source: str, context: Mapping[str, Any], part: str = "html",
    context_name: str = "the sample context",
) -> list[PreviewMessage]:
    """The variables ``source`` uses that ``context`` does not have, with their lines.

    ``context_name`` says which context in the messages ("the sample context").

    Variables bound by ``{% for %}`` (checked against the list's first item when the
    context has one), ``{% with %}``, ``{% cycle ... as %}``, ``{% firstof ... as %}``,
    ``{% widthratio ... as %}`` and ``{% regroup %}`` count as present. A source that does
    not compile has no warnings here (its error is reported instead).
    """
    try:
        template = _parse(_tokenize(source or ""), part)
    except Exception:
        return []
    found: dict[str, int | None] = {}
    _walk(template.nodelist, {}, context, found)
    return [
        PreviewMessage(
            "missing_variable",
            f"{{{{ {path} }}}} is not in {context_name}: it renders as nothing.",
            part,
            line,
        )
        for path, line in found.items()
    ]


def context_from_paths(paths: Iterable[str]) -> dict[str, Any]:
    """A context holding ``paths`` (``order.number``...), for :func:`missing_variables`:
    what lies below a declared path is not known, so it counts as present."""
    context: dict[str, Any] = {}
    for path in paths:
        node = context
        *parents, last = str(path).split(".")
        for name in parents:
            child = node.get(name)
            if not isinstance(child, dict):
                child = node[name] = {}
            node = child
        node.setdefault(last, _UNKNOWN)
    return context


def _walk(nodes: Any, scope: dict[str, Any], context: Mapping[str, Any],
          found: dict[str, int | None]) -> None:
    for wrapper in nodes:
        node = getattr(wrapper, "node", wrapper)  # the engine wraps every node
        line = getattr(getattr(wrapper, "token", None), "lineno", None)

        def check(obj: Any, scope: dict[str, Any] = scope, line: int | None = line) -> None:
            for variable in _variables(obj):
                path = tuple(str(part) for part in variable.lookups)
                if _lookup(path, scope, context) is _MISSING:
                    found.setdefault(".".join(path), line)

        if isinstance(node, ForNode):
            check(node.sequence)
            inner = {**scope, "forloop": _UNKNOWN}
            first = _UNKNOWN
            sequence = getattr(node.sequence, "expression", node.sequence)
            if len(node.loopvars) == 1 and not sequence.filters and _is_variable(sequence):
                values = _lookup(tuple(sequence.var.lookups), scope, context)
                if isinstance(values, (list, tuple)) and values:
                    first = values[0]
            for name in node.loopvars:
                inner[name] = first
            _walk(node.nodelist_loop, inner, context, found)
            _walk(node.nodelist_empty, scope, context, found)
        elif isinstance(node, WithNode):
            check(node.extra_context)
            _walk(node.nodelist, {**scope, **dict.fromkeys(node.extra_context, _UNKNOWN)},
                  context, found)
        elif isinstance(node, IfNode):
            for condition, nodelist in node.conditions_nodelists:
                check(condition)
                _walk(nodelist, scope, context, found)
        elif isinstance(node, RegroupNode):
            check(node.target)  # its expression is looked up on each item, not the context
            scope[node.var_name] = _UNKNOWN
        elif isinstance(node, FilterNode):  # {% filter upper %}: "var|upper" inside
            _walk(node.nodelist, scope, context, found)
        else:
            check(node)
            for name in ("asvar", "variable_name"):
                if isinstance(node, (CycleNode, FirstOfNode, WidthRatioNode)) and getattr(
                    node, name, None
                ):
                    scope[getattr(node, name)] = _UNKNOWN
            for attr in getattr(node, "child_nodelists", ()):
                _walk(getattr(node, attr, None) or (), scope, context, found)


def _is_variable(expression: Any) -> bool:
    return isinstance(expression, FilterExpression) and isinstance(
        expression.var, Variable
    ) and expression.var.lookups is not None


def _variables(obj: Any, depth: int = 0) -> Iterator[Variable]:
    """The context variables in a node's expressions (filters' arguments too)."""
    if depth > 8 or obj is None or isinstance(obj, (str, int, float, NodeList)):
        return
    if isinstance(obj, FilterExpression):
        if _is_variable(obj):
            yield obj.var
        for _func, args in obj.filters:
            for is_lookup, arg in args:
                if is_lookup and isinstance(arg, Variable) and arg.lookups is not None:
                    yield arg
    elif isinstance(obj, Variable):
        if obj.lookups is not None:
            yield obj
    elif isinstance(obj, Mapping):
        for value in obj.values():
            yield from _variables(value, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _variables(value, depth + 1)
    elif depth == 0 or not isinstance(obj, Node):
        # A node's own attributes, a smartif operator (first/second/value), a loop sequence.
        for name, value in getattr(obj, "__dict__", {}).items():
            if name not in {"token", "origin", "node"} and not name.startswith("nodelist"):
                yield from _variables(value, depth + 1)


def _lookup(path: tuple[str, ...], scope: Mapping[str, Any],
            context: Mapping[str, Any]) -> Any:
    head, *rest = path
    if head in scope:
        value = scope[head]
    elif head in context:
        value = context[head]
    else:
        return _MISSING
    for part in rest:
        if value is _UNKNOWN:
            return _UNKNOWN
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, (list, tuple)) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


# --- The rendered HTML: size, images, links ----------------------------------------------

_SAFE_SCHEMES = ("https:", "mailto:", "tel:", "cid:", "data:", "sms:")


class _HTMLScanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[tuple[str, str], PreviewMessage] = {}

    def _add(self, code: str, message: str) -> None:
        self.found.setdefault((code, message), PreviewMessage(code, message, "html"))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            if "alt" not in values:
                self._add("image_alt", f'An image has no alt text: <img src="'
                          f'{_short(values.get("src") or "")}">. Add alt="..." '
                          "(alt=\"\" for a decorative image).")
            self._url(values.get("src"), "An image")
        elif tag == "a" and "href" in values:
            self._url(values.get("href"), "A link")

    handle_startendtag = handle_starttag

    def _url(self, url: str | None, what: str) -> None:
        url = "".join((url or "").split())
        lowered = url.lower()
        if what == "A link" and lowered.startswith("#") and len(url) > 1:
            return
        if lowered.startswith(_SAFE_SCHEMES):
            return
        if lowered.startswith("http:"):
            self._add("insecure_link", f"{what} uses http: {_short(url)}. Use https:.")
        elif not url:
            self._add("relative_link", f"{what} has an empty address: it leads nowhere "
                      "(is its variable missing?).")
        elif ":" in url.split("/", 1)[0]:
            self._add("relative_link", f"{what} uses a scheme mail clients refuse: "
                      f"{_short(url)}.")
        else:
            self._add("relative_link", f"{what} is relative: {_short(url)}. In an email "
                      "every address must be absolute (https://...).")


def _short(value: str, length: int = 80) -> str:
    return value if len(value) <= length else value[: length - 1] + "…"


def html_warnings(html: str, text: str) -> list[PreviewMessage]:
    """Warnings about a rendered email: its size, text part, images and links."""
    warnings: list[PreviewMessage] = []
    if not text.strip():
        warnings.append(PreviewMessage(
            "no_text", "The email has no text part: some clients and spam filters read "
            "only that. Write a text version.", "text"))
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        warnings.append(PreviewMessage(
            "gmail_clipping", f"The HTML is {size / 1024:,.0f} KB: Gmail clips messages over "
            "about 102 KB and hides the rest (the footer and unsubscribe links too).",
            "html"))
    scanner = _HTMLScanner()
    scanner.feed(html)
    scanner.close()
    warnings.extend(scanner.found.values())
    return warnings


# --- The preview itself ------------------------------------------------------------------


def preview_email(
    subject: str,
    html: str,
    text: str,
    layout: Any,
    context: Mapping[str, Any],
    *,
    language: str | None = None,
    preheader: str = "",
    secret_keys: Iterable[str] = (),
    unsubscribe_url: str = "",
    preferences_url: str = "",
) -> Preview:
    """Render unsaved sources in ``layout`` (a layout revision or None) with ``context``.

    ``preheader`` is the template's own preview line (blank: the context's ``preheader``).
    ``unsubscribe_url`` and ``preferences_url`` stand in for a non-essential email's
    links (``subscriptions.preview_links``), so the layout's unsubscribe line shows.
    ``secret_keys`` are the keys the template treats as secret: a use of one that could
    leave the email (:mod:`~transactional_mail.rendering.secret_use`) is an error.

    Errors (a source that does not compile, a tag outside the allow-list, a render over
    budget) come back in ``errors`` with their part and line, never as exceptions.
    """
    variables = context_paths(context)
    errors = []
    for part, source, validate in (
        ("subject", subject, validate_template_source),
        ("preheader", preheader, validate_template_source),
        ("html", html, validate_html_source),
        ("text", text, validate_template_source),
    ):
        try:
            validate(source, field_name=part)
        except ValidationError as err:
            errors.extend(
                PreviewMessage("invalid", error.messages[0], part, (error.params or {}).get("line"))
                for error in err.error_dict.get(part, [err])
            )
        except RecursionError:
            errors.append(PreviewMessage("invalid", "The template nests too deeply.", part))
    draft = _Draft(pk=None, subject=subject or "", html=html or "", text=text or "",
                   preheader=preheader or "")
    if not errors:
        errors.extend(PreviewMessage("secret", problem.message, problem.part, problem.line)
                      for problem in parts_problems(draft, secret_keys))
    if errors:
        return Preview(errors=tuple(errors), variables=variables)
    try:
        # Not yet neutralised: a link staff wrote with a refused scheme is warned about.
        rendered = _render_email(draft, layout, context, language=language or None,
                                 unsubscribe_url=unsubscribe_url,
                                 preferences_url=preferences_url)
    except RenderLimitExceeded as err:
        part = err.template_name if err.template_name in _PARTS else "layout"
        message = err.reason[0].upper() + err.reason[1:]
        return Preview(errors=(PreviewMessage("budget", message, part, err.line),),
                       variables=variables)
    except (RenderError, RecursionError) as err:
        return Preview(errors=(PreviewMessage("render", str(err)),), variables=variables)
    warnings = [
        warning
        for part, source in zip(_PARTS, (subject, preheader, html, text), strict=True)
        for warning in missing_variables(source, context, part)
    ]
    if not (text or "").strip() and rendered.text.strip():
        warnings.append(PreviewMessage(
            "derived_text", "The text part is derived from the HTML: check that it reads "
            "well, or write one.", "text"))
    warnings.extend(html_warnings(rendered.html, rendered.text))
    return Preview(subject=rendered.subject, html=neutralize_urls(rendered.html),
                   text=rendered.text,
                   warnings=tuple(warnings), variables=variables)
