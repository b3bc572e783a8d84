"""The demo's seed data: the app's starter templates in the shop's brand, two customers,
and a little history for the admin to show (``seed_history()``): a template with an
unpublished draft, an email whose first attempt failed (HTTP 500) and whose retry was sent,
a test email, and a suppression with its history; two customers' comments on the mug
(``seed_comments()``), so that a visitor's comment has someone to notify; and two weeks of
past orders (``seed_orders()``), so that the weekly order report has numbers to show.
The shop's own ``comment_digest`` template is created too (``shop.digest_template``).

The templates are the app's starters, installed in every language they are written in
(``install_starter_templates``: created when missing, upgraded while nobody edited them)
into the layout named *Default*, which the seed brands as Demo Shop while it is still the
unbranded shipped layout. ``seed()`` never overwrites what staff changed, so edits made in
the admin survive a restart of the demo.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from transactional_mail.default_layout import (
    FINGERPRINTED_FIELDS,
    FOOTER,
    NAME,
    default_layout_values,
    layout_fingerprint,
    shipped_versions,
)
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
from transactional_mail.periodic.definitions import get_schedule
from transactional_mail.periodic.periods import due_time
from transactional_mail.rendering import render_email
from transactional_mail.starters import LANGUAGES, load_starters
from transactional_mail.starters.installer import CREATED, UPDATED, install_starters

from .catalog import PRODUCTS
from .digest_template import install_comment_digest
from .mail import SITE_NAME, shop_url, site_context
from .models import Comment, Customer, Order, OrderLine

LEGAL_TEXT = "You get this email because of an order or an account at Demo Shop."
FOOTER_ADDRESS = "Demo Shop\n1 Example Street\nSpringfield"


def brand() -> dict:
    """The shop's brand values for the default layout (URLs from the settings)."""
    return {
        "logo_url": f"{settings.SHOP_BASE_URL}/static/shop/logo.png",
        "primary_color": "#1a73e8",
        "background_color": "#f4f4f5",
        "text_color": "#1f2937",
        # {{ brand.name }} is the layout's name, which must stay "Default": the installer
        # and migrate find the layout by it (renamed, the installer would create another,
        # unbranded "Default" for new starters). So the shipped HTML (the <title>, the
        # logo's alt text) and footer name the shop themselves; the rest of the footer
        # stays: the unsubscribe and preferences links of non-essential mail.
        "html": default_layout_values()["html"].replace("{{ brand.name }}", SITE_NAME),
        "footer_html": FOOTER.replace("{{ brand.name }}", SITE_NAME),
        "footer_address": FOOTER_ADDRESS,
        "legal_text": LEGAL_TEXT,
        "help_url": shop_url("#help"),
        "translations": {
            # The address, name and help link read the same in every language.
            "fr": {"legal_text": "Vous recevez cet e-mail à la suite d'une commande ou de "
                                 "l'ouverture d'un compte chez Demo Shop."},
            "de": {"legal_text": "Sie erhalten diese E-Mail wegen einer Bestellung oder "
                                 "eines Kontos bei Demo Shop."},
        },
    }


CUSTOMERS = [
    {"name": "Ada Lovelace", "email": "ada@example.com", "language": ""},
    {"name": "Camille Dubois", "email": "camille@example.com", "language": "fr-ca"},
]


@transaction.atomic
def seed() -> list[str]:
    """Create the demo rows that are missing; return a description of what was created."""
    created = install_templates()
    created += install_comment_digest()
    layout = Layout.objects.filter(name=NAME).first()
    if layout is not None and is_unbranded(layout):
        for field, value in brand().items():
            setattr(layout, field, value)
        layout.revision_note = "The Demo Shop brand (seeded by the demo)."
        layout.save()
        layout.publish()  # demo data is ready to send: nothing to review first
        created.append(f"the Demo Shop brand in layout {NAME!r}")
    # bulk_create sends no post_save signal, so the "welcome" trigger does not fire:
    # seeding is not a sign-up.
    existing = set(Customer.objects.values_list("email", flat=True))
    missing = [Customer(**customer) for customer in CUSTOMERS if customer["email"] not in existing]
    Customer.objects.bulk_create(missing)
    created += [f"customer {customer.email}" for customer in missing]
    created += seed_history()
    created += seed_comments()
    created += seed_orders()
    return created


