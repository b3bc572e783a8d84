"""The restricted Django template engine that staff-edited email templates render in.

Why not Django's own engine: it is built for trusted template authors. Its ``builtins``
option only *appends* libraries to the defaults, so ``{% debug %}``, ``{% load %}``,
``{% include %}``, ``{% url %}`` and ``|safe`` stay available; and variable lookups call
zero-argument methods of whatever the context holds. Staff who edit templates in the admin
are trusted to write copy, not to run code or read the server's state.

So this engine is built the other way round:

* Its only builtin library is :data:`allowed_library`, into which an explicit allow-list
  of tags and filters is *copied* from ``django.template.defaulttags`` and
  ``defaultfilters``. Everything else does not exist: ``{% load %}`` and ``{% include %}``
  are "invalid block tags", ``|safe`` is an "invalid filter". ``libraries`` is empty and
  there are no loaders, so no template can reach another template or the filesystem.
* Excluded on purpose: ``debug`` (dumps the context and modules), ``load`` (arbitrary
  libraries), ``include``/``extends``/``block`` (other templates), ``url`` (URLconf),
  ``csrf_token``, and ``now``, ``timesince``, ``timeuntil``, ``lorem`` and ``random``
  (they read the clock or chance, and an email re-rendered from its revision and context
  must come out the same), ``querystring`` (needs a request), ``safe``/``safeseq``
  (would let context data through unescaped), ``pprint`` (``repr`` of Python objects),
  ``json_script`` and ``escapejs`` (no scripts in email).
* ``center``, ``ljust``, ``rjust``, ``floatformat`` and ``stringformat`` are wrapped so a
  template cannot ask for a gigabyte of padding or digits.
* Every render runs under the budget of :mod:`transactional_mail.render_budget`
  (``RENDER_MAX_CHARS``, ``RENDER_MAX_ITERATIONS``, ``RENDER_MAX_SECONDS``), enforced
  while rendering: templates compile to :class:`RestrictedTemplate`, whose parser wraps
  every node so its output is charged as it is produced; every filter is wrapped so the
  size of what it makes is checked (``join`` before joining); ``{% for %}`` charges its
  iterations before the first one. A render over budget stops with
  :class:`~transactional_mail.exceptions.RenderLimitExceeded`.
* ``autoescape`` is not a tag here: ``{% autoescape off %}`` would put context data
  (a customer's name, a comment) into the HTML unescaped. A layout or template author
  who needs raw markup writes it literally.
* One filter of our own, ``as_datetime``: the context is a JSON snapshot, so dates arrive
  as ISO 8601 strings and Django's ``date``/``time`` filters would render them as "".
  ``{{ order.created|as_datetime|date:"j F Y" }}`` parses the string first.
* Templates only ever see the context made by :func:`freeze_context`: JSON data converted
  to read-only types (mappings to :class:`FrozenDict`, lists to :class:`FrozenList`, a
  tuple; both print like the JSON data they hold). Django calls
  zero-argument methods during lookups; on these types the only zero-argument methods
  return new values (``items``, ``upper``...) and nothing can be mutated (there is no
  ``clear`` or ``pop`` to call) or reached beyond the data itself.

Autoescaping is on (the subject and the text part are rendered with it off, as plain
text) and ``string_if_invalid`` is "" (a missing value renders empty, as customers
should never see a debugging marker).
"""

from __future__ import annotations

import datetime
import decimal
import functools
import re
import time
import uuid
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.template import (
    Context,
    Engine,
    Library,
    Node,
    Origin,
    Template,
    TemplateDoesNotExist,
    defaultfilters,
    defaulttags,
)
from django.template.base import UNKNOWN_SOURCE, Lexer, Parser, TextNode, Token
from django.utils.dateparse import parse_date, parse_datetime, parse_time
from django.utils.functional import Promise
from django.utils.safestring import SafeData, mark_safe

from .exceptions import RenderError, RenderLimitExceeded
from .render_budget import current_budget, render_budget, value_size

__all__ = [
    "ALLOWED_FILTERS",
    "ALLOWED_TAGS",
    "BLOCK_TAGS",
    "FrozenDict",
    "FrozenList",
    "INTERMEDIATE_TAGS",
    "MARKUP_FILTERS",
    "RestrictedEngine",
    "RestrictedTemplate",
    "allowed_library",
    "as_datetime",
    "freeze_context",
    "get_engine",
]

