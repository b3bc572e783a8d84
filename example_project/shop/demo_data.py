"""The demo's seed data: a branded layout, the shop's email templates and two customers,
and a little history for the admin to show (``seed_history()``): a template with an
unpublished draft, an email whose first attempt failed (HTTP 500) and whose retry was sent,
a test email, and a suppression with its history.

One template per trigger in ``TRANSACTIONAL_MAIL["TRIGGERS"]`` (welcome,
order_confirmation, shipping_update, review_request, order_refunded, login_alert), plus
password_reset for the direct ``send()``; each with a sample context (example data for
previews). ``seed()`` creates what is missing and never overwrites rows that exist, so edits
made in the admin survive a restart of the demo.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from transactional_mail.models import (
    Email,
    EmailTemplate,
    Layout,
    Suppression,
    SuppressionHistory,
)
from transactional_mail.models.attempts import AttemptOutcome, EmailAttempt
from transactional_mail.models.log import EmailStatus
from transactional_mail.models.suppression import SuppressionChange, SuppressionReason
from transactional_mail.rendering import render_email

from .models import Customer

# The layout renders once per layout revision with the brand values only ({{ brand.* }});
# {{ content }} is where each template's body goes.
LAYOUT_HTML = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
<table class="wrapper" role="presentation" width="100%" cellpadding="0" cellspacing="0">
  <tr><td align="center">
    <table class="card" role="presentation" width="600" cellpadding="0" cellspacing="0">
      <tr><td class="header">
        {% if brand.logo_url %}<img src="{{ brand.logo_url }}" alt="{{ brand.name }}" height="31">
        {% else %}{{ brand.name }}{% endif %}
      </td></tr>
      <tr><td class="content">{{ content }}</td></tr>
      <tr><td class="footer">{{ brand.footer_html }}</td></tr>
    </table>
  </td></tr>
</table>
</body>
</html>
"""

# Inlined into every element by premailer, once per (template, layout) revision pair.
LAYOUT_CSS = """
body { margin: 0; padding: 0; background-color: {{ brand.background_color }}; }
.wrapper { background-color: {{ brand.background_color }}; padding: 24px 0; }
.card {
  background-color: #ffffff; border-radius: 8px;
  font-family: Helvetica, Arial, sans-serif; color: {{ brand.text_color }};
}
.header {
  background-color: {{ brand.primary_color }}; color: #ffffff; padding: 16px 24px;
  font-size: 20px; font-weight: bold; border-radius: 8px 8px 0 0;
}
.content { padding: 24px; font-size: 15px; line-height: 1.5; }
.footer { padding: 16px 24px; font-size: 12px; color: #6b7280; border-top: 1px solid #e5e7eb; }
h1 { font-size: 22px; margin: 0 0 16px; color: {{ brand.primary_color }}; }
a { color: {{ brand.primary_color }}; }
a.button {
  display: inline-block; background-color: {{ brand.primary_color }}; color: #ffffff;
  padding: 10px 18px; border-radius: 6px; text-decoration: none;
}
table.items { width: 100%; border-collapse: collapse; margin: 16px 0; }
table.items th { text-align: left; border-bottom: 2px solid #e5e7eb; padding: 6px 4px; }
table.items td { border-bottom: 1px solid #e5e7eb; padding: 6px 4px; }
table.items tr.total td { font-weight: bold; border-bottom: none; }
""".strip()

LAYOUT_FOOTER = (
    "Demo Shop · 1 Example Street · Springfield<br>"
    "You get this email because of an order or an account at Demo Shop."
)

CUSTOMER_SAMPLE = {
    "customer": {"name": "Ada Lovelace", "first_name": "Ada", "email": "ada@example.com"},
    "shop": {
        "name": "Demo Shop",
        "support_email": "support@example.com",
        "url": "http://127.0.0.1:8000/",
    },
}
ORDER_SAMPLE = {
    **CUSTOMER_SAMPLE,
    "order": {
        "id": 1,
        "number": "A00001",
        "status": "paid",
        "status_display": "paid",
        "date": "23 November 2026",
        "total": "$36.50",
        "url": "http://127.0.0.1:8000/#order-1",
        "tracking_number": "1Z999AA10123456784",
        "tracking_url": "https://tracking.example.com/?n=1Z999AA10123456784",
    },
    "items": [
        {"product": "Logo mug", "quantity": 2, "unit_price": "$12.00", "subtotal": "$24.00"},
        {"product": "Sticker pack", "quantity": 1, "unit_price": "$4.50", "subtotal": "$4.50"},
        {"product": "T-shirt", "quantity": 1, "unit_price": "$8.00", "subtotal": "$8.00"},
    ],
}

