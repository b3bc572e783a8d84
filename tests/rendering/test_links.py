"""Tests of transactional_mail.rendering.links: no URL attribute of an email runs script."""

from __future__ import annotations

import time

import pytest

from tests.rendering.helpers import layout, template
from transactional_mail.rendering import render_email
from transactional_mail.rendering.layout import PREHEADER_MARKER
from transactional_mail.rendering.links import neutralize_urls

pytestmark = pytest.mark.usefixtures("pure")


@pytest.mark.parametrize(("html", "expected"), [
    ('<a href="javascript:alert(1)">x</a>', '<a href="#">x</a>'),
    ("<a href='JaVaScRiPt:alert(1)'>x</a>", "<a href='#'>x</a>"),
    ("<a href=javascript:alert(1)>x</a>", "<a href=#>x</a>"),
    ('<a HREF = "vbscript:msgbox(1)">x</a>', '<a HREF = "#">x</a>'),
    ('<a href=" \x01\x1f java\tscr\nipt:alert(1)">x</a>', '<a href="#">x</a>'),
    ('<a href="&#106;avascript&colon;alert(1)">x</a>', '<a href="#">x</a>'),
    ('<a href="&#x6A;ava&Tab;script:alert(1)">x</a>', '<a href="#">x</a>'),
    ('<a href="file:///etc/passwd">x</a>', '<a href="#">x</a>'),
    ('<a href="data:text/html,x">x</a>', '<a href="#">x</a>'),
    ('<img src="data:text/html,x" alt="">', '<img src="#" alt="">'),
    ('<iframe src="data:image/svg+xml,x"></iframe>', '<iframe src="#"></iframe>'),
    ('<a href="data:image/png;base64,AA">x</a>', '<a href="#">x</a>'),
    ('<form action="javascript:x"><button formaction="javascript:y">',
     '<form action="#"><button formaction="#">'),
    ('<td background="javascript:x">', '<td background="#">'),
    ('<video poster="javascript:x">', '<video poster="#">'),
    ('<svg><a xlink:href="javascript:x"></a></svg>', '<svg><a xlink:href="#"></a></svg>'),
    ('<img srcset="https://a.test/x.png 1x, javascript:alert(1) 2x" alt="">',
     '<img srcset="#" alt="">'),
    # What surrounds the attribute does not hide it.
    ('<a title="a>b" href="javascript:x">x</a>', '<a title="a>b" href="#">x</a>'),
    ('<a title="a<b" href="javascript:x">x</a>', '<a title="a<b" href="#">x</a>'),
    ("<a title=it's href='javascript:x'>x</a>", "<a title=it's href='#'>x</a>"),
    ('<a title="x"href="javascript:x">x</a>', '<a title="x"href="#">x</a>'),
    ('<a/href="javascript:x">x</a>', '<a/href="#">x</a>'),
])
def test_a_url_attribute_with_a_scheme_that_can_run_script_becomes_a_fragment(html,
                                                                             expected):
    assert neutralize_urls(html) == expected


@pytest.mark.parametrize("html", [
    '<a href="https://shop.example.com/x?a=1&amp;b=2">x</a>',
    '<a href="HTTP://shop.example.com/">x</a>',
    '<a href="mailto:help@example.com">x</a><a href="tel:+331">t</a><a href="sms:+331">s</a>',
    '<img src="cid:logo" alt=""><img src="data:image/png;base64,AA==" alt="">',
    '<img srcset="data:image/png;base64,AA,BB 1x, https://a.test/y.png 2x" alt="">',
    '<a href="#top">t</a><a href="/relative">r</a><a href="">e</a><a href>n</a>',
    '<p>Type href=javascript:x in the text: it is no link</p>',
    '<a data-href="javascript:x" href="https://a.test/">x</a>',
    '</a href="javascript:x">',
    '<a href="javascript:x"',  # no tag: browsers render nothing of it
])
def test_safe_urls_and_what_is_no_url_attribute_are_left_as_they_are(html):
    assert neutralize_urls(html) == html


def test_a_tag_without_its_end_costs_a_linear_scan():
    """Markup that never closes its tag is read once, not once per '<'."""
    for html in ("<a href=x " * 20_000, '<a href="x" title="<a' * 20_000):
        started = time.perf_counter()
        neutralize_urls(html)
        assert time.perf_counter() - started < 1


def test_render_email_neutralizes_a_javascript_url_from_the_context():
    """A context value used as a link never reaches the sent HTML as a script, nor the
    text part derived from it as a link."""
    rendered = render_email(template('<p><a href="{{ url }}">Reset</a></p>', text=""),
                            None, {"url": "JavaScript:alert(document.cookie)"})
    assert rendered.html == '<p><a href="#">Reset</a></p>'
    assert "alert" not in rendered.text


def test_render_email_neutralizes_what_the_layout_fills_in_after_the_render():
    """The context's preheader, put where the layout's marker is once the email is
    rendered, is checked too: a marker used as a link cannot smuggle a script in."""
    rendered = render_email(template('<a href="{{ url }}">x</a>'), layout(pk=None),
                            {"url": PREHEADER_MARKER, "preheader": "javascript:alert(1)"})
    assert rendered.html == '<html><body><a href="#">x</a></body></html>'
