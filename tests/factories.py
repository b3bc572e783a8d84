"""Small builders for the rows most tests need."""

from __future__ import annotations

from transactional_mail.models import EmailTemplate, Layout

LAYOUT_HTML = """<!DOCTYPE html>
<html><head><meta charset="utf-8"></head>
<body><table class="shell"><tr><td>
{% if brand.logo_url %}<img src="{{ brand.logo_url }}" alt="logo">{% endif %}
{{ content }}
<p class="footer">{{ brand.footer_html }}</p>
</td></tr></table></body></html>"""

LAYOUT_CSS = """
.shell { background: #ffffff; width: 600px; }
p { color: #333333; font-family: Arial, sans-serif; }
a.button { background: #1a73e8; color: #ffffff; padding: 8px 16px; }
"""


#: A trigger sending ``order_confirmation`` when an order of the test app is updated, with
#: the test app's order context (number, total, status, customer.name, url).
PAID_ORDER_TRIGGER = {"model": "testapp.Order", "on": "updated",
                      "template": "order_confirmation", "to": "customer.email",
                      "context": "tests.testapp.mail.order_context"}

#: A 1x1 transparent PNG: a logo upload.
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
       b"\x00\x00\x00\x00IEND\xaeB`\x82")

def make_layout(*, publish: bool = True, **fields) -> Layout:
    """A layout, published unless ``publish=False`` (a draft emails do not use)."""
    values = {"name": "Brand", "html": LAYOUT_HTML, "css": LAYOUT_CSS,
              "logo_url": "https://cdn.example.com/logo.png", "footer_html": "Shop Ltd"}
    values.update(fields)
    layout = Layout.objects.create(**values)
    if publish:
        layout.publish()
    return layout


def make_template(key: str = "order_confirmation", *, publish: bool = True,
                  **fields) -> EmailTemplate:
    """A template, published unless ``publish=False`` (a draft emails do not use)."""
    values = {
        "key": key,
        "subject": "Order {{ order.number }} confirmed",
        "html": (
            "<p>Hello {{ customer.name }},</p>"
            "<p>Thanks for order {{ order.number }}.</p>"
            '<p><a class="button" href="{{ order.url }}">View order</a></p>'
        ),
        "category": "orders",
    }
    values.update(fields)
    template = EmailTemplate.objects.create(**values)
    if publish:
        template.publish()
    return template


ORDER_CONTEXT = {
    "customer": {"name": "Ann"},
    "order": {"number": "A-1001", "url": "https://shop.example.com/orders/A-1001"},
}


def published(enqueued) -> list[tuple[int, ...]]:
    """The email ids of each deliver task the ``enqueued`` fixture caught, in order."""
    return [call.args[1] for call in enqueued.call_args_list]
