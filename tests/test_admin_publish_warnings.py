"""Publishing warns about variables the draft uses that its sample context lacks
(admin/templates.py's publish_warnings, shown by admin/history.py): the publish happens."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from tests import factories
from tests.factories import ORDER_CONTEXT, PAID_ORDER_TRIGGER, make_layout
from tests.testapp.models import Customer, Order
from transactional_mail.models import Email

pytestmark = pytest.mark.django_db

ADMIN = "/admin/transactional_mail"


def make_template(*args, **fields):
    """A template with a text part of its own: these tests are about variables, not the
    deliverability lint (tests/test_admin_deliverability.py)."""
    fields.setdefault("text", "Thanks for your order.")
    return factories.make_template(*args, **fields)


@pytest.fixture
def template():
    return make_template(layout=make_layout(), sample_context=ORDER_CONTEXT)


def publish(client, template):
    response = client.post(f"{ADMIN}/emailtemplate/{template.pk}/publish/")
    assert response.status_code == 302
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def test_publishing_warns_about_missing_variables_and_still_publishes(template, admin_client):
    template.subject = "Order {{ order.number }}: {{ coupon.code }}"
    template.html = "<p>Hi {{ customer.name }}</p>\n<p>{{ customr.name }}</p>"
    template.save()
    messages = publish(admin_client, template)
    template.refresh_from_db()
    assert template.published_revision.number == 2
    [warning] = [text for level, text in messages if level == "warning"]
    assert "revision #2 uses 2 variables that its sample context does not have" in warning
    assert "{{ coupon.code }} (subject, line 1)" in warning
    assert "{{ customr.name }} (html, line 2)" in warning
    assert "{{ customer.name }}" not in warning and "{{ order.number }}" not in warning
    assert any(level == "success" for level, _ in messages)


def test_no_warning_when_the_sample_context_has_every_variable(template, admin_client):
    template.subject = "Your order {{ order.number }}"
    template.save()
    messages = publish(admin_client, template)
    assert [level for level, _ in messages] == ["success"]


def test_the_publish_action_warns_too(template, admin_client):
    template.subject = "{{ nope }}"
    template.save()
    response = admin_client.post(f"{ADMIN}/emailtemplate/", {
        "action": "publish_selected", "_selected_action": [template.pk]}, follow=True)
    texts = [(m.level_tag, m.message) for m in response.context["messages"]]
    template.refresh_from_db()
    assert template.published_revision.number == 2
    assert any(level == "warning" and "{{ nope }} (subject, line 1)" in text
               and "a variable that its sample context" in text for level, text in texts)


def test_a_long_list_is_cut(admin_client):
    html = "\n".join(f"<p>{{{{ v{n} }}}}</p>" for n in range(15))
    template = make_template(layout=make_layout(), sample_context={}, publish=False,
                             subject="Hi", html=html)
    [warning] = [text for level, text in publish(admin_client, template)
                 if level == "warning"]
    assert "uses 15 variables" in warning and "and 5 more" in warning
    assert "{{ v9 }}" in warning and "{{ v10 }}" not in warning


# --- The trigger's context -----------------------------------------------------------------




def logged(template, trigger_key, context):
    return Email.objects.create(template_key=template.key, trigger_key=trigger_key,
                                to=["a@example.com"], context=context,
                                next_attempt_at=timezone.now())


def warnings_after_publishing(client, template, subject):
    template.subject, template.html, template.text = subject, "<p>Hello</p>", "Hello"
    template.save()
    return [text for level, text in publish(client, template) if level == "warning"]


def test_a_variable_the_declared_trigger_context_lacks_is_named(use_triggers, admin_client):
    """A trigger with a list of paths declares its context: a variable outside it renders
    as nothing in every real email, even when the sample context has it."""
    use_triggers(paid={**PAID_ORDER_TRIGGER, "context": ["number", "customer.name"]})
    template = make_template(sample_context={"number": "A-1", "customer": {"name": "Ann"},
                                             "order": {"total": "9"}})
    [warning] = warnings_after_publishing(
        admin_client, template, "{{ number }} {{ customer.name }} {{ order.total }}")
    assert "uses a variable that the context the trigger “paid” declares does not have: " \
           "{{ order.total }} (subject, line 1). Real emails render it as nothing" in warning


def test_below_a_declared_path_is_not_guessed(use_triggers, admin_client):
    use_triggers(paid={**PAID_ORDER_TRIGGER, "context": ["customer"]})
    template = make_template(sample_context={"customer": {"name": "Ann"}})
    assert warnings_after_publishing(admin_client, template, "{{ customer.name }}") == []


def test_a_context_built_by_code_is_read_from_the_newest_logged_email(use_triggers,
                                                                      admin_client):
    use_triggers(paid=PAID_ORDER_TRIGGER)
    template = make_template(sample_context={"coupon": "X", "number": "A-1"})
    logged(template, "other", {"coupon": "Y"})
    older = logged(template, "paid", {"coupon": "Y"})
    newest = logged(template, "paid", {"number": "A-9"})
    assert older.created_at <= newest.created_at
    [warning] = warnings_after_publishing(admin_client, template, "{{ number }} {{ coupon }}")
    assert f"the context of email #{newest.pk}, the newest the trigger “paid” queued " \
           "does not have: {{ coupon }} (subject, line 1)" in warning


def test_without_a_logged_email_the_newest_object_gives_the_context(use_triggers,
                                                                    admin_client):
    use_triggers(paid=PAID_ORDER_TRIGGER)
    ann = Customer.objects.create(name="Ann", email="ann@example.com")
    Order.objects.create(customer=ann, number="A-6", status="paid")
    newest = Order.objects.create(customer=ann, number="A-7", status="paid")
    template = make_template(sample_context={"coupon": "X", "number": "A-1"})
    [warning] = warnings_after_publishing(admin_client, template, "{{ number }} {{ coupon }}")
    assert f"the trigger “paid” builds for order {newest.pk} does not have: " \
           "{{ coupon }}" in warning


def test_no_trigger_context_to_read_means_only_the_sample_is_checked(use_triggers,
                                                                      admin_client):
    use_triggers(paid=PAID_ORDER_TRIGGER)  # no email logged, no order exists
    template = make_template(sample_context={"number": "A-1"})
    assert warnings_after_publishing(admin_client, template, "{{ number }}") == []


def test_both_contexts_lacking_a_variable_give_two_warnings(use_triggers, admin_client):
    use_triggers(paid={**PAID_ORDER_TRIGGER, "context": ["number"]})
    template = make_template(sample_context={"number": "A-1"})
    sample, trigger = warnings_after_publishing(admin_client, template, "{{ nope }}")
    assert "its sample context does not have: {{ nope }}" in sample
    assert "the context the trigger “paid” declares does not have: {{ nope }}" in trigger
