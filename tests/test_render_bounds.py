"""What an attacker tried against the render budget once it existed, kept as tests.

CSS inlining and the derived text part ran outside the budget, two filters overran the
clock before their result was checked, and dates reached the clock. Slow paths are cut
by SIGALRM, so a regression costs seconds, not minutes; the timeout itself is the failure.
"""

from __future__ import annotations

import contextlib
import signal
import time
import tracemalloc
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from transactional_mail.exceptions import RenderLimitExceeded
from transactional_mail.rendering import render_email
from transactional_mail.rendering.validation import validate_css_source

MiB = 1024 * 1024


def template(html, subject="Hello", text="", pk=None):
    return SimpleNamespace(pk=pk, subject=subject, html=html, text=text)


class Overran(BaseException):
    """BaseException, so render_email does not wrap it in a RenderError."""


@contextlib.contextmanager
def hard_deadline(seconds: int):
    """Interrupt the block (pure-Python code: cssutils, Django filters) after ``seconds``."""

    def alarm(signum, frame):
        raise Overran(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_bounded(func, budget_seconds: float, hard: int = 20):
    """Run ``func``; fail unless it returns or raises a budget/validation error within
    twice the render budget (plus a second of slack)."""
    start = time.monotonic()
    try:
        with hard_deadline(hard):
            func()
    except (RenderLimitExceeded, ValidationError):
        pass
    except Overran as err:
        pytest.fail(f"not bounded by RENDER_MAX_SECONDS={budget_seconds}: {err}")
    elapsed = time.monotonic() - start
    assert elapsed < 2 * budget_seconds + 1, f"took {elapsed:.1f} s (budget {budget_seconds} s)"


# --- 1. CSS inlining (premailer/cssutils) runs outside the render budget -------------------


def test_layout_css_with_many_rules_is_bounded_on_save(settings):
    """86 bytes of layout CSS render to 5,000 rules (60 KB, well inside RENDER_MAX_CHARS);
    full_clean() then inlines them with cssutils, quadratic in the rule count: ~24 s
    (22,500 rules: 146 s) in the admin request."""
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_SECONDS": 2}
    css = ("{% for a in '" + "x" * 50 + "' %}{% for b in '" + "x" * 100 + "' %}"
           "p{color:red}{% endfor %}{% endfor %}")
    run_bounded(lambda: validate_css_source(css), 2)


def test_per_email_inlining_is_bounded(settings):
    """A 12 KB template (a tag in its <style> forces per-email inlining): 1,000 rules x
    10,000 elements. Renders in 0.1 s, then premailer runs unbounded: 68 s here, and
    1,000 rules x 40,000 elements take 300 s and 824 MB RSS with RENDER_MAX_SECONDS=5."""
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_SECONDS": 2}
    src = (
        "<style>" + "p{color:red}" * 1000 + " i{color:{{ c }}}</style><div>"
        "{% for a in s %}{% for b in s %}<p></p>{% endfor %}{% endfor %}</div>"
    )
    run_bounded(lambda: render_email(template(src), None, {"s": "x" * 100, "c": "blue"}), 2)


def test_precompiling_static_css_at_delivery_is_bounded(settings):
    """A saved template with 4,000 static rules (48 KB): saving does not inline
    (precompile=False) so it is accepted at once; the worker's precompile then spends
    ~15 s in premailer outside any budget."""
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_SECONDS": 1}
    src = "<style>" + "p{color:red}" * 4000 + "</style><p>Hello {{ name }}</p>"
    run_bounded(lambda: render_email(template(src, pk=987654), None, {"name": "Ann"}), 1)


# --- 2. The derived text part is not charged to RENDER_MAX_CHARS ---------------------------


def test_derived_text_part_counts_toward_the_budget(settings):
    """250 nested <ul> then <li>x in a loop: 482 KB of HTML becomes a 48 MB text part
    (each bullet indented by 2 x depth), never charged to RENDER_MAX_CHARS."""
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_CHARS": 256 * 1024, "RENDER_MAX_SECONDS": 60}
    src = "<ul>" * 250 + "{% for a in s %}{% for b in s %}<li>x{% endfor %}{% endfor %}"
    tracemalloc.start()
    try:
        try:
            rendered = render_email(template(src), None, {"s": "x" * 150})
        except RenderLimitExceeded as err:
            assert err.setting == "RENDER_MAX_CHARS"
            rendered = None
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if rendered is not None:
        total = len(rendered.subject) + len(rendered.html) + len(rendered.text)
        assert total <= 256 * 1024, f"{total:,} characters of output (text {len(rendered.text):,})"
    assert peak < 40 * MiB, f"peak {peak / MiB:.0f} MiB"


# --- 3. Single filter calls that overrun the clock -------------------------------------------


@pytest.mark.parametrize("filter_", ["truncatewords_html:30", "truncatechars_html:200"])
def test_customer_markup_in_html_truncators_is_bounded(settings, filter_):
    """A customer's 1 MB comment of '<b>' through a normal template's
    {{ comment|truncatewords_html:30 }}: 7.5 s for 1 MB, quadratic (2.2 s at 0.5 MB),
    and send() puts no limit on context size."""
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_SECONDS": 1}
    comment = "<b>" * 333_333
    source = template(f"{{{{ comment|{filter_} }}}}")
    run_bounded(lambda: render_email(source, None, {"comment": comment}), 1)


def test_date_format_string_cannot_amplify_past_the_budget(settings):
    """|date with a long format: each 'r' becomes 31 characters, built in full before the
    size check (1 MiB format: 31 M characters, 10 s)."""
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_SECONDS": 1}
    src = "{{ d|as_datetime|date:f|length }}"
    ctx = {"d": "2024-01-01", "f": "r" * 500_000}
    tracemalloc.start()
    try:
        run_bounded(lambda: render_email(template(src), None, ctx), 1)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * MiB, f"peak {peak / MiB:.0f} MiB"


# --- 4. The clock is readable, so a re-render differs -----------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{% with x=t|as_datetime %}{{ x.now }}{{ x.utcnow }}{% endwith %}",
        "{% with x=day|as_datetime %}{{ x.today }}{% endwith %}",
        "{% with x=t|as_datetime %}{{ x.date.today }}{{ x.min.now }}{{ x.max.today }}"
        "{{ x.astimezone }}{{ x.timestamp }}{% endwith %}",
    ],
)
def test_templates_cannot_read_the_clock(source):
    """'now' is excluded so resends render the same, but datetime.now/today are
    classmethods reachable on the value as_datetime returns."""
    html = render_email(
        template(source), None, {"t": "2000-01-01T00:00:00Z", "day": "2000-01-01"}
    ).html
    assert str(timezone.now().year) not in html, html
    assert html == ""


