"""Previewing a template against a real object (admin/real_objects.py, admin/editor.py):
the picker, the bounded search, the trigger's context, and who may see it."""

from __future__ import annotations

import json

import pytest
from django.contrib import admin as django_admin
from django.db import transaction

from tests.factories import ORDER_CONTEXT, PAID_ORDER_TRIGGER, make_template
from tests.test_admin_editor import PREVIEW, fields, staff
from tests.testapp.models import Customer, Order
from transactional_mail.admin import real_objects
from transactional_mail.models import Email
from transactional_mail.triggers.definitions import all_triggers, parse_trigger
from transactional_mail.triggers.firing import fire

pytestmark = pytest.mark.django_db

SEARCH = "/admin/transactional_mail/emailtemplate/object-search/"
BOTH = ("view_emailtemplate", "view_email")



@pytest.fixture
def template(use_triggers):
    use_triggers(paid=PAID_ORDER_TRIGGER)
    return make_template(sample_context=ORDER_CONTEXT,
                         html="<p>{{ number }} for {{ customer.name }}: {{ url }}</p>")


@pytest.fixture
def order():
    ann = Customer.objects.create(name="Ann", email="ann@example.com")
    return Order.objects.create(customer=ann, number="A-7", status="paid")


def real(template, order, **overrides):
    return fields(html=template.html, subject="Order {{ number }}",
                  template_id=str(template.pk), object_id=str(order.pk), **overrides)


def change_page(client, template):
    return client.get(f"/admin/transactional_mail/emailtemplate/{template.pk}/change/")


def test_the_picker_is_offered_with_both_permissions(template):
    html = change_page(staff(perms=BOTH), template).content.decode()
    assert f'data-search-url="{SEARCH}"' in html and "Preview with a real order" in html


def test_no_picker_without_the_send_log_permission(template):
    html = change_page(staff(perms=("view_emailtemplate",)), template).content.decode()
    assert 'id="tm-editor"' in html and 'id="tm-object"' not in html


def test_no_picker_for_a_template_no_trigger_sends(use_triggers):
    use_triggers(paid=PAID_ORDER_TRIGGER)
    other = make_template("newsletter_welcome")
    assert 'id="tm-object"' not in change_page(staff(perms=BOTH), other).content.decode()


def test_preview_renders_the_triggers_context_for_the_object(template, order):
    data = staff(perms=BOTH).post(PREVIEW, real(template, order)).json()
    assert data["errors"] == []
    assert "A-7 for Ann: https://shop.example.com/orders/A-7" in data["html"]
    assert data["context"]["number"] == "A-7"
    assert "customer.name" in data["variables"] and "order.number" not in data["variables"]
    assert not [w for w in data["warnings"] if w["code"] == "missing_variable"]


def test_the_context_is_what_fire_would_queue(template, order):
    data = staff(perms=BOTH).post(PREVIEW, real(template, order)).json()
    with transaction.atomic():
        [email] = fire(all_triggers()["paid"], order)
    assert Email.objects.get(pk=email.pk).context == data["context"]


def test_the_real_preview_needs_the_send_log_permission(template, order):
    client = staff(perms=("view_emailtemplate",))
    assert client.post(PREVIEW, real(template, order)).status_code == 403
    assert client.get(SEARCH, {"template": template.pk, "q": ""}).status_code == 403
    assert client.post(PREVIEW, fields()).status_code == 200  # the sample preview stays


def test_the_send_log_permission_alone_is_not_enough(template, order):
    client = staff(perms=("view_email",))
    assert client.post(PREVIEW, real(template, order)).status_code == 403
    assert client.get(SEARCH, {"template": template.pk}).status_code == 403


def test_a_failing_context_is_a_clear_error_not_a_500(template, order, use_triggers):
    use_triggers(paid={**PAID_ORDER_TRIGGER, "context": "tests.testapp.mail.explode"})
    response = staff(perms=BOTH).post(PREVIEW, real(template, order))
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["code"] == "object"
    assert "RuntimeError: the context service is down" in error["message"]
    assert "'paid'" in error["message"]


def test_an_object_that_does_not_exist(template, order):
    client = staff(perms=BOTH)
    for missing in (str(order.pk + 100), "not-an-id"):
        response = client.post(PREVIEW, {**real(template, order),
                                                    "object_id": missing})
        assert response.status_code == 400
        assert "There is no order with id" in response.json()["errors"][0]["message"]


def test_a_trigger_that_would_not_fire_still_previews_with_a_note(template, order,
                                                                   use_triggers):
    use_triggers(paid={**PAID_ORDER_TRIGGER, "when": {"status": "shipped"}})
    data = staff(perms=BOTH).post(PREVIEW, real(template, order)).json()
    assert data["errors"] == [] and data["context"]["number"] == "A-7"
    assert data["warnings"][0]["code"] == "object"
    assert "would not send" in data["warnings"][0]["message"]


