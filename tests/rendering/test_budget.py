"""Tests of transactional_mail.rendering.budget: every render is bounded while it runs.

Each bomb below turns a few hundred bytes of template into gigabytes (or billions of
loop iterations) when nothing stops it. Under the budget each stops with
RenderLimitExceeded naming the budget's setting, having allocated a few megabytes:
the tests measure the peak of Python's allocations (tracemalloc) rather than time.
"""

from __future__ import annotations

import tracemalloc
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.template import Context

from transactional_mail.exceptions import RenderError, RenderLimitExceeded
from transactional_mail.rendering import render_email
from transactional_mail.rendering.budget import current_budget, render_budget, value_size
from transactional_mail.rendering.compiled import clear_inline_cache
from transactional_mail.rendering.context import freeze_context
from transactional_mail.rendering.engine import get_engine
from transactional_mail.rendering.validation import validate_css_source

MiB = 1024 * 1024
#: What a stopped bomb may allocate at most (the budget is 1 Mi characters).
MEMORY_BOUND = 40 * MiB


def template(html: str, subject: str = "Hello", text: str = "", pk=None):
    return SimpleNamespace(pk=pk, subject=subject, html=html, text=text)


def layout(css: str = "", html: str = "<html><body>{{ content }}</body></html>", **brand):
    fields = dict(name="Acme", logo_url="", primary_color="#ff6600",
                  background_color="#ffffff", text_color="#333333", footer_html="")
    fields.update(brand)
    return SimpleNamespace(pk=None, html=html, css=css, **fields)


def render(source: str, context: dict | None = None) -> str:
    return get_engine().from_string(source).render(Context(freeze_context(context or {})))


def peak_allocation(func):
    """Run ``func``; return (its exception, the peak of memory allocated meanwhile)."""
    tracemalloc.start()
    try:
        func()
    except Exception as err:  # returned to the test
        error = err
    else:
        error = None
    finally:
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak


def nested(opening: str, closing: str, depth: int, inside: str) -> str:
    return "\n".join([opening] * depth) + inside + closing * depth


S16 = "0123456789abcdef"
#: 25 nested doublings of ``a``, one per line: the issue's 1 KB template.
DOUBLING = nested("{% with a=a|add:a %}", "{% endwith %}", 25, "{{ a|length }}")

BOMBS = {
    # The 1 KB template: 512 MiB at the 25th doubling.
    "with-add-doubling": (
        DOUBLING,
        {"a": S16},
        "RENDER_MAX_CHARS",
    ),
    "make_list-join": (
        "{% with l=s|make_list %}{{ l|join:s }}{% endwith %}",
        {"s": "x" * 20_000},  # 400 M characters when joined
        "RENDER_MAX_CHARS",
    ),
    "list-doubling-with-add": (
        "{% with l=s|make_list %}"
        + nested("{% with l=l|add:l %}", "{% endwith %}", 30, "{{ l|length }}")
        + "{% endwith %}",
        {"s": S16},
        "RENDER_MAX_CHARS",
    ),
    "nested-loops-over-literals": (
        nested("{% for a in '0123456789' %}", "{% endfor %}", 8, ""),  # 10^8 iterations
        {},
        "RENDER_MAX_ITERATIONS",
    ),
    "nested-loops-with-output": (
        "{% for a in s %}{% for b in s %}{{ s }}{% endfor %}{% endfor %}",
        {"s": "x" * 3000},  # 27 G characters
        "RENDER_MAX_CHARS",
    ),
    "cycle-in-a-loop": (
        "{% for i in n %}{% cycle s s %}{% endfor %}",
        {"n": "x" * 50_000, "s": "y" * 1000},
        "RENDER_MAX_CHARS",
    ),
    "padding-in-a-loop": (
        "{% for i in n %}{{ s|center:'999' }}{{ s|ljust:'999' }}{{ s|rjust:'999' }}{% endfor %}",
        {"n": "x" * 50_000, "s": "y"},
        "RENDER_MAX_CHARS",
    ),
    "wordwrap-in-a-loop": (
        "{% for i in n %}{{ s|wordwrap:1 }}{% endfor %}",
        {"n": "x" * 50_000, "s": "a b " * 500},
        "RENDER_MAX_CHARS",
    ),
    "repeated-value-without-a-loop": (
        "{{ s }}" * 200,  # 120 M characters: stopped at the second one
        {"s": "x" * 600_000},
        "RENDER_MAX_CHARS",
    ),
}