def test_dates_still_format_in_the_active_time_zone(settings):
    """The clock is shut; Django's own formatting (astimezone(tz)) still works."""
    source = '{{ t|as_datetime|date:"Y-m-d H:i" }}|{{ t|as_datetime|date:"U" }}'
    with timezone.override("Europe/Paris"):
        html = render_email(template(source), None, {"t": "2000-01-01T00:00:00Z"}).html
    assert html == "2000-01-01 01:00|946684800"


def test_css_within_the_rule_budget_is_inlined(settings):
    html = render_email(
        template("<style>" + "p{color:red}" * 900 + "</style><p>Hi {{ name }}</p>"), None,
        {"name": "Ann"},
    ).html
    assert 'style="color:red"' in html


def test_too_many_css_rules_are_refused_naming_the_setting(settings):
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_CSS_RULES": 10}
    with pytest.raises(RenderLimitExceeded, match="RENDER_MAX_CSS_RULES"):
        render_email(template("<style>" + "p{color:red}" * 11 + "</style><p>{{ x }}</p>"), None,
                     {"x": 1})


@pytest.mark.django_db
def test_a_template_with_too_many_static_css_rules_is_refused_on_save():
    from transactional_mail.models import EmailTemplate

    template_row = EmailTemplate(
        key="big_css", subject="Hi", html="<style>" + "p{color:red}" * 1001 + "</style><p>x</p>"
    )
    with pytest.raises(ValidationError, match="1,001 rules; at most 1,000 can be inlined"):
        template_row.full_clean()


@pytest.mark.django_db
def test_layout_css_with_too_many_rules_is_refused_on_save():
    from transactional_mail.models import Layout

    layout = Layout(name="Big", html="<html><body>{{ content }}</body></html>",
                    css="p{color:red}" * 1001)
    with pytest.raises(ValidationError, match="RENDER_MAX_CSS_RULES"):
        layout.full_clean()
