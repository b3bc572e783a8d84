"""The shop's pages.

The views change the shop's data and nothing else: the emails come from the triggers in
``TRANSACTIONAL_MAIL["TRIGGERS"]`` (``shop_site/settings.py``), which queue them in the
same transaction as the save that fires them. If the transaction rolls back, no email is
sent. The password reset, which is not a change of the shop's data, goes through the
app's drop-in form (``transactional_mail.auth.PasswordResetForm``).
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model, login, logout
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from transactional_mail import auth
from transactional_mail.models import DigestItem, Email, Trigger
from transactional_mail.models.log import EmailStatus

from .catalog import PRODUCTS
from .forms import CommentForm, LoginForm, OrderForm, SignUpForm
from .models import Comment, Customer, KnownDevice, Order, OrderLine

logger = logging.getLogger(__name__)

#: The order buttons: action in the URL -> the status it sets.
ACTIONS = {
    "ship": Order.Status.SHIPPED,
    "deliver": Order.Status.DELIVERED,
    "refund": Order.Status.REFUNDED,
}


def emails_about(obj):
    """The emails whose source is ``obj`` (a queryset), oldest first."""
    return Email.objects.filter(
        source_content_type=ContentType.objects.get_for_model(obj),
        source_object_id=str(obj.pk),
    ).order_by("created_at", "pk")


def emails_for(obj) -> list[Email]:
    """The emails whose source is ``obj``, oldest first."""
    return list(emails_about(obj))


def email_note(obj, trigger_key: str, since, what: str) -> str:
    """What became of trigger ``trigger_key``'s email about ``obj`` in this request, for
    a flash message: ``what`` ("its shipping update") "is queued".

    Read from the Email rows the request wrote (created since ``since``), not assumed: a
    trigger staff switched off, a ``once`` email already sent, or a condition that did not
    match writes none, and the message must not claim one. "" when there is nothing to
    say.
    """
    email = (emails_about(obj).filter(trigger_key=trigger_key, created_at__gte=since)
             .order_by("-created_at", "-pk").first())
    if email is None:
        if trigger_key in Trigger.objects.disabled_keys():
            return f"{what} is not sent (its trigger is switched off)"
        return ""
    if email.status == EmailStatus.QUEUED:
        return f"{what} is queued"
    if email.status == EmailStatus.SCHEDULED:
        return f"{what} is scheduled for {email.next_attempt_at:%H:%M:%S} UTC"
    reason = f" ({email.last_error})" if email.last_error else ""
    return f"{what} is {email.get_status_display()}{reason}"


def with_notes(message: str, *notes: str) -> str:
    """``message`` and its non-empty ``notes`` as one sentence: "Order A00001 placed: <note>,
    and <note>.", or "Order A00001 placed." without any."""
    said = ", and ".join(note for note in notes if note)
    return f"{message}: {said}." if said else f"{message}."


#: The email each status change sends: new status -> (trigger key, what it is called).
STATUS_EMAILS = {
    Order.Status.SHIPPED: ("shipping_update", "its shipping update"),
    Order.Status.DELIVERED: ("review_request", "its review request"),
    Order.Status.REFUNDED: ("order_refunded", "its refund email"),
}


def buttons(order: Order) -> list[tuple[str, str]]:
    """The (action, label) buttons an order's status allows."""
    labels = {"ship": "Ship", "deliver": "Mark delivered", "refund": "Refund"}
    return [(action, labels[action]) for action, status in ACTIONS.items()
            if order.status in Order.TRANSITIONS[status]]


def current_customer(request) -> Customer | None:
    if not request.user.is_authenticated:
        return None
    return Customer.objects.filter(user=request.user).first()