REVIEW_SAMPLE = {
    **ORDER_SAMPLE,
    "order": {**ORDER_SAMPLE["order"], "status": "delivered", "status_display": "delivered"},
    "items": [
        {**item, "review_url": f"http://127.0.0.1:8000/?review={item['product']}#order-1"}
        for item in ORDER_SAMPLE["items"]
    ],
}
REFUND_SAMPLE = {
    **ORDER_SAMPLE,
    "order": {**ORDER_SAMPLE["order"], "status": "refunded", "status_display": "refunded"},
}
LOGIN_SAMPLE = {
    "user": {"name": "Ada Lovelace", "first_name": "Ada", "email": "ada@example.com"},
    "device": {
        "summary": "Firefox on Linux",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "ip_address": "203.0.113.7",
    },
    "login_time": "2026-11-23T16:41:07.123Z",
    "shop": CUSTOMER_SAMPLE["shop"],
    "reset_url": "http://127.0.0.1:8000/#password-reset",
}

ITEMS_TABLE = """<table class="items">
  <tr><th>Product</th><th>Qty</th><th>Price</th></tr>
  {% for item in items %}<tr>
    <td>{{ item.product }}</td><td>{{ item.quantity }}</td><td>{{ item.subtotal }}</td>
  </tr>
  {% endfor %}<tr class="total"><td colspan="2">Total</td><td>{{ order.total }}</td></tr>
</table>"""

