"""Property-based: the restricted template engine, fed random templates made of allowed
and forbidden tags, filters and lookups.

Whatever a staff author writes, saving it either refuses it with a ``ValidationError``
or accepts it; rendering what was accepted either gives an email within the render
budget or stops with a ``RenderError``. Nothing else is ever raised, and no output ever
shows Python internals (what a lookup of ``__class__``, ``_state`` or a method object
would print), so no template reaches beyond the JSON context.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from hypothesis import event, given
from hypothesis import strategies as st

from transactional_mail.exceptions import RenderError
from transactional_mail.rendering import render_email
from transactional_mail.rendering.validation import validate_template_source

#: Small budgets, so that every example is quick and the bombs among them trip.
BUDGET = {"RENDER_MAX_CHARS": 20_000, "RENDER_MAX_ITERATIONS": 2_000, "RENDER_MAX_SECONDS": 2}

CONTEXT = {
    "name": "Ann <b>&",
    "order": {"number": "A-1", "total": "9.90", "items": [{"sku": "X", "qty": 2}] * 3},
    "tags": ["a", "b", "c"],
    "count": 3,
    "note": "x" * 50,
}

#: Variable paths, the hostile ones among them.
LOOKUPS = [
    "name", "order.number", "order.items", "order.items.0.sku", "tags", "count", "note",
    "missing", "order.items.__class__", "name.__class__", "_private", "order._state",
    "name.upper", "order.items", "order.keys", "order.values", "order.items.0.items",
    "name.format", "name.encode", "tags.index", "order.__dict__", "name.__len__",
]
ALLOWED_FILTERS = [
    "add:name", "add:tags", "add:order.items", "join:'-'", "make_list", "center:900",
    "ljust:999", "rjust:50", "wordwrap:1", "upper", "lower", "length", "first", "last",
    "slice:':5'", "default:'x'", "truncatechars:5", "linebreaks", "urlize", "escape",
    "force_escape", "striptags", "title", "dictsort:'sku'", "unordered_list", "pluralize",
    "stringformat:'s'", "floatformat:2", "cut:'a'", "yesno", "slugify", "wordcount",
]
FORBIDDEN_FILTERS = ["safe", "safeseq", "pprint", "json_script:'x'", "escapejs", "random",
                     "__class__", "attr:'x'"]
FORBIDDEN_TAGS = [
    "{% load static %}", "{% include 'x.html' %}", "{% debug %}", "{% now 'Y' %}",
    "{% url 'admin:index' %}", "{% csrf_token %}", "{% lorem %}", "{% extends 'x' %}",
    "{% autoescape off %}{{ name }}{% endautoescape %}", "{% block a %}{% endblock %}",
]

#: Markers of Python internals in rendered output.
INTERNALS = re.compile(r"<class |mappingproxy|built-in method|bound method| object at 0x"
                       r"|<function |_state|__dict__")

variable = st.builds(
    lambda path, filters: "{{ " + "|".join([path, *filters]) + " }}",
    st.sampled_from(LOOKUPS),
    st.lists(st.sampled_from(ALLOWED_FILTERS + FORBIDDEN_FILTERS), max_size=3),
)
text = st.sampled_from(["<p>", "</p>", "Hello ", "<td>", " & ", "{", "}", "%", "\n"])


def blocks(children):
    return st.one_of(
        st.builds(lambda seq, body: f"{{% for x in {seq} %}}{body}{{{{ x }}}}{{% endfor %}}",
                  st.sampled_from(["tags", "order.items", "name", "note", "tags|add:tags",
                                   "note|make_list", "order.items.0.items"]), children),
        st.builds(lambda cond, a, b: f"{{% if {cond} %}}{a}{{% else %}}{b}{{% endif %}}",
                  st.sampled_from(["count", "name", "missing", "count > 2", "_x"]),
                  children, children),
        st.builds(lambda expr, body: f"{{% with a={expr} %}}{body}{{{{ a }}}}{{% endwith %}}",
                  st.sampled_from(["name|add:name", "note|add:note", "tags|add:tags",
                                   "a|add:a", "name"]), children),
        st.builds(lambda body: f"{{% filter upper %}}{body}{{% endfilter %}}", children),
        st.builds(lambda: "{% cycle 'a' 'b' as c %}{{ c }}"),
        st.builds(lambda body: f"{{% spaceless %}}{body}{{% endspaceless %}}", children),
    )


template_source = st.recursive(
    st.lists(st.one_of(text, variable, st.sampled_from(FORBIDDEN_TAGS)), max_size=6).map(
        "".join
    ),
    lambda children: st.lists(st.one_of(children, blocks(children)), min_size=1, max_size=4).map(
        "".join
    ),
    max_leaves=12,
)


@pytest.fixture
def small_budget(settings):
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, **BUDGET}


@given(source=template_source)
def test_any_template_is_refused_or_renders_within_bounds(small_budget, source):
    try:
        validate_template_source(source)
    except ValidationError as err:
        assert err.message_dict["html"], "a refusal says why"
        event("refused on save")
        return
    template = SimpleNamespace(pk=None, subject="Re: {{ name }}", html=source, text="")
    try:
        email = render_email(template, None, CONTEXT)
    except RenderError:
        event("stopped by a RenderError")
        return  # over budget, or a stored template that cannot render: a clear error
    event("rendered")
    assert len(email.html) <= BUDGET["RENDER_MAX_CHARS"]
    for part in (email.subject, email.html, email.text):
        assert not INTERNALS.search(part), part[:500]
    assert "<b>" not in email.html  # the customer's markup stays escaped


@given(
    depth=st.integers(min_value=1, max_value=30),
    seed=st.sampled_from(["name", "note", "tags", "order.items"]),
    finish=st.sampled_from(["{{ a }}", "{{ a|join:',' }}", "{{ a|make_list|join:'' }}",
                            "{% for x in a %}{% for y in a %}.{% endfor %}{% endfor %}"]),
)
def test_a_doubling_bomb_is_stopped_by_the_budget(small_budget, depth, seed, finish):
    """Nested {% with a=a|add:a %}: 2**depth times the seed, stopped while rendering."""
    source = (f"{{% with a={seed} %}}" + "{% with a=a|add:a %}" * depth + finish
              + "{% endwith %}" * (depth + 1))
    template = SimpleNamespace(pk=None, subject="x", html=source, text="x")
    try:
        email = render_email(template, None, CONTEXT)
    except RenderError:
        event("stopped by a RenderError")
        return
    event("rendered")
    assert len(email.html) <= BUDGET["RENDER_MAX_CHARS"]