def index(request, forms=None, status=200):
    forms = forms or {}
    customer = current_customer(request)
    initial = {"name": customer.name, "email": customer.email,
               "language": customer.language} if customer else None
    orders = Order.objects.select_related("customer").prefetch_related("lines")[:10]
    return render(
        request,
        "shop/index.html",
        {
            "order_form": forms.get("order") or OrderForm(initial=initial),
            "comment_form": forms.get("comment") or CommentForm(
                prefix="comment",
                initial={"product": request.GET.get("product") or "mug",
                         **({"email": customer.email} if customer else {})}),
            "comments": Comment.objects.select_related("customer").order_by("-created_at",
                                                                             "-pk")[:10],
            "digest_window": settings.SHOP_DIGEST_WINDOW,
            "signup_form": forms.get("signup") or SignUpForm(prefix="signup"),
            "login_form": forms.get("login") or LoginForm(prefix="login"),
            "reset_form": forms.get("reset") or auth.PasswordResetForm(prefix="reset"),
            "customer": customer,
            "devices": (KnownDevice.objects.filter(user=request.user)
                        if request.user.is_authenticated else []),
            "orders": [(order, emails_for(order), buttons(order)) for order in orders],
            "recent_emails": Email.objects.select_related("template_revision")[:12],
            "review_delay": settings.SHOP_REVIEW_DELAY,
            "review": request.GET.get("review", ""),
            "fake_esp_url": (
                f"http://127.0.0.1:{settings.FAKE_ESP_PORT}/" if settings.FAKE_ESP else ""
            ),
        },
        status=status,
    )


# --- Account -------------------------------------------------------------------------------


@require_POST
def sign_up(request):
    """Create the account and its customer (trigger ``welcome``), then log in.

    The login is the user's first, so the ``login_alert`` trigger does not fire: it only
    alerts for a device that is new to a user who has logged in before.
    """
    form = SignUpForm(request.POST, prefix="signup")
    if not form.is_valid():
        return index(request, forms={"signup": form}, status=400)
    data = form.cleaned_data
    started = timezone.now()
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=data["email"], email=data["email"], password=data["password"]
        )
        customer, created = Customer.objects.get_or_create(
            email=data["email"],
            defaults={"name": data["name"], "language": data["language"], "user": user},
        )
        if not created:
            # A guest who ordered before: the account joins their customer record. The
            # customer is not new, so no second welcome.
            customer.user = user
            customer.save(update_fields=["user"])
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    if created:
        message = with_notes(f"Welcome, {customer.name}",
                             email_note(customer, "welcome", started, "your welcome email"))
    else:
        message = f"Welcome, {customer.name}! Your account is linked to your earlier orders."
    messages.success(request, message)
    return redirect("shop:index")


@require_POST
def log_in(request):
    """Log in (trigger ``login_alert`` when the device is new for this user)."""
    form = LoginForm(request.POST, prefix="login")
    if not form.is_valid():
        return index(request, forms={"login": form}, status=400)
    user = authenticate(
        request,
        username=form.cleaned_data["email"].lower(),
        password=form.cleaned_data["password"],
    )
    if user is None:
        form.add_error(None, "Wrong email address or password.")
        return index(request, forms={"login": form}, status=400)
    login(request, user)
    messages.success(request, f"Logged in as {user.email}.")
    return redirect("shop:index")


@require_POST
def log_out(request):
    logout(request)
    messages.success(request, "Logged out.")
    return redirect("shop:index")


# --- Orders --------------------------------------------------------------------------------


@require_POST
def place_order(request):
    """Create the order and its lines, then take the payment (trigger ``order_confirmation``).

    A guest's first order creates their customer (trigger ``welcome``).
    """
    form = OrderForm(request.POST)
    if not form.is_valid():
        return index(request, forms={"order": form}, status=400)
    data = form.cleaned_data
    product, unit_price = PRODUCTS[data["product"]]
    started = timezone.now()
    with transaction.atomic():
        customer = current_customer(request)
        new_customer = False
        if customer is None:
            customer, new_customer = Customer.objects.get_or_create(
                email=data["email"].lower(),
                defaults={"name": data["name"], "language": data["language"]},
            )
        if customer.language != data["language"]:
            customer.language = data["language"]
            customer.save(update_fields=["language"])
        order = Order.objects.create(customer=customer)  # status "pending"
        OrderLine.objects.create(
            order=order, product=product, quantity=data["quantity"], unit_price=unit_price
        )
        # The demo's payment always succeeds. The confirmation is bound to this change,
        # not to the order's creation: by now the order has its lines and its total.
        order.status = Order.Status.PAID
        order.save(update_fields=["status", "updated_at"])
    logger.info("Order %s placed and paid", order.number)
    notes = [email_note(order, "order_confirmation", started, "its confirmation email")]
    if new_customer:  # a guest's first order: the new customer's welcome
        notes.append(email_note(customer, "welcome", started, "your welcome email"))
    messages.success(request, with_notes(f"Order {order.number} placed", *notes))
    return redirect(reverse("shop:index") + f"#order-{order.pk}")


