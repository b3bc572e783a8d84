"""Publishing warns about variables the draft uses that its sample context lacks
(admin/templates.py's publish_warnings, shown by admin/history.py): the publish happens."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from tests.factories import ORDER_CONTEXT, make_layout, make_template

pytestmark = pytest.mark.django_db

ADMIN = "/admin/transactional_mail"


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
    assert "revision #2 uses 2 variables its sample context does not have" in warning
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
               and "a variable its sample context" in text for level, text in texts)


def test_a_long_list_is_cut(admin_client):
    html = "\n".join(f"<p>{{{{ v{n} }}}}</p>" for n in range(15))
    template = make_template(layout=make_layout(), sample_context={}, publish=False,
                             subject="Hi", html=html)
    [warning] = [text for level, text in publish(admin_client, template)
                 if level == "warning"]
    assert "uses 15 variables" in warning and "and 5 more" in warning
    assert "{{ v9 }}" in warning and "{{ v10 }}" not in warning
