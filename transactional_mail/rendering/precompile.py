"""The inline-once CSS precompiler: premailer runs once per revision pair, tags as placeholders.

Mail clients ignore ``<style>``, so CSS is inlined with premailer. Premailer costs about
45 renders, so it must not run per email: for each (template revision, layout revision)
the composed source is inlined *once*, with every template tag replaced by a placeholder,
and the result is compiled and kept in a per-process LRU cache (``INLINE_CACHE_SIZE``
entries, keyed by :func:`~transactional_mail.rendering.compiled.inline_cache_key`). Per
email only the compiled template renders.

Placeholders are HTML comments where a tag sits between elements or in text (lxml keeps
comments where they are, even between table rows, and CSS selectors do not see them) and
plain ``[0-9a-z]`` words inside quoted attribute values, ``<title>`` and comments (the
scanner of :mod:`transactional_mail.rendering.html_scan` tells which). After premailer,
the serialised HTML is split at the placeholders back into Django tokens (the static
text never goes through Django's lexer again, so text in a layout that looks like
template syntax stays text). Attributes that libxml2 URI-escapes on output (``href``,
``src``, ``action``, ``<a name>``) get their rendered value escaped the same way.

This is exact only when premailer's work does not depend on what the tags render. The
compiler checks that before using a precompiled template and otherwise keeps the
*per-email* strategy (render, then inline: always correct, about 45x slower), logging why
(an unexpected error of the precompiler also means per-email: the optimiser can cost
speed, never an email). ``tests/rendering/test_precompile.py`` proves the equality on the
corpus of ``tests/rendering_corpus`` and on hostile context values. A template is
inlined per email when:

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
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.template import Context, Library, Node, TemplateSyntaxError
from django.template.base import Parser, Token, TokenType
from lxml import etree

from .engine import RestrictedTemplate, _text_token
from .html_scan import _RCDATA_ELEMENTS, _HtmlScanner, _NotPrecompilable
from .inlining import _premailer
from .library import _END_TAGS, BLOCK_TAGS, INTERMEDIATE_TAGS, MARKUP_FILTERS, allowed_library
from .selectors import _inlinable_selectors, _selector_facts

# libxml2's HTML serialiser URI-escapes these attributes (href, src, action, name on <a>):
# leading blanks dropped, then every byte outside printable ASCII written as %XX. The
# precompiled template applies the same to the rendered value (tested in
# tests/rendering/test_precompile.py).
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
