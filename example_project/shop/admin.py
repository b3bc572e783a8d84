"""Admin of the shop. The emails themselves are in the Transactional mail section."""

from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from . import mail
from .models import Customer, Order, OrderLine


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "language", "created_at"]
    search_fields = ["name", "email"]
    actions = ["send_password_reset"]

    @admin.action(description=_("Send a password reset email"))
    def send_password_reset(self, request, queryset):
        with transaction.atomic():
            for customer in queryset:
                mail.send_password_reset(customer)
        self.message_user(request, f"{queryset.count()} password reset email(s) queued.")


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "status", "tracking_number", "created_at"]
    list_filter = ["status"]
    search_fields = ["customer__email", "customer__name", "tracking_number"]
    inlines = [OrderLineInline]
    actions = ["ship", "resend_confirmation"]

    @admin.action(description=_("Mark shipped and send the shipping update"))
    def ship(self, request, queryset):
        import uuid

        shipped = 0
        with transaction.atomic():
            for order in queryset.select_for_update().filter(status=Order.Status.PAID):
                order.status = Order.Status.SHIPPED
                order.tracking_number = uuid.uuid4().hex[:12].upper()
                order.save()
                mail.send_shipping_update(order, delay=settings.SHOP_SHIPPING_EMAIL_DELAY)
                shipped += 1
        self.message_user(request, f"{shipped} order(s) shipped; shipping updates scheduled.")

    @admin.action(description=_("Queue the order confirmation (once per order)"))
    def resend_confirmation(self, request, queryset):
        # The idempotency key makes this a no-op for orders already confirmed.
        with transaction.atomic():
            emails = [mail.send_order_confirmation(order) for order in queryset]
        self.message_user(
            request,
            "Order confirmations: " + ", ".join(f"#{e.pk} {e.status}" for e in emails),
            messages.INFO,
        )
