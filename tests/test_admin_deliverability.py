"""The deliverability lint (admin/deliverability.py) among the warnings of a publish: the
draft rendered with its sample context, its category's unsubscribe link and sender."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from tests.factories import ORDER_CONTEXT, make_layout, make_template

pytestmark = pytest.mark.django_db

ADMIN = "/admin/transactional_mail"
CLEAN_HTML = ('<p>Hello {{ customer.name }}</p>'
              '<p><a href="{{ order.url }}">View order {{ order.number }}</a></p>'
              '<img src="https://cdn.example.com/box.png" alt="A parcel">')
UNSUBSCRIBE_FOOTER = 'Shop Ltd. <a href="{{ unsubscribe_url }}">Unsubscribe</a>'


@pytest.fixture
def categories(settings):
    """``categories(name=options, ...)``: exactly these CATEGORIES in settings."""
    def use(**declared):
        settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "CATEGORIES": declared}
    return use


def lint(client, *, layout=None, **fields) -> list[str]:
    """The warnings publishing a template made of ``fields`` shows (clean by default)."""
    values = {"html": CLEAN_HTML, "text": "Hello {{ customer.name }}",
              "sample_context": ORDER_CONTEXT}
    values.update(fields)
    template = make_template(layout=layout or make_layout(), publish=False, **values)
    response = client.post(f"{ADMIN}/emailtemplate/{template.pk}/publish/")
    assert response.status_code == 302
    messages = [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]
    assert any(level == "success" for level, _ in messages)  # published all the same
    return [text for level, text in messages if level == "warning"]


def test_a_clean_template_gets_no_warning(admin_client):
    assert lint(admin_client) == []


def test_no_text_part_of_its_own(admin_client):
    [warning] = lint(admin_client, text="")
    assert warning.startswith("order_confirmation: revision #1: ")
    assert "The text part is derived from the HTML" in warning


def test_html_over_gmail_clipping_size(admin_client):
    [warning] = lint(admin_client, html=CLEAN_HTML + "<p>" + "Terms. " * 16_000 + "</p>")
    assert "Gmail clips messages over about 102 KB" in warning


def test_an_image_without_alt(admin_client):
    [warning] = lint(admin_client, html=CLEAN_HTML + '<img src="https://cdn.example.com/x.png">')
    assert "An image has no alt text" in warning and "x.png" in warning


@pytest.mark.parametrize(("href", "expected"), [
    ("/orders/1", "A link is relative: /orders/1"),
    ("http://shop.example.com/", "A link uses http: http://shop.example.com/. Use https:."),
    ("javascript:alert(1)", "A link uses a scheme mail clients refuse"),
])
def test_relative_insecure_and_hostile_links(admin_client, href, expected):
    [warning] = lint(admin_client, html=CLEAN_HTML + f'<a href="{href}">x</a>')
    assert expected in warning


def test_links_are_checked_as_rendered_with_the_sample_context(admin_client):
    """The variable's value, not the source, is what the reader clicks."""
    context = {**ORDER_CONTEXT, "order": {"number": "A-1", "url": "http://shop.example.com/o"}}
    [warning] = lint(admin_client, sample_context=context)
    assert "A link uses http: http://shop.example.com/o" in warning


def test_a_non_essential_category_needs_the_unsubscribe_link(admin_client, categories):
    categories(reviews={"essential": False})
    [warning] = lint(admin_client, category="reviews")
    assert "its category reviews is not essential" in warning
    assert "{{ unsubscribe_url }}" in warning


@pytest.mark.parametrize("where", ["footer", "layout html", "template"])
def test_the_unsubscribe_link_in_the_footer_layout_or_template_is_enough(
        admin_client, categories, where):
    categories(reviews={"essential": False})
    layout = make_layout(footer_html=UNSUBSCRIBE_FOOTER) if where == "footer" else None
    if where == "layout html":
        from tests.factories import LAYOUT_HTML
        layout = make_layout(html=LAYOUT_HTML.replace(
            "</td>", '<a href="{{ unsubscribe_url }}">Unsubscribe</a></td>'))
    html = CLEAN_HTML + ('<a href="{{ unsubscribe_url }}">Stop these</a>'
                         if where == "template" else "")
    assert lint(admin_client, category="reviews", layout=layout, html=html) == []


def test_a_translated_footer_without_the_link_warns_for_that_language(admin_client,
                                                                     categories):
    categories(reviews={"essential": False})
    layout = make_layout(footer_html=UNSUBSCRIBE_FOOTER,
                         translations={"fr": {"footer_html": "Boutique SA"}})
    assert lint(admin_client, category="reviews", layout=layout) == []
    [warning] = lint(admin_client, key="review_fr", language="fr", category="reviews",
                     layout=layout)
    assert "is not essential" in warning


@pytest.mark.parametrize("declared", [{}, {"reviews": {"essential": True}},
                                      {"reviews": {}}])
def test_essential_and_undeclared_categories_need_no_unsubscribe_link(admin_client,
                                                                       categories, declared):
    categories(**declared)
    assert lint(admin_client, category="reviews") == []


def test_a_trigger_sending_from_another_domain_than_its_category(admin_client, categories,
                                                                 use_triggers):
    categories(orders={"from_email": "Shop <orders@mail.example.com>"})
    trigger = {"model": "testapp.Order", "on": "created", "template": "order_confirmation",
               "to": "customer.email"}
    use_triggers(same={**trigger, "from_email": "Shop <sales@MAIL.example.com>"},
                 other={**trigger, "from_email": ["Shop <shop@example.net>"]},
                 computed={**trigger, "from_email": "customer.email"},
                 elsewhere={**trigger, "template": "welcome", "from_email": "x@example.org"})
    [warning] = lint(admin_client, subject="Hello", html="<p>Hello</p>", text="Hello",
                    sample_context={})
    assert ("trigger other sends it from Shop <shop@example.net>, but its category orders "
            "sends from the domain mail.example.com") in warning


def test_no_sender_check_without_a_category_sender(admin_client, categories, use_triggers):
    categories(orders={"essential": True})
    use_triggers(other={"model": "testapp.Order", "on": "created",
                        "template": "order_confirmation", "to": "customer.email",
                        "from_email": "shop@example.net"})
    assert lint(admin_client, subject="Hello", html="<p>Hello</p>", text="Hello",
                    sample_context={}) == []


def test_every_problem_at_once_is_one_warning_each(admin_client, categories):
    categories(orders={"essential": False})
    warnings = lint(admin_client, text="", html=CLEAN_HTML + '<img src="/a.png">')
    assert len(warnings) == 4  # text part, the image's alt and relative src, unsubscribe


def test_a_draft_its_sample_cannot_render_says_so(admin_client, settings):
    """A render over budget (here: the budget lowered after the save) is reported, not
    raised: the publish still happens."""
    template = make_template(layout=make_layout(), publish=False, text="Hi",
                             html="{% for item in items %}<p>{{ item }}</p>{% endfor %}",
                             subject="Hi", sample_context={"items": list(range(20))})
    settings.TRANSACTIONAL_MAIL = {**settings.TRANSACTIONAL_MAIL, "RENDER_MAX_ITERATIONS": 5}
    response = admin_client.post(f"{ADMIN}/emailtemplate/{template.pk}/publish/")
    [warning] = [m.message for m in get_messages(response.wsgi_request)
                 if m.level_tag == "warning"]
    assert "it does not render with its sample context, so its HTML could not be checked" \
        in warning