#: Tags copied from ``django.template.defaulttags``. Their end and intermediate tags
#: (``endif``, ``else``, ``empty``...) are parsed by the opening tag itself.
ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "comment",
        "cycle",
        "filter",
        "firstof",
        "for",
        "if",
        "ifchanged",
        "regroup",
        "resetcycle",
        "spaceless",
        "templatetag",
        "verbatim",
        "widthratio",
        "with",
    }
)

#: Allowed tags that open a block, and the intermediate tags each block may contain.
BLOCK_TAGS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "comment": frozenset(),
        "filter": frozenset(),
        "for": frozenset({"empty"}),
        "if": frozenset({"elif", "else"}),
        "ifchanged": frozenset({"else"}),
        "spaceless": frozenset(),
        "verbatim": frozenset(),
        "with": frozenset(),
    }
)
INTERMEDIATE_TAGS: frozenset[str] = frozenset({"elif", "else", "empty"})

#: Filters copied from ``django.template.defaultfilters`` (names missing from the
#: installed Django version are skipped), plus ``as_datetime``.
ALLOWED_FILTERS: frozenset[str] = frozenset(
    {
        "add",
        "addslashes",
        "as_datetime",
        "capfirst",
        "center",
        "cut",
        "date",
        "default",
        "default_if_none",
        "dictsort",
        "dictsortreversed",
        "divisibleby",
        "escape",
        "escapeseq",
        "filesizeformat",
        "first",
        "floatformat",
        "force_escape",
        "get_digit",
        "iriencode",
        "join",
        "last",
        "length",
        "linebreaks",
        "linebreaksbr",
        "linenumbers",
        "ljust",
        "lower",
        "make_list",
        "phone2numeric",
        "pluralize",
        "rjust",
        "slice",
        "slugify",
        "stringformat",
        "striptags",
        "time",
        "title",
        "truncatechars",
        "truncatechars_html",
        "truncatewords",
        "truncatewords_html",
        "unordered_list",
        "upper",
        "urlencode",
        "urlize",
        "urlizetrunc",
        "wordcount",
        "wordwrap",
        "yesno",
    }
)

#: Allowed filters whose output is HTML markup built at render time (the elements they
#: produce), which CSS inlining done ahead of rendering cannot see.
MARKUP_FILTERS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "linebreaks": frozenset({"p", "br"}),
        "linebreaksbr": frozenset({"br"}),
        "urlize": frozenset({"a"}),
        "urlizetrunc": frozenset({"a"}),
        "unordered_list": frozenset({"ul", "li"}),
    }
)

_monotonic = time.monotonic

# Widths and precisions above this are refused: nobody pads an email to a million
# characters, and a template must not be able to make the worker allocate gigabytes.
_MAX_WIDTH = 1000


def _not_in_templates(*args: Any, **kwargs: Any) -> Any:
    raise TypeError("Templates cannot read the clock.")


# Django renders a callable marked alters_data as empty instead of calling it.
_not_in_templates.alters_data = True  # type: ignore[attr-defined]


class _TemplateDate(datetime.date):
    """A date whose class methods cannot read the clock from a template (``{{ d.today }}``)."""

    today = _not_in_templates
    min = max = None  # instances of the plain class, whose today() would work


class _TemplateDatetime(datetime.datetime):
    """A datetime whose methods cannot read the clock or the server's time zone.

    ``now``, ``utcnow`` and ``today`` would print the time of rendering (a re-render must
    come out the same); ``astimezone()`` and ``timestamp()`` without an argument use the
    server's local zone. Django's own formatting calls ``astimezone(tz)`` directly, which
    still works; a template calling it gets nothing.
    """

    now = utcnow = today = _not_in_templates
    min = max = None

    def astimezone(self, tz: Any = None) -> datetime.datetime:
        return super().astimezone(tz)

    def timestamp(self) -> float:
        return super().timestamp()

    def date(self) -> datetime.date:
        return _TemplateDate(self.year, self.month, self.day)

    astimezone.alters_data = True  # type: ignore[attr-defined]
    timestamp.alters_data = True  # type: ignore[attr-defined]


