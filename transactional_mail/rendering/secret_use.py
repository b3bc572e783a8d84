"""Where a template may use a secret: shown to the reader, never sent to another host.

A secret of the context (``send(..., secret_keys=[...])``, a trigger's ``secret_keys``,
a starter's ``"secret"``) is meant for the recipient's eyes and their click only. A
template author who could put it in an image URL (``<img src="https://x/?u={{ reset_url
|urlencode }}">``), a ``ping`` or a stylesheet would receive every live link when the
email is opened. So a secret may be used only as a bare ``{{ key }}``, no filter:

* in the subject, the preheader and the text part, anywhere;
* in the HTML, in text content (not inside a tag, a comment, ``<style>``, ``<script>``,
  ``<title>``, ``<textarea>``...), or as the whole, double-quoted ``href`` of an ``<a>``
  element that has no ``ping`` and no other template tag or variable in it.

Any other reference to it (a filter, an attribute lookup, an argument of a tag or of a
filter: ``{% if %}``, ``{% with %}``, ``{% for %}``...) is refused. And because the HTML's
structure must be the one read here, an HTML part that uses a secret must also keep every
``{% tag %}`` between elements (a branch cannot open an attribute the next one closes),
write no quote or angle bracket in a string literal (literals are not escaped), apply
no ``{% filter %}`` to markup, use no markup-making filter (``|urlize``...) inside a
tag, and hold no element that sends or re-bases what it holds (``<form>``, ``<select>``,
``<base>``) or parses differently in some clients (``<svg>``, ``<math>``,
``<noscript>``, ``<plaintext>``, ``<![CDATA[``).

:func:`secret_use_problems` reads one source; :func:`template_secret_keys` says which
keys a template key treats as secret before any email exists (for the checks on save
and in the editor's preview); the worker checks each email against its own
``secret_keys`` before rendering it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from django.template.base import Token, TokenType

from ..conf import get_setting
from .engine import _tokenize
from .library import MARKUP_FILTERS

__all__ = ["SecretUseProblem", "parts_problems", "secret_use_problems",
           "template_secret_keys"]

_STARTERS = Path(__file__).resolve().parent.parent / "starters"
# The subject variants of an A/B test (subject_b...) are subjects too.
_PARTS = ("subject", "subject_b", "subject_c", "subject_d", "preheader", "html", "text")
_STARTER_KEY = re.compile(r"^[a-z][a-z0-9_]*$")

# String literals of template tokens (their content is not a variable).
_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*")
_HTML_SPECIAL = re.compile(r"[<>\"'`=&]")
_FILTER_NAME = re.compile(r"\|\s*(\w+)")

# Elements whose content is raw text: a secret there is not text content.
_RAW_TEXT = frozenset({"style", "script", "title", "textarea", "xmp", "iframe", "noembed",
                       "noframes"})
# Elements that send or re-base what the email holds, or that parse differently in some
# clients than here.
_REFUSED_ELEMENTS = frozenset({"base", "form", "select", "option", "datalist", "svg", "math",
                               "noscript", "plaintext"})
# Attributes of a link that make the client send its href somewhere else.
_REFUSED_LINK_ATTRIBUTES = frozenset({"ping", "attributionsrc"})

# In a tag: its end, an attribute (name, = and the opening quote), or a stray / or =.
_ATTRIBUTE = re.compile(r"\s*(?:(/?>)|([^\s/>=][^\s/>=]*)(\s*=\s*([\"']?))?|/|=|\Z)")

_DATA, _TAG, _VALUE, _COMMENT, _RAW, _BOGUS = "data", "tag", "value", "comment", "raw", "bogus"


@dataclass(frozen=True)
class SecretUseProblem:
    """A secret used where it could leave the email: the line and what to do instead."""

    line: int
    message: str
    part: str = ""

    def __str__(self) -> str:
        return f"Line {self.line}: {self.message}"


def template_secret_keys(key: str) -> frozenset[str]:
    """The context keys the template ``key`` treats as secret before an email exists:
    its starter's ``"secret"`` and the ``secret_keys`` of every trigger that sends it."""
    keys = set(_starter_secret_keys(key))
    for definition in (get_setting("TRIGGERS") or {}).values():
        if isinstance(definition, dict) and definition.get("template") == key:
            keys.update(k for k in definition.get("secret_keys") or () if isinstance(k, str))
    return frozenset(keys)