TEMPLATES = [
    {
        "key": "order_confirmation",
        "language": "",
        "category": "orders",
        "subject": "Order {{ order.number }} confirmed",
        "html": """<h1>Thank you, {{ customer.first_name }}!</h1>
<p>We have received your order <strong>{{ order.number }}</strong> of {{ order.date }}.</p>
"""
        + ITEMS_TABLE
        + """
<p>Your invoice is attached. We will email you again when the order ships.</p>
<p><a class="button" href="{{ order.url }}">View your order</a></p>""",
        "text": "",  # derived from the HTML
        "sample_context": ORDER_SAMPLE,
    },
    {
        "key": "order_confirmation",
        "language": "fr",
        "category": "orders",
        "subject": "Commande {{ order.number }} confirmée",
        "html": """<h1>Merci, {{ customer.first_name }} !</h1>
<p>Nous avons bien reçu votre commande <strong>{{ order.number }}</strong> du {{ order.date }}.</p>
"""
        + ITEMS_TABLE.replace("Product", "Article")
        .replace("Qty", "Qté")
        .replace("Price", "Prix")
        .replace(">Total<", ">Total<")
        + """
<p>Votre facture est jointe. Nous vous écrirons à l'expédition de la commande.</p>
<p><a class="button" href="{{ order.url }}">Voir votre commande</a></p>""",
        "text": "",
        "sample_context": ORDER_SAMPLE,
    },
    {
        "key": "welcome",
        "language": "",
        "category": "account",
        "subject": "Welcome to {{ shop.name }}, {{ customer.first_name }}",
        "html": """<h1>Welcome, {{ customer.first_name }}!</h1>
<p>Thank you for choosing {{ shop.name }}. You will find your orders and their status on
our site, and we will email you at every step: payment, shipping, delivery.</p>
<p><a class="button" href="{{ shop.url }}">Visit the shop</a></p>
<p>Questions? Reply to this email or write to {{ shop.support_email }}.</p>""",
        "text": "",
        "sample_context": CUSTOMER_SAMPLE,
    },
    {
        # Sent by transactional_mail.auth.PasswordResetForm, with its context keys (those
        # of the app's password_reset starter). Seeded only while no password_reset
        # template exists: installed starter templates take its place.
        "key": "password_reset",
        "language": "",
        "category": "account",
        "subject": "Reset your {{ site_name }} password",
        "html": """<h1>Reset your password</h1>
<p>Hello {{ user.name }}, someone (hopefully you) asked to reset the password of your
{{ site_name }} account.</p>
<p><a class="button" href="{{ reset_url }}">Choose a new password</a></p>
<p>The link is valid for {{ link_valid_hours }} hours. If you did not ask for it, ignore
this email: your password stays the same.</p>""",
        # A hand-written text part, used as is instead of one derived from the HTML.
        "text": """Hello {{ user.name }},

Someone (hopefully you) asked to reset the password of your {{ site_name }} account.
Choose a new password here (valid for {{ link_valid_hours }} hours):

{{ reset_url }}

If you did not ask for it, ignore this email: your password stays the same.""",
        "sample_context": {
            "user": {"name": "Ada Lovelace", "email": "ada@example.com"},
            "reset_url": "http://127.0.0.1:8000/accounts/reset/MQ/sample-token/",
            "link_valid_hours": 72,
            "site_name": "Demo Shop",
            "site_url": "http://127.0.0.1:8000",
        },
    },
    {
        "key": "shipping_update",
        "language": "",
        "category": "orders",
        "subject": "Your order {{ order.number }} is on its way",
        "html": """<h1>Good news, {{ customer.first_name }}!</h1>
<p>Your order <strong>{{ order.number }}</strong> has shipped.</p>
{% if order.tracking_number %}<p>Tracking number: <strong>{{ order.tracking_number }}</strong></p>
<p><a class="button" href="{{ order.tracking_url }}">Track your parcel</a></p>{% endif %}
"""
        + ITEMS_TABLE,
        "text": "",
        "sample_context": ORDER_SAMPLE,
    },
    {
        "key": "review_request",
        "language": "",
        "category": "reviews",
        "subject": "How do you like your order {{ order.number }}, {{ customer.first_name }}?",
        "html": """<h1>How was it, {{ customer.first_name }}?</h1>
<p>Your order <strong>{{ order.number }}</strong> arrived a little while ago. A few words
about what you bought help other customers choose, and help us do better.</p>
<table class="items">
  <tr><th>Product</th><th></th></tr>
  {% for item in items %}<tr>
    <td>{{ item.product }}</td><td><a href="{{ item.review_url }}">Write a review</a></td>
  </tr>
  {% endfor %}</table>
<p>Something wrong with the order? Just reply: {{ shop.support_email }} reads every email.</p>""",
        "text": "",
        "sample_context": REVIEW_SAMPLE,
    },
    {
        "key": "order_refunded",
        "language": "",
        "category": "orders",
        "subject": "Your order {{ order.number }} has been refunded",
        "html": """<h1>Refund on its way</h1>
<p>Hello {{ customer.first_name }}, we have refunded your order
<strong>{{ order.number }}</strong>: {{ order.total }} goes back to your card within a few
days.</p>
"""
        + ITEMS_TABLE
        + """
<p>Questions about the refund? Reply to this email.</p>""",
        "text": "",
        "sample_context": REFUND_SAMPLE,
    },
    {
        "key": "login_alert",
        "language": "",
        "category": "security",
        "subject": "New login to your {{ shop.name }} account",
        "html": """<h1>New login from {{ device.summary }}</h1>
<p>Hello {{ user.first_name|default:user.name }}, your {{ shop.name }} account
({{ user.email }}) was just used to log in from a device we had not seen before:</p>
<table class="items">
  <tr><td>Device</td><td>{{ device.summary }}<br>
    <small>{{ device.user_agent|default:"(no user agent)" }}</small></td></tr>
  <tr><td>IP address</td><td>{{ device.ip_address|default:"unknown" }}</td></tr>
  <tr><td>Time</td><td>{{ login_time|as_datetime|date:"j F Y, H:i" }} UTC</td></tr>
</table>
<p>If this was you, there is nothing to do. If it was not, reset your password now:</p>
<p><a class="button" href="{{ reset_url }}">Reset my password</a></p>""",
        "text": "",
        "sample_context": LOGIN_SAMPLE,
    },
]

CUSTOMERS = [
    {"name": "Ada Lovelace", "email": "ada@example.com", "language": ""},
    {"name": "Camille Dubois", "email": "camille@example.com", "language": "fr-ca"},
]


#: The demo's templates that stand in for the app's starter templates until those are
#: installed: seeded only while no template has their key.
STARTER_KEYS = {"password_reset"}


@transaction.atomic
def seed() -> list[str]:
    """Create the demo rows that are missing; return a description of what was created."""
    created = []
    layout, layout_created = Layout.objects.get_or_create(
        name="Demo Shop",
        defaults={
            "html": LAYOUT_HTML,
            "css": LAYOUT_CSS,
            "logo_url": f"{settings.SHOP_BASE_URL}/static/shop/logo.png",
            "primary_color": "#1a73e8",
            "background_color": "#f4f4f5",
            "text_color": "#1f2937",
            "footer_html": LAYOUT_FOOTER,
        },
    )
    if layout_created:
        layout.publish()  # demo data is ready to send: nothing to review first
        created.append(f"layout {layout.name!r}")
    for template in TEMPLATES:
        if template["key"] in STARTER_KEYS and EmailTemplate.objects.filter(
                key=template["key"]).exists():
            continue  # installed starter templates (any language) take its place
        row, template_created = EmailTemplate.objects.get_or_create(
            key=template["key"],
            language=template["language"],
            defaults={**template, "layout": layout},
        )
        if template_created:
            row.publish()
            language = f" [{template['language']}]" if template["language"] else ""
            created.append(f"template {template['key']}{language}")
    # bulk_create sends no post_save signal, so the "welcome" trigger does not fire:
    # seeding is not a sign-up.
    existing = set(Customer.objects.values_list("email", flat=True))
    missing = [Customer(**customer) for customer in CUSTOMERS if customer["email"] not in existing]
    Customer.objects.bulk_create(missing)
    created += [f"customer {customer.email}" for customer in missing]
    created += seed_history()
    return created