@pytest.mark.parametrize("name", BOMBS)
def test_bombs_stop_early_with_bounded_memory(settings, name):
    """Each bomb is stopped by the counters (not the clock) with a few MiB allocated.

    (A quarter of the default RENDER_MAX_CHARS keeps the slow filters' tests short.)
    """
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_SECONDS": 3600, "RENDER_MAX_CHARS": 256 * 1024}
    source, context, setting = BOMBS[name]
    error, peak = peak_allocation(lambda: render_email(template(source), None, context))
    assert isinstance(error, RenderLimitExceeded), error
    assert isinstance(error, RenderError)
    assert error.setting == setting
    assert setting in str(error)
    assert peak < MEMORY_BOUND, f"{peak / MiB:.0f} MiB allocated"


def test_the_error_names_the_budget_the_setting_and_the_line():
    source, context, _setting = BOMBS["with-add-doubling"]
    with pytest.raises(RenderLimitExceeded) as info:
        render_email(template(source), None, context)
    # 16 characters doubled 17 times is the first value over 1 Mi characters.
    assert (info.value.template_name, info.value.line) == ("html", 17)
    assert str(info.value) == (
        "The render was stopped: |add makes a value longer than the RENDER_MAX_CHARS budget "
        "(1,048,576 characters). Make the template do less, or raise "
        "TRANSACTIONAL_MAIL['RENDER_MAX_CHARS'] if such an email is expected. "
        "(line 17 of the html)"
    )


def test_subject_text_and_layout_css_are_bounded_too():
    loop = "{% for a in s %}\n{{ s }}{% endfor %}"
    context = {"s": "x" * 3000}
    for part in ("subject", "text"):
        with pytest.raises(RenderLimitExceeded) as info:
            render_email(template("<p>x</p>", **{part: loop}), None, context)
        assert (info.value.template_name, info.value.line) == (part, 2)
    css = "{% with a=brand.name %}" + DOUBLING + "{% endwith %}"
    with pytest.raises(RenderLimitExceeded) as info:
        render_email(template("<p>x</p>"), layout(css=css, name=S16), {})
    assert info.value.template_name == "layout css"


def test_layout_css_bomb_is_refused_on_save_naming_the_line():
    """The layout's CSS renders inside full_clean(), in the request: it is bounded too."""
    css = "p { color: red }\n{% with a=brand.name %}\n" + DOUBLING + "{% endwith %}"
    error, peak = peak_allocation(lambda: validate_css_source(css, layout=layout(name=S16)))
    assert isinstance(error, ValidationError)
    [message] = error.message_dict["css"]
    assert message.startswith("Line 19: the render was stopped: |add makes a value longer")
    assert "RENDER_MAX_CHARS" in message
    assert peak < MEMORY_BOUND


def test_each_character_is_counted_once(settings):
    """Nested blocks do not count their output twice: the budget is the output's length."""
    source = "{% for a in l %}<{% for b in l %}{% if b %}ab{% endif %}{% endfor %}>{% endfor %}"
    context = {"l": [1, 2, 3, 4, 5]}
    assert len(render(source, context)) == 5 * (2 + 5 * 2)
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_CHARS": 60}
    render(source, context)
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_CHARS": 59}
    with pytest.raises(RenderLimitExceeded):
        render(source, context)


def test_iterations_are_counted_over_all_loops(settings):
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_ITERATIONS": 30}
    source = "{% for a in l %}{% for b in l %}{% endfor %}{% endfor %}"
    render(source, {"l": [1, 2, 3, 4, 5]})  # 5 + 5 * 5
    with pytest.raises(RenderLimitExceeded, match="RENDER_MAX_ITERATIONS"):
        render(source, {"l": [1, 2, 3, 4, 5, 6]})