@functools.cache
def _starter_secret_keys(key: str) -> tuple[str, ...]:
    # Read as data (the starters package sits in a layer above the models that call this).
    if not _STARTER_KEY.match(key or ""):
        return ()
    try:
        data = json.loads((_STARTERS / key / "starter.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ()
    secret = data.get("secret") if isinstance(data, dict) else None
    return tuple(k for k in secret or () if isinstance(k, str))


def secret_use_problems(source: str, secret_keys: Iterable[str], *,
                        html: bool) -> list[SecretUseProblem]:
    """Every place ``source`` uses one of ``secret_keys`` in a way it could leak.

    ``html`` says the source is the HTML part (the subject, preheader and text part are
    plain text: a bare ``{{ key }}`` is fine anywhere in them).
    """
    keys = frozenset(secret_keys)
    if not keys or not source:
        return []
    tokens = _tokenize(source)
    problems: list[SecretUseProblem] = []
    bare: list[tuple[Token, str]] = []
    for token in tokens:
        if token.token_type not in (TokenType.VAR, TokenType.BLOCK):
            continue
        for key in sorted(_referenced(token, keys)):
            if token.token_type is TokenType.VAR and token.contents.strip() == key:
                bare.append((token, key))
            else:
                problems.append(SecretUseProblem(token.lineno, _misuse(token, key)))
    if html and (bare or problems):
        problems.extend(_html_problems(tokens, {id(token): key for token, key in bare}))
    return sorted(problems, key=lambda problem: problem.line)


def parts_problems(template: Any, secret_keys: Iterable[str]) -> list[SecretUseProblem]:
    """:func:`secret_use_problems` of every part of ``template`` (a template, a revision
    or unsaved sources with ``subject``, ``preheader``, ``html`` and ``text``), each
    problem naming its part in ``part``."""
    keys = frozenset(secret_keys)
    return [
        replace(problem, part=part)
        for part in _PARTS
        for problem in secret_use_problems(getattr(template, part, "") or "", keys,
                                           html=part == "html")
    ]


def _referenced(token: Token, keys: frozenset[str]) -> set[str]:
    code = _LITERAL.sub('""', token.contents)
    return {name for name in _NAME.findall(code) if name in keys}


def _misuse(token: Token, key: str) -> str:
    if token.token_type is TokenType.BLOCK:
        where = f"in {{% {token.contents.split()[0]} %}}"
    else:
        where = f"in {{{{ {token.contents.strip()} }}}}"
    return (f"the secret {key} is used {where}: a secret can only be shown as "
            f"{{{{ {key} }}}} (no filter, no tag around it), so it cannot be copied, "
            "tested or sent anywhere else.")


@dataclass
class _Tag:
    """The element being read: its name, attributes and what template tokens it holds."""

    name: str
    line: int
    end: bool = False
    attributes: list[str] = field(default_factory=list)
    tokens: int = 0
    secret_href: tuple[str, int] | None = None


class _Scanner:
    """A small HTML tokenizer over a template's static text, told where tokens sit.

    It follows the states that decide what a value means to a mail client: text,
    inside a tag, an attribute value, a comment, the raw text of ``<style>``...
    """

    def __init__(self, secrets: dict[int, str]) -> None:
        self.secrets = secrets
        self.problems: list[SecretUseProblem] = []
        self.state = _DATA
        self.tag: _Tag | None = None
        self.attribute = ""
        self.quote = ""
        self.value = ""  # what the current attribute value holds: text and token marks
        self.raw_end = ""
        self.line = 1

    def refuse(self, line: int, message: str) -> None:
        self.problems.append(SecretUseProblem(line, message))

    # --- Template tokens ----------------------------------------------------------------

    def token(self, token: Token) -> None:
        key = self.secrets.get(id(token))
        if key is not None:
            self.secret(token, key)
        elif token.token_type is TokenType.BLOCK:
            self.block(token)
        else:
            self.variable(token)
        if self.tag is not None:
            self.tag.tokens += 1
        if self.state is _VALUE:
            self.value += "\x00" if key is None else "\x01"
        self.literals(token)

    def secret(self, token: Token, key: str) -> None:
        if self.state is _DATA:
            return
        if (self.state is _VALUE and self.tag is not None and self.tag.name == "a"
                and not self.tag.end and self.attribute == "href" and self.quote == '"'
                and not self.value):
            self.tag.secret_href = (key, token.lineno)
            return
        if self.state is _VALUE and self.attribute == "href" and self.tag.name == "a":
            where = f'in an href that is not exactly href="{{{{ {key} }}}}"'
        elif self.state in (_TAG, _VALUE):
            where = f"inside the tag <{self.tag.name}>"
        elif self.state is _RAW:
            where = f"inside <{self.raw_end}>"
        else:
            where = "inside an HTML comment"
        self.refuse(token.lineno, f"the secret {key} is used {where}. In the HTML a secret "
                    f"can only be text ({{{{ {key} }}}} between tags) or a link's whole "
                    f"address: <a href=\"{{{{ {key} }}}}\">.")

    def block(self, token: Token) -> None:
        name = token.contents.split()[0]
        if name == "filter":
            self.refuse(token.lineno, "{% filter %} cannot be used in an HTML part that "
                        "shows a secret: it could rewrite the markup around the secret.")
        elif self.state is not _DATA:
            self.refuse(token.lineno, f"{{% {name} %}} is inside "
                        f"{'a comment' if self.state is _COMMENT else 'a tag or raw text'}"
                        "; in an HTML part that shows a secret, put template tags between "
                        "elements (e.g. around the whole <img ...>), so every branch "
                        "keeps the markup whole.")

    def variable(self, token: Token) -> None:
        if self.state is _DATA:
            return
        if self.state in (_TAG, _COMMENT, _BOGUS) or (self.state is _VALUE and not self.quote):
            # Its value (maybe empty) could end a name, a comment or an unquoted value
            # where this reading does not.
            self.refuse(token.lineno, f"{{{{ {token.contents.strip()} }}}} is inside a tag "
                        "but not in a quoted attribute value (or inside a comment); in an "
                        "HTML part that shows a secret, write it as name=\"{{ value }}\".")
            return
        filters = set(_FILTER_NAME.findall(_LITERAL.sub('""', token.contents)))
        made = sorted(filters & set(MARKUP_FILTERS))
        if made:
            self.refuse(token.lineno, f"|{made[0]} makes markup; in an HTML part that shows "
                        "a secret it can only be used between elements.")

    def literals(self, token: Token) -> None:
        for literal in _LITERAL.findall(token.contents):
            if _HTML_SPECIAL.search(literal[1:-1]):
                self.refuse(token.lineno, f"the text {literal} holds a character of "
                            "markup (< > \" ' ` = &), which a template writes unescaped; "
                            "in an HTML part that shows a secret, write markup outside "
                            "template tags.")
                return

    # --- Static text --------------------------------------------------------------------

    def text(self, text: str, line: int) -> None:
        self.line = line
        index = 0
        while index < len(text):
            index = getattr(self, f"_{self.state}")(text, index)

    def _lines(self, text: str, start: int, end: int) -> None:
        self.line += text.count("\n", start, end)

    def _data(self, text: str, index: int) -> int:
        found = text.find("<", index)
        if found < 0:
            self._lines(text, index, len(text))
            return len(text)
        self._lines(text, index, found)
        rest = text[found:]
        if rest.startswith("<!--"):
            closer = re.match(r"<!--(-?>)?", rest)
            if closer.group(1):  # <!--> and <!---> close at once
                return found + closer.end()
            self.state = _COMMENT
            return found + 4
        if rest[:9].upper() == "<![CDATA[":
            self.refuse(self.line, "<![CDATA[ cannot be used in an HTML part that shows a "
                        "secret: clients read it differently.")
        if rest.startswith("</>"):
            return found + 3
        match = re.match(r"</?([A-Za-z][^\s/>]*)", rest)
        if not match:
            if re.match(r"<[!?]|</", rest):  # a bogus comment: it ends at the first >
                self.state = _BOGUS
                return found + 2
            return found + 1
        name = (match.group(1) or "!").lower()
        self.tag = _Tag(name=name, line=self.line, end=rest.startswith("</"))
        if name in _REFUSED_ELEMENTS and not self.tag.end:
            self.refuse(self.line, f"<{name}> cannot be used in an HTML part that shows a "
                        "secret: it would send, re-base or hide what the email holds.")
        self.state = _TAG
        return found + match.end()

    def _comment(self, text: str, index: int) -> int:
        match = re.compile(r"--!?>").search(text, index)
        end = match.end() if match else len(text)
        self._lines(text, index, end)
        if match:
            self.state = _DATA
        return end

    def _bogus(self, text: str, index: int) -> int:
        found = text.find(">", index)
        end = len(text) if found < 0 else found + 1
        self._lines(text, index, end)
        if found >= 0:
            self.state = _DATA
        return end

    def _raw(self, text: str, index: int) -> int:
        match = re.compile(rf"</{self.raw_end}[\s/>]", re.IGNORECASE).search(text, index)
        end = match.start() if match else len(text)
        self._lines(text, index, end)
        if match:
            self.state = _DATA
        return end

    def _tag(self, text: str, index: int) -> int:
        match = _ATTRIBUTE.match(text, index)
        self._lines(text, index, match.end())
        if match.group(1):
            self.close_tag()
        elif match.group(2):
            self.attribute = match.group(2).lower()
            self.tag.attributes.append(self.attribute)
            if match.group(3):
                self.quote, self.value, self.state = match.group(4), "", _VALUE
        return match.end()

    def _value(self, text: str, index: int) -> int:
        if self.quote:
            end = text.find(self.quote, index)
            stop = len(text) if end < 0 else end
        else:
            match = re.compile(r"[\s>]").search(text, index)
            stop = match.start() if match else len(text)
            end = stop if match else -1
        self.value += text[index:stop]
        self._lines(text, index, stop)
        if end < 0:
            return stop
        self.end_value()
        return end + 1 if self.quote else end

    def end_value(self) -> None:
        tag = self.tag
        if tag.secret_href is not None and self.attribute == "href" and self.value != "\x01":
            key, line = tag.secret_href
            self.refuse(line, f"the secret {key} must be the whole address: write "
                        f"href=\"{{{{ {key} }}}}\" with nothing else in it.")
            tag.secret_href = None
        self.state = _TAG

    def close_tag(self) -> None:
        tag, self.tag, self.state = self.tag, None, _DATA
        if tag.name in _RAW_TEXT and not tag.end:
            self.state, self.raw_end = _RAW, tag.name
        if tag.secret_href is None:
            return
        key, line = tag.secret_href
        refused = sorted(_REFUSED_LINK_ATTRIBUTES & set(tag.attributes))
        if refused:
            self.refuse(line, f"a link to the secret {key} cannot have a {refused[0]} "
                        "attribute: it sends the address to another host.")
        if tag.tokens > 1:
            self.refuse(line, f"the link to the secret {key} cannot hold another template "
                        "variable or tag in its <a ...>: write the other attributes as "
                        "plain text.")

    def finish(self) -> None:
        if self.state is not _DATA:
            self.refuse(self.line, "the HTML ends inside a tag, a comment or raw text; "
                        "close it so the secret's place is certain.")


def _html_problems(tokens: list[Token], secrets: dict[int, str]) -> list[SecretUseProblem]:
    scanner = _Scanner(secrets)
    for token in tokens:
        if token.token_type is TokenType.TEXT:
            scanner.text(token.contents, token.lineno)
        else:
            scanner.token(token)
    scanner.finish()
    return scanner.problems
