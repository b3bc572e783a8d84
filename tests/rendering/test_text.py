"""Tests of transactional_mail.rendering.text: the text part derived from the HTML."""

from __future__ import annotations

import pytest

from transactional_mail.rendering.text import html_to_text

pytestmark = pytest.mark.usefixtures("pure")


def test_html_to_text():
    html = """<!DOCTYPE html><html><head><title>T</title><style>p { color: red }</style>
    </head><body><span style="display: none">preheader&zwnj;</span>
    <h1>Hello &amp; welcome</h1>
    <p>First   line<br>second line</p>
    <p>Go <a href="https://x.test/a">there</a>, or <a href="https://x.test/b">https://x.test/b</a>
    or <a href="mailto:help@x.test">help@x.test</a> or <a href="#top">top</a>.</p>
    <ul><li>one</li><li>two<ol><li>a</li><li>b</li></ol></li></ul>
    <table><tr><th>Item</th><th>Price</th></tr>
    <tr><td>Widget</td><td>&euro;10</td></tr></table>
    <script>alert(1)</script><hr><p><a href="https://x.test/i"><img alt="Logo" src="l.png"></a>
    <a href="https://x.test/bare"></a></p>
    </body></html>"""
    assert html_to_text(html) == (
        "Hello & welcome\n\n"
        "First line\nsecond line\n\n"
        "Go there (https://x.test/a), or https://x.test/b or help@x.test or top.\n\n"
        "- one\n- two\n  1. a\n  2. b\n\n"
        "Item  Price\nWidget  €10\n\n"
        "--------------------\n\n"
        "Logo (https://x.test/i) https://x.test/bare"
    )
    assert html_to_text("") == ""
    assert html_to_text("plain") == "plain"
    assert html_to_text("<pre>a\n  b</pre><p>c</p>") == "a\nb\n\nc"