def install_templates() -> list[str]:
    """Install (or upgrade) every starter in every language, and put the shop's name and
    URL in the sample contexts that still hold the starter's; describe what changed."""
    starters = load_starters()
    outcomes = install_starters(starters.values(), LANGUAGES)
    for starter in starters.values():
        # Still the starter's own sample site (not staff's): the shop's name instead.
        # update(): the sample context is not part of a revision, so none is added.
        stock = starter.sample_context.get("site_name")
        for template in EmailTemplate.objects.filter(key=starter.key):
            if (template.sample_context or {}).get("site_name") == stock:
                EmailTemplate.objects.filter(pk=template.pk).update(
                    sample_context={**template.sample_context, **site_context()})
    counts = Counter(outcome.action for outcome in outcomes[1:])  # [0] is the layout
    if not counts[CREATED] and not counts[UPDATED]:
        return []
    return [f"starter templates ({len(starters)} kinds in {', '.join(LANGUAGES)}): "
            f"{counts[CREATED]} created, {counts[UPDATED]} updated"]


def is_unbranded(layout: Layout) -> bool:
    """Whether ``layout`` is still the shipped default layout as ``migrate`` or the
    installer left it: its HTML, CSS and footer a shipped version, its brand values the
    model's defaults, no draft. Anything else is staff's, and the seed leaves it alone."""
    published = layout.published_revision
    if published is None or layout.has_unpublished_changes:
        return False
    if layout_fingerprint(published) not in shipped_versions().values():
        return False
    # The HTML and footer are in the fingerprint; the brand values must be the defaults.
    return all(getattr(published, field) == Layout._meta.get_field(field).get_default()
               for field in brand() if field not in FINGERPRINTED_FIELDS)


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


#: The seeded comments: (customer's email, product, text).
COMMENTS = [
    ("ada@example.com", "mug", "Holds a generous coffee, and the logo survived the dishwasher."),
    ("camille@example.com", "mug", "Parfait pour le thé du matin. The handle is comfortable."),
]


def seed_comments() -> list[str]:
    """The comments a visitor's comment on the mug notifies, when there are none yet.

    bulk_create sends no signal: seeding them notifies nobody."""
    if Comment.objects.exists():
        return []
    customers = {customer.email: customer for customer in Customer.objects.all()}
    Comment.objects.bulk_create(
        Comment(customer=customers[email], product=product, text=text)
        for email, product, text in COMMENTS if email in customers)
    return [f"{len(COMMENTS)} comments on the mug"]


#: Past orders for the weekly report: (days before the reported week's end, customer's
#: email, product key, quantity, status). The report covers days 1 to 7; 8 to 14 are
#: the week it is compared with.
PAST_ORDERS = [
    (1, "ada@example.com", "mug", 2, Order.Status.DELIVERED),
    (2, "camille@example.com", "tshirt", 1, Order.Status.SHIPPED),
    (3, "ada@example.com", "stickers", 4, Order.Status.DELIVERED),
    (4, "camille@example.com", "mug", 1, Order.Status.REFUNDED),
    (6, "ada@example.com", "tshirt", 2, Order.Status.DELIVERED),
    (9, "camille@example.com", "mug", 1, Order.Status.DELIVERED),
    (11, "ada@example.com", "stickers", 2, Order.Status.DELIVERED),
    (12, "camille@example.com", "tshirt", 1, Order.Status.DELIVERED),
]


def seed_orders() -> list[str]:
    """Two weeks of delivered orders before the weekly report's latest period, when the
    shop has no orders yet, so that ``run_schedule weekly_order_report`` reports some.

    bulk_create sends no signal (no confirmation, no review request), and the times are
    set afterwards because ``auto_now_add`` overrides them on insert."""
    if Order.objects.exists():
        return []
    week_end = due_time(get_schedule("weekly_order_report"))
    week_end = week_end.replace(hour=0, minute=0)  # the report counts whole days
    customers = {customer.email: customer for customer in Customer.objects.all()}
    rows = [row for row in PAST_ORDERS if row[1] in customers]
    orders = Order.objects.bulk_create(
        Order(customer=customers[email], status=status) for _days, email, *_rest, status in rows)
    lines = []
    for order, (days, _email, product, quantity, _status) in zip(orders, rows, strict=True):
        placed = week_end - timedelta(days=days, hours=-10)  # 10:00 on that day
        Order.objects.filter(pk=order.pk).update(created_at=placed, updated_at=placed)
        name, price = PRODUCTS[product]
        lines.append(OrderLine(order=order, product=name, quantity=quantity, unit_price=price))
    OrderLine.objects.bulk_create(lines)
    return [f"{len(orders)} past orders for the weekly report"]
