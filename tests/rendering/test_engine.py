"""Tests of transactional_mail.rendering.engine: the restricted, metered engine.

Pure: no database, no network (the ``pure`` fixture).
"""

from __future__ import annotations

import pytest
from django.template import TemplateSyntaxError

from tests.rendering.helpers import render, template
from transactional_mail.exceptions import RenderError
from transactional_mail.rendering import render_email
from transactional_mail.rendering.engine import get_engine
from transactional_mail.rendering.library import ALLOWED_FILTERS, ALLOWED_TAGS, allowed_library

pytestmark = pytest.mark.usefixtures("pure")


def test_engine_has_only_the_allow_listed_library():
    """No default builtins, no loadable libraries, no loaders: only the allow-list."""
    engine = get_engine()
    assert engine.template_builtins == [allowed_library]
    assert engine.template_libraries == {}
    assert set(allowed_library.tags) == ALLOWED_TAGS
    assert set(allowed_library.filters) <= ALLOWED_FILTERS
    assert {"date", "as_datetime", "floatformat", "urlize"} <= set(allowed_library.filters)


def test_dunder_attributes_are_a_syntax_error():
    for source in ("{{ s.__class__ }}", "{{ s._x }}", "{% if d.__len__ %}{% endif %}"):
        with pytest.raises(TemplateSyntaxError):
            get_engine().from_string(source)


def test_autoescape_and_missing_values():
    assert render("{{ x }}|{{ missing }}|{{ missing.deeper }}", {"x": "<a&'\">"}) == (
        "&lt;a&amp;&#x27;&quot;&gt;||"
    )


def test_autoescape_off_cannot_unescape_context_data():
    """{% autoescape off %} is not a tag: a stored revision using it does not render, and
    customer-entered markup always comes out escaped."""
    with pytest.raises(TemplateSyntaxError):
        get_engine().from_string("{% autoescape off %}{{ x }}{% endautoescape %}")
    with pytest.raises(RenderError, match="autoescape"):
        render_email(template("{% autoescape off %}{{ x }}{% endautoescape %}"), None, {})
    html = render_email(template("<p>{{ name }}</p>"), None, {"name": "<a href=x>hi</a>"}).html
    assert html == "<p>&lt;a href=x&gt;hi&lt;/a&gt;</p>"
