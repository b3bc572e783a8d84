"""The editor's preview: unsaved sources rendered, errors with lines, warnings for staff."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError

from transactional_mail.rendering.preview import (
    GMAIL_CLIP_BYTES,
    MAX_CONTEXT_CHARS,
    context_paths,
    html_warnings,
    missing_variables,
    parse_context,
    preview_email,
)

CONTEXT = {"order": {"number": "A-1", "items": [{"name": "Tea"}]}, "user": {"name": "Ann"}}


def codes(messages):
    return [message.code for message in messages]


def missing(source, context=CONTEXT):
    return [(m.message.split(" ")[1], m.line) for m in missing_variables(source, context)]


def test_missing_variables_are_named_with_their_line():
    assert missing("Hi {{ user.name }}\n{{ user.last_name }} {{ coupon|default:'-' }}") == [
        ("user.last_name", 2), ("coupon", 2)]


def test_loop_and_with_variables_are_in_scope_and_checked_against_the_first_item():
    source = ("{% for item in order.items %}{{ item.name }} {{ item.price }} "
              "{{ forloop.counter }}{% empty %}{{ item }}{% endfor %}"
              "{% with n=order.number %}{{ n }}{% endwith %}{{ n }}")
    assert missing(source) == [("item.price", 1), ("item", 1), ("n", 1)]


def test_variables_in_conditions_filter_arguments_and_tags_count():
    source = ("{% if order.paid and total > 2 %}x{% endif %}{{ order.number|add:extra }}"
              "{% cycle 'a' 'b' as row %}{{ row }}{% firstof nick user.name %}"
              "{% filter upper %}{{ order.number }}{% endfilter %}"
              "{% regroup order.items by name as groups %}{{ groups }}")
    assert missing(source) == [("order.paid", 1), ("total", 1), ("extra", 1), ("nick", 1)]


def test_a_source_that_does_not_compile_has_no_variable_warnings():
    assert missing("{% if %}") == []


def test_context_paths_list_keys_and_the_first_item_of_lists():
    assert context_paths(CONTEXT) == ("order", "order.number", "order.items", "order.items.0",
                                      "order.items.0.name", "user", "user.name")


def test_context_paths_are_bounded():
    assert len(context_paths({f"k{i}": i for i in range(10_000)})) == 300


@pytest.mark.parametrize(("text", "error"), [
    ("[1, 2]", "must be a JSON object"),
    ("null", "must be a JSON object"),
    ('{"a": ', "not valid JSON: Expecting value (line 1, column 6)"),
    ('{\n"a": 1,\n}', "line 3, column 1"),
    ('{"a": NaN}', "NaN is not JSON data"),
    ('{"a": Infinity}', "Infinity is not JSON data"),
    ('{"a": ' + "[" * 50 + "]" * 50 + "}", "nests 51 levels deep"),
    ('{"a": ' + "9" * 5000 + "}", "not valid JSON"),
    ('{"a": "' + "x" * MAX_CONTEXT_CHARS + '"}', "at most 200,000"),
])
def test_hostile_contexts_get_a_clear_message(text, error):
    with pytest.raises(ValidationError) as info:
        parse_context(text)
    assert error in info.value.messages[0]


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert parse_context('{"a": "' + "[" * 100 + '"}') == {"a": "[" * 100}
    assert parse_context("  ") == {}


def test_html_warnings():
    html = ('<img src="https://x.test/a.png"><img src="https://x.test/b.png" alt="">'
            '<a href="http://x.test/">a</a><a href="/account">b</a><a href="">c</a>'
            '<a href="javascript:alert(1)">d</a><a href="#top">e</a>'
            '<a href="mailto:help@x.test">f</a><a href="https://x.test/">g</a>')
    warnings = html_warnings(html, "text")
    assert codes(warnings) == ["image_alt", "insecure_link", "relative_link", "relative_link",
                               "relative_link"]
    assert "a.png" in warnings[0].message and "/account" in warnings[2].message


def test_no_text_and_gmail_clipping():
    assert codes(html_warnings("<p>x</p>", " ")) == ["no_text"]
    big = "<p>" + "x" * GMAIL_CLIP_BYTES + "</p>"
    assert codes(html_warnings(big, "x")) == ["gmail_clipping"]


def test_preview_renders_unsaved_sources_in_a_layout_with_warnings():
    layout = SimpleNamespace(pk=None, html="<main>{{ content }}</main>", css="",
                             logo_url="", primary_color="#000", background_color="#fff",
                             text_color="#000", footer_html="")
    result = preview_email("Order {{ order.number }}", "<p>{{ user.nick }}</p>", "", layout,
                           CONTEXT, language="fr")
    assert result.subject == "Order A-1"
    assert "<main>" in result.html and not result.errors
    assert codes(result.warnings) == ["missing_variable", "no_text"]  # <p></p>: no text
    assert result.as_dict()["variables"][:2] == ["order", "order.number"]
    derived = preview_email("Hi", "<p>Hi {{ user.name }}</p>", "", None, CONTEXT)
    assert derived.text == "Hi Ann" and codes(derived.warnings) == ["derived_text"]


def test_a_link_staff_wrote_with_a_refused_scheme_is_warned_about_and_shown_neutralised():
    """The warning reads the HTML as written; the preview shows it as it would be sent."""
    result = preview_email("Hi", '<p><a href="javascript:alert(1)">x</a></p>', "x", None, {})
    assert "A link uses a scheme mail clients refuse: javascript:alert(1)." in [
        warning.message for warning in result.warnings]
    assert result.html == '<p><a href="#">x</a></p>'


def test_preview_errors_name_the_part_and_line():
    result = preview_email("Hi", "<p>\n{% load static %}</p>", "{% if %}", None, {})
    assert [(e.part, e.line) for e in result.errors] == [("html", 2), ("text", 1)]
    assert "{% load %} is not available" in result.errors[0].message
    assert result.html == ""


def test_preview_over_budget_is_an_error_with_its_line(settings):
    settings.TRANSACTIONAL_MAIL = {"RENDER_MAX_CHARS": 1000}
    result = preview_email("Hi", "<p>ok</p>\n{% for i in items %}{{ big }}{% endfor %}", "",
                           None, {"items": list(range(100)), "big": "x" * 100})
    [error] = result.errors
    assert (error.code, error.part, error.line) == ("budget", "html", 2)
    assert "RENDER_MAX_CHARS" in error.message