def _for_templates(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return _TemplateDatetime(
            value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond, value.tzinfo, fold=value.fold,
        )
    if isinstance(value, datetime.date):
        return _TemplateDate(value.year, value.month, value.day)
    return value  # a time: nothing of the clock to reach


def as_datetime(value: Any) -> Any:
    """Parse an ISO 8601 datetime, date or time string; return anything else unchanged.

    The JSON snapshot of the context holds dates as strings (Django's JSON encoder writes
    ``2024-05-01T09:30:00Z``), which ``date`` and ``time`` cannot format. Chain this
    filter in front of them. An aware datetime is shown in the
    active time zone by ``date``; a string without an offset stays naive.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        # Date first: parse_datetime also accepts "2024-05-01" (as midnight).
        parsed = parse_date(text) or parse_datetime(text) or parse_time(text)
    except ValueError:  # well-formed but impossible, e.g. 2024-02-31
        parsed = None
    return value if parsed is None else _for_templates(parsed)


_NUMBERS = re.compile(r"\d+")


def _bounded(func: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Wrap a ``value|filter:arg`` filter so an absurd width or precision in ``arg``
    leaves the value unchanged (the way Django's filters fail silently)."""

    @functools.wraps(func)  # also copies is_safe, _filter_name... from Django's function
    def wrapper(value: Any, arg: Any) -> Any:
        if any(len(n) > 4 or int(n) > _MAX_WIDTH for n in _NUMBERS.findall(str(arg)[:50])):
            return value
        return func(value, arg)

    return wrapper


# --------------------------------------------------------------------------------------
# The render budget (see transactional_mail.render_budget)
# --------------------------------------------------------------------------------------


def _metered(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter so the size of the value it makes is charged to the render's budget.

    ``join`` is checked before it joins (a list of a million references to one long
    string is cheap to hold and ruinous to join); the others after (none makes more than
    a small multiple of its input, which was checked when it was made).
    """
    made_by = f"|{name}"

    @functools.wraps(func)  # copies is_safe, needs_autoescape...; unwrap finds the arguments
    def metered(value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        if budget is not None and name == "join" and args:
            budget.charge_value(_joined_size(value, args[0], budget.max_chars), made_by)
        result = func(value, *args, **kwargs)
        if budget is not None:
            budget.charge_value(value_size(result, budget.max_chars), made_by)
        return result

    return metered


def _joined_size(value: Any, separator: Any, limit: int) -> int:
    if not isinstance(value, (str, list, tuple)):
        return 0
    count = len(value)
    return value_size(value, limit) + max(count - 1, 0) * len(str(separator))


class _LoopSequence:
    """The sequence of a ``{% for %}``: charges its length before the loop starts."""

    def __init__(self, expression: Any) -> None:
        self.expression = expression

    def resolve(self, context: Context, ignore_failures: bool = False) -> Any:
        values = self.expression.resolve(context, ignore_failures)
        if values is None:
            return values
        if not hasattr(values, "__len__"):
            values = list(values)  # as ForNode would
        budget = current_budget()
        if budget is not None:
            budget.charge_iterations(len(values))
        return values

    def __str__(self) -> str:
        return str(self.expression)


def _metered_for(parser: Parser, token: Token) -> Node:
    node = defaulttags.register.tags["for"](parser, token)
    node.sequence = _LoopSequence(node.sequence)
    return node


#: Longest format string ``date`` and ``time`` accept (each character can expand to ~30).
_MAX_FORMAT = 100
#: The HTML truncators are quadratic in their input: they read at most this much of it.
_MAX_TRUNCATED_INPUT = 100_000


def _short_format(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``date``/``time`` so an absurd format string renders nothing (as Django's
    filters do on a bad format), instead of building a huge value first."""

    @functools.wraps(func)
    def wrapper(value: Any, arg: Any = None) -> Any:
        if arg is not None and len(str(arg)) > _MAX_FORMAT:
            return ""
        return func(value, arg)

    return wrapper


def _prefix_only(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an HTML truncator so it reads a bounded prefix of its input: a customer's 1 MB
    comment in ``{{ comment|truncatewords_html:30 }}`` took seconds (Django's truncator is
    quadratic); the first 100,000 characters hold any reasonable truncation."""

    @functools.wraps(func)
    def wrapper(value: Any, arg: Any) -> Any:
        if isinstance(value, str) and len(value) > _MAX_TRUNCATED_INPUT:
            prefix = value[:_MAX_TRUNCATED_INPUT]
            value = mark_safe(prefix) if isinstance(value, SafeData) else prefix
        return func(value, arg)

    return wrapper


def _build_library() -> Library:
    library = Library()
    for name in sorted(ALLOWED_TAGS):
        library.tags[name] = defaulttags.register.tags[name]
    library.tags["for"] = _metered_for
    for name in sorted(ALLOWED_FILTERS - {"as_datetime"}):
        func = defaultfilters.register.filters.get(name)
        if func is None:  # e.g. escapeseq before Django 5.0
            continue
        if name in {"center", "ljust", "rjust", "floatformat", "stringformat"}:
            func = _bounded(func)
        elif name in {"date", "time"}:
            func = _short_format(func)
        elif name in {"truncatechars_html", "truncatewords_html"}:
            func = _prefix_only(func)
        library.filters[name] = _metered(name, func)
    library.filter("as_datetime", as_datetime, is_safe=False)
    return library


#: The one library of the restricted engine: allow-listed tags and filters only.
allowed_library: Library = _build_library()


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
    render outside :func:`~transactional_mail.render_budget.render_budget` runs under a
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


# --------------------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------------------

# Values a context may hold besides JSON types, converted to what the JSON snapshot
# would hold (Django's encoder: ISO strings for dates, str for Decimal and UUID) so a
# preview of a live context renders exactly like the stored snapshot will.
_JSON_COERCIBLE = (
    decimal.Decimal,
    datetime.date,
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
    Promise,
)
_ENCODER = DjangoJSONEncoder()


_SCALARS = frozenset({str, int, float, bool, type(None)})


class FrozenDict(dict):
    """A read-only dict: what a JSON object of the context is to a template.

    A ``dict`` subclass so lookups and ``items`` run at C speed and it prints like the
    data it holds (``MappingProxyType`` printed ``mappingproxy({...})`` into emails).
    Every method that would change it raises ``TypeError``; those a template can reach
    (zero-argument ``clear``, ``popitem``, ``copy``) are marked ``alters_data``, so Django
    renders them as empty instead of calling them.
    """

    __slots__ = ()

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("The email's context is read-only.")

    _read_only.alters_data = True  # type: ignore[attr-defined]
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = copy = pop = popitem = setdefault = update = _read_only


class FrozenList(tuple):
    """A read-only sequence that prints as the JSON array it holds, like a list."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "[" + ", ".join(map(repr, self)) + "]"

    __str__ = __repr__


class _NotJSON(Exception):
    """Raised deep inside _freeze; each level adds its key to the path on the way out."""

    def __init__(self, value: Any, what: str) -> None:
        self.value, self.what, self.path = value, what, ""


def _freeze(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict or isinstance(value, Mapping):
        frozen = {}
        for key, item in value.items():
            try:
                frozen[key if type(key) is str else _key(key)] = _freeze(item)
            except _NotJSON as err:
                err.path = f"[{key!r}]{err.path}"
                raise
        return FrozenDict(frozen)
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_freeze(item))
            except _NotJSON as err:
                err.path = f"[{index}]{err.path}"
                raise
        return FrozenList(items)
    if isinstance(value, str):
        # A str subclass may be SafeString, which would bypass autoescaping.
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, _JSON_COERCIBLE):
        return _ENCODER.default(value)
    raise _NotJSON(value, "value")


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    # What json.dumps would turn the key into.
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (int, float)):
        return str(key)
    raise _NotJSON(key, "key")


def freeze_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a read-only copy of a JSON context for rendering.

    The top level is a new ``dict`` (tags such as ``{% cycle ... as x %}`` write to it;
    it is thrown away after the render); everything below it is a :class:`FrozenDict`
    or a :class:`FrozenList`. Raise :class:`~transactional_mail.exceptions.RenderError`
    for values that are not JSON data, so a model instance can never reach a template.
    """
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise RenderError(f"The context must be a mapping, not {type(context).__name__}.")
    try:
        return dict(_freeze(context))
    except _NotJSON as err:
        if err.what == "key":
            raise RenderError(
                f"context{err.path} has a {type(err.value).__name__} key; JSON keys are strings."
            ) from None
        raise RenderError(
            f"context{err.path} is a {type(err.value).__name__}; templates only see JSON "
            "data (dicts, lists, str, int, float, bool, None). Put plain values in the "
            "context."
        ) from None
