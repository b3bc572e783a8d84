"""The restricted Django template engine that staff-edited email templates render in.

Why not Django's own engine: it is built for trusted template authors. Its ``builtins``
option only *appends* libraries to the defaults, so ``{% debug %}``, ``{% load %}``,
``{% include %}``, ``{% url %}`` and ``|safe`` stay available; and variable lookups call
zero-argument methods of whatever the context holds. Staff who edit templates in the admin
are trusted to write copy, not to run code or read the server's state.

So this engine is built the other way round:

* Its only builtin library is the allow-list of
  :mod:`transactional_mail.rendering.library` (tags and filters copied in, each bounded).
  ``libraries`` is empty and there are no loaders, so no template can reach another
  template or the filesystem.
* Every render runs under the budget of :mod:`transactional_mail.rendering.budget`
  (``RENDER_MAX_CHARS``, ``RENDER_MAX_ITERATIONS``, ``RENDER_MAX_SECONDS``), enforced
  while rendering: templates compile to :class:`RestrictedTemplate`, whose parser wraps
  every node so its output is charged as it is produced (the library's filters and
  ``{% for %}`` charge what they make). A render over budget stops with
  :class:`~transactional_mail.exceptions.RenderLimitExceeded`.
* Templates only ever see the read-only JSON context of
  :mod:`transactional_mail.rendering.context`.

Autoescaping is on (the subject and the text part are rendered with it off, as plain
text) and ``string_if_invalid`` is "" (a missing value renders empty, as customers
should never see a debugging marker).

Staff sources are lexed here too (:func:`_tokenize` drops comments), compiled from
tokens (:func:`_parse`) and their syntax errors worded for staff, for validation on save
and for compiling stored revisions alike.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Any

from django.template import (
    Context,
    Engine,
    Library,
    Node,
    Origin,
    Template,
    TemplateDoesNotExist,
    TemplateSyntaxError,
)
from django.template.base import UNKNOWN_SOURCE, Lexer, Parser, TextNode, Token, TokenType
from django.utils.translation import gettext as _

from ..exceptions import RenderLimitExceeded
from .budget import current_budget, render_budget
from .library import allowed_library

__all__ = ["RestrictedEngine", "RestrictedTemplate", "get_engine"]


_monotonic = time.monotonic


class _MeteredNode(Node):
    """Wraps every node of a restricted template: charges the characters it outputs.

    Only the characters its inner nodes did not charge already, so each character of
    the output is counted once, as soon as the node that makes it returns (a loop body
    is charged at every iteration). This runs for every node of every email, hence the
    budget's fields are used directly.
    """

    child_nodelists = ()

    def __init__(self, node: Node) -> None:
        self.node = node

    def render_annotated(self, context: Context) -> str:
        # Node.render_annotated only adds debugging information; this engine has none.
        budget = current_budget()
        if budget is None:
            return self.node.render(context)
        before = budget.chars
        try:
            output = self.node.render(context)
            # budget.charge_output(), inlined.
            spent = len(output) - (budget.chars - before)
            if spent > 0:
                budget.chars += spent
            if budget.chars > budget.max_chars or _monotonic() > budget.deadline:
                budget.charge_output(0)  # raises the right error
        except RenderLimitExceeded as err:
            err.locate(self.origin.template_name, self.token.lineno)
            raise
        return output

    def render(self, context: Context) -> str:
        return self.render_annotated(context)

    def get_nodes_by_type(self, nodetype: type) -> list[Node]:
        return self.node.get_nodes_by_type(nodetype)

    def __iter__(self) -> Any:
        yield from self.node

    def __repr__(self) -> str:
        return repr(self.node)


class _MeteredText(_MeteredNode):
    """Static text: charged without a call (the clock is read by the other nodes)."""

    def __init__(self, node: TextNode) -> None:
        super().__init__(node)
        self.text, self.length = node.s, len(node.s)

    def render_annotated(self, context: Context) -> str:
        budget = current_budget()
        if budget is not None:
            budget.chars += self.length
            if budget.chars > budget.max_chars:
                try:
                    budget.charge_output(0)  # raises
                except RenderLimitExceeded as err:
                    err.locate(self.origin.template_name, self.token.lineno)
                    raise
        return self.text


class _MeteringParser(Parser):
    def extend_nodelist(self, nodelist: Any, node: Node, token: Token) -> None:
        node.token, node.origin = token, self.origin
        wrapper = _MeteredText(node) if isinstance(node, TextNode) else _MeteredNode(node)
        super().extend_nodelist(nodelist, wrapper, token)


class RestrictedTemplate(Template):
    """A template of the restricted engine, from source text or from a token list.

    Its parser wraps every node so the output is charged to the render budget, and a
    render outside :func:`~transactional_mail.rendering.budget.render_budget` runs under a
    budget of its own. ``name`` says which part it is (``"html"``, ``"css"``...) in the
    errors of an over-budget render. ``builtins`` replaces the engine's library (the
    CSS precompiler adds internal tags).
    """

    def __init__(
        self,
        source: str | list[Token],
        name: str | None = None,
        builtins: list[Library] | None = None,
    ) -> None:
        # Template.__init__ would compile with Django's own parser; everything it sets is
        # set here.
        self.engine = get_engine()
        self.name = name
        self.origin = Origin(UNKNOWN_SOURCE, template_name=name)
        if isinstance(source, str):
            self.source, tokens = source, Lexer(source).tokenize()
        else:
            self.source, tokens = "", list(source)
        parser = _MeteringParser(
            tokens,
            self.engine.template_libraries,
            self.engine.template_builtins if builtins is None else builtins,
            self.origin,
        )
        self.nodelist = parser.parse()
        # Django >= 5.1 keeps per-template parser data (partials); 4.2 has none.
        self.extra_data = getattr(parser, "extra_data", {})

    def _render(self, context: Context) -> str:
        if current_budget() is not None:
            return super()._render(context)
        with render_budget():
            return super()._render(context)


class RestrictedEngine(Engine):
    """A Django template engine whose only tags and filters are the allow-listed ones.

    Templates are compiled with :meth:`from_string` only: there are no loaders, no
    libraries to ``{% load %}`` and no default builtins.
    """

    def __init__(self) -> None:
        super().__init__(
            dirs=[],
            app_dirs=False,
            context_processors=[],
            debug=False,
            loaders=[],
            string_if_invalid="",
            libraries={},
            builtins=[],
            autoescape=True,
        )
        # Engine.__init__ always prepends Django's default builtins (defaulttags,
        # defaultfilters, loader_tags); replace the compiled list outright.
        self.builtins = []
        self.template_builtins = [allowed_library]
        self.template_libraries = {}

    def find_template(self, name: str, dirs: Any = None, skip: Any = None) -> Any:
        """Refuse every template lookup: email templates never load other templates."""
        raise TemplateDoesNotExist(name)

    def from_string(self, template_code: str) -> RestrictedTemplate:
        """Compile ``template_code`` into a :class:`RestrictedTemplate` (metered)."""
        return RestrictedTemplate(template_code)


@functools.cache
def get_engine() -> RestrictedEngine:
    """Return the process-wide restricted engine (it holds no settings-derived state)."""
    return RestrictedEngine()


# --- Sources: lexed without comments, compiled, their syntax errors worded for staff ---

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


def _parse(tokens: list[Token], name: str = "email template") -> RestrictedTemplate:
    """Compile a token list (the inlined template is reassembled from premailer's output
    at the token level, so static HTML is never lexed again: text that looks like
    ``{{ x }}`` stays text)."""
    return RestrictedTemplate(list(tokens), name)


def _text_token(text: str) -> Token:
    return Token(TokenType.TEXT, text)
