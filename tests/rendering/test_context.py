"""Tests of transactional_mail.rendering.context: templates see read-only JSON data."""

from __future__ import annotations

import datetime
import decimal

import pytest
from django.utils.safestring import mark_safe

from tests.rendering.helpers import render, template
from transactional_mail.exceptions import RenderError
from transactional_mail.rendering import render_email
from transactional_mail.rendering.context import FrozenDict, freeze_context

pytestmark = pytest.mark.usefixtures("pure")


def test_zero_argument_methods_cannot_mutate_or_reach_anything():
    """Django calls zero-argument methods; on the frozen context none can do harm."""
    context = {"d": {"a": 1}, "items": [1, 2, 3], "s": "abc"}
    output = render(
        "[{{ d.clear }}][{{ items.pop }}][{{ items.clear }}][{{ d.popitem }}]"
        "[{{ s.upper }}][{{ d.a }}][{{ items|length }}]"
        "{% for k, v in d.items %}({{ k }}={{ v }}){% endfor %}"
        # No copy() to clear either (a frozen mapping has none).
        "{{ d.copy.clear }}{{ d.a }}",
        context,
    )
    assert output == "[][][][][ABC][1][3](a=1)1"
    assert context == {"d": {"a": 1}, "items": [1, 2, 3], "s": "abc"}


def test_frozen_context_is_read_only_json():
    frozen = freeze_context(
        {
            "d": {"n": [1, {"x": None}], 1: True},
            "price": decimal.Decimal("9.90"),
            "day": datetime.date(2024, 5, 1),
            "safe": mark_safe("<b>"),
        }
    )
    assert isinstance(frozen["d"], FrozenDict)
    assert frozen["d"]["n"] == (1, FrozenDict({"x": None}))
    assert frozen["d"]["1"] is True  # a JSON key is a string
    assert frozen["price"] == "9.90" and frozen["day"] == "2024-05-01"
    assert type(frozen["safe"]) is str  # a SafeString in the context is escaped
    assert render("{{ s }}", {"s": mark_safe("<b>")}) == "&lt;b&gt;"
    with pytest.raises(TypeError):
        frozen["d"]["x"] = 1
    for change in (frozen["d"].clear, frozen["d"].popitem, lambda: frozen["d"].update(x=1),
                   lambda: frozen["d"].pop("1"), lambda: frozen["d"].setdefault("x", 1)):
        with pytest.raises(TypeError):
            change()
    assert frozen["d"] == {"n": (1, {"x": None}), "1": True}
    assert not hasattr(frozen["d"]["n"], "append")


def test_frozen_data_prints_like_the_json_it_holds():
    """{{ order }} never shows a Python type name to a customer."""
    context = {"order": {"items": [{"sku": "X", "qty": 2}], "tags": ["a"]}}
    assert render("{{ order.items }}", context) == (
        "[{&#x27;sku&#x27;: &#x27;X&#x27;, &#x27;qty&#x27;: 2}]")
    assert render("{{ order.tags }}|{{ order }}", context).startswith("[&#x27;a&#x27;]|{")


def test_context_with_python_objects_is_refused():
    """A model instance (or any object) in the context never reaches a template."""
    with pytest.raises(RenderError, match=r"context\['order'\]\['customer'\] is a object"):
        freeze_context({"order": {"customer": object()}})
    with pytest.raises(RenderError):
        render_email(template("{{ x }}"), None, {"x": {1, 2}})
