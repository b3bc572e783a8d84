"""Tests of transactional_mail.rendering.compiled: each revision pair compiled once, cached."""

from __future__ import annotations

import pytest

from tests.rendering.helpers import layout, template
from transactional_mail.exceptions import RenderError
from transactional_mail.rendering import render_email
from transactional_mail.rendering.compiled import (
    _cache,
    _compile,
    _compiled,
    clear_inline_cache,
    inline_cache_key,
    invalidate_inline_cache,
)

pytestmark = pytest.mark.usefixtures("pure")


def test_css_premailer_cannot_apply_fails_the_render_not_the_compile():
    """The optimiser never makes an email fail; broken CSS does, when it is inlined."""
    lay = layout(css="@namespace x url(y);\nx|p { color: red }")
    compiled = _compiled(template("<p>x</p>"), lay)
    assert compiled.inline_per_email
    assert "precompiler failed" in compiled.reason
    with pytest.raises(RenderError, match="failed to render"):
        render_email(template("<p>x</p>"), lay, {})


@pytest.fixture
def compile_count(monkeypatch):
    calls = []
    real = _compile

    def counting(tpl, lay):
        calls.append((tpl.pk, None if lay is None else lay.pk))
        return real(tpl, lay)

    monkeypatch.setattr("transactional_mail.rendering.compiled._compile", counting)
    return calls


def test_each_revision_pair_is_compiled_and_inlined_once(compile_count):
    tpl, lay = template("<p>{{ x }}</p>", pk=7), layout(css="p { color: red }", pk=3)
    for value in ("a", "b", "c"):
        html = render_email(tpl, lay, {"x": value}).html
        assert f'<p style="color:red">{value}</p>' in html
    assert compile_count == [(7, 3)]
    render_email(tpl, None, {"x": 1})
    assert compile_count == [(7, 3), (7, None)]


def test_unsaved_objects_are_never_cached(compile_count):
    """A preview of unsaved edits (pk None) compiles every time and leaves no entry."""
    for _ in range(2):
        render_email(template("<p>x</p>", pk=None), layout(pk=1), {})
        render_email(template("<p>x</p>", pk=1), layout(pk=None), {})
    assert len(compile_count) == 4
    assert _cache == {}


def test_cache_is_bounded_by_the_setting_read_at_call_time(settings, compile_count):
    settings.TRANSACTIONAL_MAIL = {"INLINE_CACHE_SIZE": 2}
    for pk in (1, 2, 1, 3):  # 1 is used again, so 2 is the least recently used
        render_email(template("<p>x</p>", pk=pk), None, {})
    assert list(_cache) == [inline_cache_key(1, None), inline_cache_key(3, None)]
    settings.TRANSACTIONAL_MAIL = {"INLINE_CACHE_SIZE": 0}
    clear_inline_cache()
    render_email(template("<p>x</p>", pk=1), None, {})
    assert _cache == {}


def test_invalidation_uses_the_same_key_function(compile_count):
    tpl, lay = template("<p>x</p>", pk=5), layout(pk=9)
    render_email(tpl, lay, {})
    assert list(_cache) == [inline_cache_key(5, 9)]
    invalidate_inline_cache(5, 9)
    assert _cache == {}
    render_email(tpl, lay, {})
    assert len(compile_count) == 2


def test_an_entry_is_rebuilt_when_the_object_behind_a_key_changed(compile_count):
    """Revisions never change, but a mutable object passed by mistake cannot go stale."""
    tpl = template("<p>one</p>", pk=5)
    assert render_email(tpl, None, {}).html == "<p>one</p>"
    tpl.html = "<p>two</p>"
    assert render_email(tpl, None, {}).html == "<p>two</p>"
    assert len(compile_count) == 2