@require_POST
def change_order(request, pk, action):
    """Ship, deliver or refund an order; the status change fires its trigger."""
    new_status = ACTIONS[action]
    started = timezone.now()
    with transaction.atomic():
        order = get_object_or_404(Order.objects.select_for_update(), pk=pk)
        if order.status not in Order.TRANSITIONS[new_status]:
            messages.error(request, f"Order {order.number} is {order.get_status_display()}: "
                           f"it cannot become {new_status.label}.")
            return redirect(reverse("shop:index") + f"#order-{order.pk}")
        order.status = new_status
        if new_status == Order.Status.SHIPPED:
            order.tracking_number = uuid.uuid4().hex[:12].upper()
        order.save()
    trigger_key, what = STATUS_EMAILS[new_status]
    notes = [email_note(order, trigger_key, started, what)]
    if new_status == Order.Status.REFUNDED and emails_about(order).filter(
            trigger_key="review_request", status=EmailStatus.SCHEDULED).exists():
        notes.append("its scheduled review request will be cancelled when it is due")
    messages.success(request, with_notes(f"Order {order.number} {new_status.label}", *notes))
    return redirect(reverse("shop:index") + f"#order-{order.pk}")


def order_emails(request, pk):
    """The order's emails as JSON, for scripts: ``curl .../orders/1/emails.json``."""
    order = get_object_or_404(Order, pk=pk)
    return JsonResponse(
        {
            "order": order.number,
            "status": order.status,
            "emails": [email_json(email) for email in emails_for(order)],
        }
    )


def recent_emails(request):
    """The latest emails as JSON, for scripts: ``curl .../emails.json``."""
    return JsonResponse(
        {"emails": [email_json(email) for email in Email.objects.all()[:50]]}
    )


def email_json(email: Email) -> dict:
    return {
        "id": email.pk,
        "template_key": email.template_key,
        "trigger_key": email.trigger_key,
        "to": email.to,
        "status": email.status,
        "attempts": email.attempts,
        "esp_name": email.esp_name,
        "esp_message_id": email.esp_message_id,
        "last_error": email.last_error,
        "created_at": email.created_at,
        "next_attempt_at": email.next_attempt_at,
        "sent_at": email.sent_at,
    }


# --- Comments ------------------------------------------------------------------------------


@require_POST
def post_comment(request):
    """Save a customer's comment on a product (trigger ``comment_digest``): the other
    customers who commented on it hear of it, the first comment of their window at once,
    the rest in one digest when the window closes."""
    form = CommentForm(request.POST, prefix="comment")
    if not form.is_valid():
        return index(request, forms={"comment": form}, status=400)
    started = timezone.now()
    with transaction.atomic():
        comment = Comment.objects.create(customer=form.customer,
                                         product=form.cleaned_data["product"],
                                         text=form.cleaned_data["text"])
    messages.success(request, comment_note(comment, started))
    return redirect(reverse("shop:index") + f"?product={comment.product}#comments")


def comment_note(comment: Comment, since) -> str:
    """What the comment set off, for the flash message: emails sent at once (a window's
    first comment) and comments waiting in open digest windows."""
    sent = Email.objects.filter(trigger_key="comment_digest", created_at__gte=since).count()
    waiting = DigestItem.objects.filter(
        window__trigger_key="comment_digest", window__closed_at__isnull=True,
        email__isnull=True, created_at__gte=since).count()
    said = [f"Comment on {comment.product_name} posted"]
    if sent:
        said.append(f"{sent} email{'s' if sent != 1 else ''} queued at once")
    if waiting:
        said.append(f"{waiting} recipient{'s' if waiting != 1 else ''} will get it in "
                    f"their digest ({settings.SHOP_DIGEST_WINDOW} window)")
    if not sent and not waiting:
        said.append("nobody else commented on it yet, so nobody is notified")
    return said[0] + (": " + ", and ".join(said[1:]) if len(said) > 1 else "") + "."


# --- Password reset: the app's drop-in form -------------------------------------------------


@require_POST
def password_reset(request):
    """The shop's reset box, with ``transactional_mail.auth.PasswordResetForm``: one task
    queued whatever the address; the worker sends the email with a link to Django's
    reset page (/accounts/reset/...)."""
    form = auth.PasswordResetForm(request.POST, prefix="reset")
    if not form.is_valid():
        return index(request, forms={"reset": form}, status=400)
    form.save(request=request, use_https=request.is_secure())
    # The same answer either way: the page must not tell who has an account.
    messages.success(request, "If that address has an account, a reset link is on its way.")
    return redirect("shop:index")