def test_the_clock_stops_work_the_counters_do_not_see(settings):
    """Expensive filters in a loop that outputs nothing: RENDER_MAX_SECONDS stops it."""
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_SECONDS": 0.2}
    source = "{% for i in n %}{% if s|upper|lower == 'x' %}!{% endif %}{% endfor %}"
    with pytest.raises(RenderLimitExceeded, match="RENDER_MAX_SECONDS") as info:
        render(source, {"n": "x" * 90_000, "s": "y" * 500_000})  # minutes without the clock
    assert info.value.setting == "RENDER_MAX_SECONDS"


def test_one_budget_per_email_and_none_outside_a_render():
    assert current_budget() is None
    seen = []

    def spy(value):
        seen.append(current_budget())
        return value

    library = get_engine().template_builtins[0]
    library.filters["tm_spy"] = spy
    try:
        render_email(template("{{ x|tm_spy }}", subject="{{ x|tm_spy }}"), None, {"x": 1})
        render("{{ x|tm_spy }}", {"x": 1})
    finally:
        del library.filters["tm_spy"]
    assert seen[0] is seen[1] and seen[2] is not seen[0]
    assert current_budget() is None
    with render_budget() as budget:
        assert current_budget() is budget
    assert current_budget() is None


def test_value_size_counts_what_printing_would_cost():
    assert value_size("abc", 10) == 3
    assert value_size(("ab", "cd"), 10) == 2 + 4
    assert value_size({"k": ("ab",)}, 10) == 1 + 1 + 1 + 2
    assert value_size(42, 10) == 0
    shared = ("x" * 1000,) * 1000  # a thousand references to one string
    assert value_size(shared, 10**9) == 1000 + 1000 * 1000
    assert value_size(shared, 5000) <= 5000 + 1000 + 1000  # stops early


def test_normal_templates_are_far_below_the_budget():
    """The corpus' biggest email uses a small part of the default budget."""
    clear_inline_cache()
    items = [{"name": f"Product {i}", "quantity": i, "price": "9.90"} for i in range(200)]
    html = (
        "{% for item in order.items %}<tr><td>{{ item.name|upper }}</td>"
        "<td>{{ item.quantity }}</td><td>{{ item.price|floatformat:2 }}</td></tr>{% endfor %}"
    )
    render_email(template(f"<table>{html}</table>"), None, {"order": {"items": items}})


@pytest.mark.django_db
def test_a_stored_bomb_fails_its_email_permanently_and_the_next_one_is_sent(esp):
    """A revision written around validation (update()) fails at once, without retry."""
    import transactional_mail
    from tests.factories import ORDER_CONTEXT, make_layout, make_template
    from transactional_mail import delivery
    from transactional_mail.models import Email, EmailStatus, TemplateRevision

    template = make_template(layout=make_layout())
    TemplateRevision.objects.filter(pk=template.current_revision_id).update(html=DOUBLING)
    bomb = transactional_mail.send("order_confirmation", "ann@example.com", {"a": S16})

    error, peak = peak_allocation(lambda: delivery.deliver(bomb.pk))
    assert error is None and peak < MEMORY_BOUND

    bomb.refresh_from_db()
    assert bomb.status == EmailStatus.FAILED
    assert bomb.attempts == 1
    assert "[permanent]" in bomb.last_error and "RENDER_MAX_CHARS" in bomb.last_error
    assert delivery.deliver(bomb.pk).status is None  # nothing left to retry
    assert esp.requests == []

    # Revisions are immutable, so workers cache them: forget what this test rewrote.
    TemplateRevision.objects.filter(pk=template.current_revision_id).update(html="<p>ok</p>")
    clear_inline_cache()
    delivery.clear_revision_cache()
    email = transactional_mail.send("order_confirmation", "ann@example.com", ORDER_CONTEXT)
    assert delivery.deliver(email.pk).status == EmailStatus.SENT
    assert Email.objects.get(pk=bomb.pk).status == EmailStatus.FAILED
