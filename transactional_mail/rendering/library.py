"""The allow-list of the restricted engine: the tags and filters that exist, each bounded.

An explicit allow-list of tags and filters is *copied* from ``django.template.defaulttags``
and ``defaultfilters`` into :data:`allowed_library`, the one library of the engine of
:mod:`transactional_mail.rendering.engine`. Everything else does not exist: ``{% load %}``
and ``{% include %}`` are "invalid block tags", ``|safe`` is an "invalid filter".

* Excluded on purpose: ``debug`` (dumps the context and modules), ``load`` (arbitrary
  libraries), ``include``/``extends``/``block`` (other templates), ``url`` (URLconf),
  ``csrf_token``, and ``now``, ``timesince``, ``timeuntil``, ``lorem`` and ``random``
  (they read the clock or chance, and an email re-rendered from its revision and context
  must come out the same), ``querystring`` (needs a request), ``safe``/``safeseq``
  (would let context data through unescaped), ``pprint`` (``repr`` of Python objects),
  ``json_script`` and ``escapejs`` (no scripts in email).
* ``center``, ``ljust``, ``rjust``, ``floatformat`` and ``stringformat`` are wrapped so a
  template cannot ask for a gigabyte of padding or digits; ``date``/``time`` format
  strings and the input of the HTML truncators are bounded too.
* Every filter is wrapped so the size of what it makes is charged to the render budget
  of :mod:`transactional_mail.rendering.budget` (``join`` before joining); ``{% for %}``
  charges its iterations before the first one.
* ``autoescape`` is not a tag here: ``{% autoescape off %}`` would put context data
  (a customer's name, a comment) into the HTML unescaped. A layout or template author
  who needs raw markup writes it literally.
* One filter of our own, ``as_datetime``: the context is a JSON snapshot, so dates arrive
  as ISO 8601 strings and Django's ``date``/``time`` filters would render them as "".
  ``{{ order.created|as_datetime|date:"j F Y" }}`` parses the string first.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from django.template import Context, Library, Node, defaultfilters, defaulttags
from django.template.base import Parser, Token
from django.utils.dateparse import parse_date, parse_datetime, parse_time
from django.utils.safestring import SafeData, mark_safe

from .budget import current_budget, value_size

__all__ = [
    "ALLOWED_FILTERS",
    "ALLOWED_TAGS",
    "BLOCK_TAGS",
    "INTERMEDIATE_TAGS",
    "MARKUP_FILTERS",
    "allowed_library",
    "as_datetime",
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
#: The end tags of the block tags (``endif``, ``endfor``...).
_END_TAGS = frozenset(f"end{name}" for name in BLOCK_TAGS)

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
# The render budget (see transactional_mail.rendering.budget)
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
