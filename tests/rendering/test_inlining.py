"""Tests of transactional_mail.rendering.inlining: premailer applies the CSS and never fetches."""

from __future__ import annotations

import socket

import pytest
from django.core.exceptions import ValidationError

from tests.fetch_trap import FetchTrap
from tests.rendering.helpers import _REAL_CONNECT, _REAL_CREATE_CONNECTION, layout, template
from transactional_mail.rendering import render_email
from transactional_mail.rendering.inlining import inline_css
from transactional_mail.rendering.validation import validate_css_source, validate_html_source

pytestmark = pytest.mark.usefixtures("pure")


def test_media_queries_and_pseudo_classes_stay_in_a_style_element_with_important():
    lay = layout(
        css="@media (max-width: 600px) { .c { width: 100% } } a:hover { color: red } "
        ".c { width: 600px }"
    )
    rendered = render_email(template('<div class="c"><a href="#">x</a></div>'), lay, {})
    assert "width:100% !important" in rendered.html.replace(": ", ":")
    assert "a:hover {color:red !important}" in rendered.html
    assert '<div class="c" style="width:600px" width="600">' in rendered.html


def test_premailer_never_fetches_external_stylesheets(monkeypatch):
    """allow_network=False: a <link> stylesheet is left alone, never requested."""
    import requests

    def fail(*args, **kwargs):
        raise AssertionError("premailer tried the network")

    monkeypatch.setattr(requests, "get", fail)
    monkeypatch.setattr(requests.Session, "get", fail)
    html = (
        '<html><head><link rel="stylesheet" href="https://evil.example.com/x.css">'
        "<style>p { color: red }</style></head><body><p>{{ x }}</p></body></html>"
    )
    rendered = render_email(template(html), None, {"x": "y"})
    assert '<p style="color:red">y</p>' in rendered.html
    assert "evil.example.com/x.css" in rendered.html
    assert '<p style="color:red">{{ x }}</p>' in inline_css(html)


@pytest.fixture
def trap(monkeypatch):
    """A listener and a file that must never be read (real sockets, unlike pure's)."""
    monkeypatch.setattr(socket.socket, "connect", _REAL_CONNECT)
    monkeypatch.setattr(socket, "create_connection", _REAL_CREATE_CONNECTION)
    trap = FetchTrap()
    yield trap
    trap.close()


def test_the_trap_sees_a_fetch(trap):
    """The trap itself works: cssutils' default fetcher (what premailer used) reads both."""
    import cssutils

    sheet = cssutils.CSSParser().parseString(trap.imports())
    assert [rule.styleSheet.cssText for rule in sheet.cssRules] == [
        b"p {\n    color: blue\n    }",
        b"p {\n    color: green\n    }",
    ]
    assert len(trap.requests) == 1 and trap.file_reads == 1


def test_validation_inlining_and_rendering_never_fetch_a_stylesheet(trap):
    """Whatever is stored (rows saved before the check, or written with update()),
    rendering and inlining open no URL and no file; the rest of the CSS still applies."""
    imports = trap.imports()
    page = (
        f"<html><head><style>{imports}p {{ color: red }}</style></head>"
        "<body><p>x</p></body></html>"
    )
    assert '<p style="color:red">x</p>' in inline_css(page)

    in_template = template(f"<style>{imports}p {{ color: red }}</style><p>{{{{ x }}}}</p>")
    in_layout = layout(css=f"{imports}p {{ color: red }}")
    from_context = template("<style>{{ css }}</style><p>{{ x }}</p>", pk=2)
    for tpl, lay, context in (
        (in_template, None, {"x": "y"}),
        (template("<p>{{ x }}</p>", pk=3), in_layout, {"x": "y"}),
        (from_context, layout(css="p { color: red }", pk=2), {"x": "y", "css": imports}),
    ):
        html = render_email(tpl, lay, context).html
        assert 'style="color:red">y</p>' in html
        assert "@import" not in html

    with pytest.raises(ValidationError):
        validate_css_source(imports)
    with pytest.raises(ValidationError):
        validate_html_source(f"<style>{imports}</style>")
    trap.assert_untouched()