#: The idempotency keys of the demo's logged emails: seeded once, never again.
RETRIED_KEY = "demo:retried-then-sent"
TEST_KEY = "demo:test-email"
DRAFT_SUBJECT = "Order {{ order.number }} is on its way to you"
SUPPRESSED = "old-address@example.com"


def _logged_email(template: EmailTemplate, key: str, to: str, **fields) -> Email:
    """A sent email of ``template``'s published revision, rendered as the worker would."""
    revision = template.published_revision
    layout = template.layout.published_revision if template.layout else None
    rendered = render_email(revision, layout, template.sample_context,
                            language=template.language or None)
    email = Email(template_key=template.key, template_revision=revision,
                  layout_revision=layout, category=template.category,
                  from_email=settings.DEFAULT_FROM_EMAIL, to=[to], idempotency_key=key,
                  context=template.sample_context, subject=rendered.subject,
                  status=EmailStatus.SENT, esp_name="postmark",
                  next_attempt_at=fields.get("sent_at"), **fields)
    email.html_body = rendered.html
    email.text_body = rendered.text
    email.save()
    return email


def seed_history() -> list[str]:
    """What the admin's send log, history and suppressions show on a fresh demo."""
    created = []
    admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    now = timezone.now()
    shipping = EmailTemplate.objects.filter(key="shipping_update", language="").first()
    if shipping is not None and not shipping.has_unpublished_changes \
            and shipping.current_revision.number == 1:
        shipping.subject = DRAFT_SUBJECT
        shipping.revision_author = admin
        shipping.revision_note = "Warmer subject; waiting for review before publishing."
        shipping.save()
        created.append("an unpublished draft of shipping_update")
    confirmation = EmailTemplate.objects.filter(key="order_confirmation", language="").first()
    if confirmation is not None and not Email.objects.filter(idempotency_key=RETRIED_KEY).exists():
        first, second = now - timedelta(hours=2, minutes=1), now - timedelta(hours=2)
        email = _logged_email(
            confirmation, RETRIED_KEY, "ada@example.com", attempts=2, sent_at=second,
            esp_message_id="demo-0001", trigger_key="order_confirmation",
            last_error="HTTP 500 from Postmark: Internal server error (retried)")
        EmailAttempt.objects.create(
            email=email, number=1, started_at=first, finished_at=first,
            outcome=AttemptOutcome.TRANSIENT, esp_status_code=500,
            error="HTTP 500 from Postmark: Internal server error")
        EmailAttempt.objects.create(
            email=email, number=2, started_at=second, finished_at=second,
            outcome=AttemptOutcome.SENT, esp_status_code=200, esp_message_id="demo-0001")
        created.append(f"email {email.pk}: a transient failure, then sent")
    if confirmation is not None and admin is not None \
            and not Email.objects.filter(idempotency_key=TEST_KEY).exists():
        email = _logged_email(
            confirmation, TEST_KEY, admin.email or "admin@example.com", attempts=1,
            sent_at=now - timedelta(hours=1), is_test=True, tags=["test"],
            esp_message_id="demo-0002",
            metadata={"test": "1", "template_id": str(confirmation.pk),
                      "revision_id": str(confirmation.published_revision_id),
                      "sent_by": str(admin.pk)})
        EmailAttempt.objects.create(
            email=email, number=1, started_at=email.sent_at, finished_at=email.sent_at,
            outcome=AttemptOutcome.SENT, esp_status_code=200, esp_message_id="demo-0002")
        created.append(f"test email {email.pk}")
    if not SuppressionHistory.objects.filter(address=SUPPRESSED).exists():
        Suppression.objects.create(address=SUPPRESSED, reason=SuppressionReason.MANUAL,
                                   source="demo: asked by phone")
        SuppressionHistory.objects.create(
            address=SUPPRESSED, change=SuppressionChange.ADDED,
            suppression_reason=SuppressionReason.MANUAL, user=admin,
            note="The customer asked by phone to receive no more email at this address.")
        created.append(f"suppression of {SUPPRESSED}, with its history")
    return created
