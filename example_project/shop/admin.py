"""Admin of the shop. The emails themselves are in the Transactional mail section.

Changing an order's status here (in its form, or with the actions below) fires the same
triggers as the shop's buttons: the triggers listen to the model, not to the views. The
actions save each order; a ``queryset.update()`` would send no signal, so no email.
"""

import uuid

from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from . import mail
from .models import Comment, Customer, KnownDevice, Order, OrderLine


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "language", "user", "created_at"]
    search_fields = ["name", "email"]
    raw_id_fields = ["user"]
    actions = ["send_password_reset"]

    @admin.action(description=_("Send a password reset email"))
    def send_password_reset(self, request, queryset):
        with transaction.atomic():
            for customer in queryset:
                mail.send_password_reset(customer.email, request)
        # The worker sends one to each customer with an account (signed up, not a guest).
        self.message_user(request, f"{queryset.count()} password reset(s) queued.")


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "status", "tracking_number", "created_at"]
    # created_at: the weekly order report links to the week's orders with its filter.
    list_filter = ["status", "created_at"]
    search_fields = ["customer__email", "customer__name", "tracking_number"]
    inlines = [OrderLineInline]
    actions = ["ship", "deliver", "refund", "email_invoice"]

    def _change_status(self, request, queryset, status):
        changed = 0
        with transaction.atomic():
            for order in queryset.select_for_update():
                if order.status not in Order.TRANSITIONS[status]:
                    continue
                order.status = status
                if status == Order.Status.SHIPPED:
                    order.tracking_number = uuid.uuid4().hex[:12].upper()
                order.save()  # fires the trigger bound to this status change
                changed += 1
        self.message_user(request, f"{changed} order(s) {status.label}; their emails are queued.")

    @admin.action(description=_("Mark shipped (trigger: shipping update)"))
    def ship(self, request, queryset):
        self._change_status(request, queryset, Order.Status.SHIPPED)

    @admin.action(description=_("Mark delivered (trigger: review request, delayed)"))
    def deliver(self, request, queryset):
        self._change_status(request, queryset, Order.Status.DELIVERED)

    @admin.action(description=_("Refund (trigger: refund email; cancels the review request)"))
    def refund(self, request, queryset):
        self._change_status(request, queryset, Order.Status.REFUNDED)

    @admin.action(description=_("Email the invoice again (a direct send())"))
    def email_invoice(self, request, queryset):
        with transaction.atomic():
            emails = [mail.send_invoice(order) for order in queryset.select_related("customer")]
        self.message_user(
            request,
            "Invoices queued: " + ", ".join(f"#{e.pk}" for e in emails),
            messages.INFO,
        )


@admin.register(KnownDevice)
class KnownDeviceAdmin(admin.ModelAdmin):
    list_display = ["user", "user_agent", "ip_address", "first_seen", "last_seen"]
    search_fields = ["user__username", "user__email", "user_agent", "ip_address"]
    list_select_related = ["user"]


@admin.register(Comment)
class CommentAdmin(admin.ModelAdmin):
    """Comments; one added here notifies like one posted in the shop (the trigger
    listens to the model)."""

    list_display = ["customer", "product", "created_at"]
    list_filter = ["product"]
    search_fields = ["customer__email", "customer__name", "text"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
