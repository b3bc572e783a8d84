"""Where in HTML syntax a template tag sits: the scanner behind the precompiler's placeholders.

:class:`_HtmlScanner` reads the static text of a composed template between its tags and
tells, at each tag, whether it sits in text, in a quoted attribute value, in RCDATA or
in a comment (where :mod:`transactional_mail.rendering.precompile` can put a
placeholder), or somewhere a placeholder cannot go: then it raises
:class:`_NotPrecompilable` and the template is inlined per email.
"""

from __future__ import annotations

import re

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