def test_search_by_id_is_bounded_and_newest_first(template, order):
    for n in range(25):
        Order.objects.create(customer=order.customer, number=f"B-{n}")
    client = staff(perms=BOTH)
    data = client.get(SEARCH, {"template": template.pk, "q": ""}).json()
    assert len(data["results"]) == real_objects.MAX_RESULTS
    assert data["results"][0]["str"] == "Order B-24" and data["model"] == "order"
    data = client.get(SEARCH, {"template": template.pk, "q": str(order.pk)}).json()
    assert data["results"] == [{"id": str(order.pk), "str": "Order A-7"}]
    # The test project has no ModelAdmin for Order: text is not searched at all.
    assert client.get(SEARCH, {"template": template.pk, "q": "A-7"}).json()["results"] == []


def test_search_uses_the_sites_admin_search_fields(template, order):
    class OrderAdmin(django_admin.ModelAdmin):
        search_fields = ["number", "=customer__email"]

    django_admin.site.register(Order, OrderAdmin)
    try:
        client = staff(perms=BOTH)
        found = client.get(SEARCH, {"template": template.pk, "q": "a-7"}).json()["results"]
        assert [item["str"] for item in found] == ["Order A-7"]
        found = client.get(SEARCH, {"template": template.pk, "q": "ANN@example.com"}).json()
        assert len(found["results"]) == 1
        assert client.get(SEARCH, {"template": template.pk, "q": "nn@ex"}).json()[
            "results"] == []  # "=" is an exact match
        html = change_page(client, template).content.decode()
        assert "Search by id or by number, customer__email" in html
    finally:
        django_admin.site.unregister(Order)


def test_search_for_a_template_without_a_trigger_is_404(use_triggers):
    use_triggers(paid=PAID_ORDER_TRIGGER)
    other = make_template("newsletter_welcome")
    assert staff(perms=BOTH).get(SEARCH, {"template": other.pk}).status_code == 404


def test_declared_paths():
    listed = parse_trigger("x", {**PAID_ORDER_TRIGGER, "context": ["number", "customer.name"]})
    assert real_objects.declared_paths(listed) == ("number", "customer", "customer.name")
    default = parse_trigger("x", {k: v for k, v in PAID_ORDER_TRIGGER.items() if k != "context"})
    assert real_objects.declared_paths(default) == ("object", "object.id", "object.str")
    assert real_objects.declared_paths(parse_trigger("x", PAID_ORDER_TRIGGER)) is None


def test_sample_context_json_is_unchanged_by_a_real_preview(template, order):
    before = json.dumps(template.sample_context, sort_keys=True)
    staff(perms=BOTH).post(PREVIEW, real(template, order))
    template.refresh_from_db()
    assert json.dumps(template.sample_context, sort_keys=True) == before


# --- The variables panel when the sample context is empty ----------------------------------


def test_empty_sample_context_lists_the_triggers_declared_paths(use_triggers):
    use_triggers(paid={**PAID_ORDER_TRIGGER, "context": ["number", "customer.name"]})
    template = make_template()
    data = staff(perms=("view_emailtemplate",)).post(PREVIEW, fields(
        sample_context="{}", template_id=str(template.pk))).json()
    assert data["variables"] == ["number", "customer", "customer.name"]
    assert data["variables_source"] == "trigger" and "'paid'" not in data["variables_note"]
    assert "paid" in data["variables_note"]


def test_empty_sample_context_and_the_default_context(use_triggers):
    use_triggers(paid={k: v for k, v in PAID_ORDER_TRIGGER.items() if k != "context"})
    template = make_template()
    data = staff(perms=("view_emailtemplate",)).post(PREVIEW, fields(
        sample_context="", template_id=str(template.pk))).json()
    assert data["variables"] == ["object", "object.id", "object.str"]


def test_empty_sample_context_and_a_context_callable_says_to_pick_an_object(template):
    data = staff(perms=("view_emailtemplate",)).post(PREVIEW, fields(
        sample_context="{}", template_id=str(template.pk))).json()
    assert data["variables"] == [] and "pick a real object" in data["variables_note"]


def test_a_sample_context_keeps_its_own_variables(template):
    data = staff(perms=BOTH).post(PREVIEW, fields(template_id=str(template.pk))).json()
    assert data["variables_source"] == "sample" and "order.number" in data["variables"]


def test_the_editor_panel_carries_the_template_id(template):
    html = change_page(staff(perms=("view_emailtemplate",)), template).content.decode()
    assert f'data-template-id="{template.pk}"' in html


def test_a_missing_variable_is_missing_from_the_objects_context(template, order):
    data = staff(perms=BOTH).post(PREVIEW, real(template, order, text="{{ coupon }}")).json()
    [warning] = [w for w in data["warnings"] if w["code"] == "missing_variable"]
    assert warning["message"].startswith("{{ coupon }} is not in this object's context")
