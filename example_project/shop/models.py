"""A tiny shop: customers place orders made of lines, comment on products; account
holders log in."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .catalog import PRODUCTS


class Customer(models.Model):
    name = models.CharField(_("name"), max_length=100)
    email = models.EmailField(_("email"), unique=True)
    language = models.CharField(
        _("language"),
        max_length=15,
        blank=True,
        help_text=_("Language of the emails this customer gets, e.g. fr-ca. Blank: default."),
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customer",
        verbose_name=_("user"),
        help_text=_("The account of a customer who signed up; blank for a guest checkout."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    @property
    def mailbox(self) -> str:
        """The address with the display name, as emails are addressed: ``"Zoé" <z@…>``.

        Not ``email.utils.formataddr``, which encodes a non-ASCII name (``=?utf-8?q?Zo=C3=A9?=``)
        and would store it so in the send log; the email backend encodes it when sending.
        """
        if not self.name:
            return self.email
        name = self.name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{name}" <{self.email}>'


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("awaiting payment")
        PAID = "paid", _("paid")
        SHIPPED = "shipped", _("shipped")
        DELIVERED = "delivered", _("delivered")
        REFUNDED = "refunded", _("refunded")
        CANCELLED = "cancelled", _("cancelled")

    #: The status changes the shop's buttons offer: new status -> statuses it may follow.
    TRANSITIONS = {
        Status.SHIPPED: {Status.PAID},
        Status.DELIVERED: {Status.SHIPPED},
        Status.REFUNDED: {Status.PAID, Status.SHIPPED, Status.DELIVERED},
    }

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="orders", verbose_name=_("customer")
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING
    )
    tracking_number = models.CharField(_("tracking number"), max_length=50, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.number

    @property
    def number(self) -> str:
        return f"A{self.pk:05d}" if self.pk else "(new)"

    @property
    def total(self) -> Decimal:
        return sum((line.subtotal for line in self.lines.all()), Decimal("0.00"))


class OrderLine(models.Model):
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order")
    )
    product = models.CharField(_("product"), max_length=100)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=10, decimal_places=2)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product}"

    @property
    def subtotal(self) -> Decimal:
        return self.unit_price * self.quantity


class KnownDevice(models.Model):
    """A browser (user agent and IP address) a user has logged in from.

    The login alert trigger (``shop.devices.is_new_device``) compares each login with
    these rows; ``shop.devices.remember_device`` adds or refreshes one at every login.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="known_devices",
        verbose_name=_("user"),
    )
    user_agent = models.CharField(_("user agent"), max_length=255, blank=True)
    ip_address = models.CharField(_("IP address"), max_length=45, blank=True)
    first_seen = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_seen = models.DateTimeField(_("last seen"), auto_now=True)

    class Meta:
        verbose_name = _("known device")
        verbose_name_plural = _("known devices")
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "user_agent", "ip_address"], name="shop_knowndevice_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_agent or '?'} from {self.ip_address or '?'}"


class Comment(models.Model):
    """A customer's comment on a product of the catalogue (``shop.catalog.PRODUCTS``).

    The ``comment_digest`` trigger tells the other customers who commented on the same
    product, in one digest per recipient and window rather than one email per comment.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="comments", verbose_name=_("customer")
    )
    product = models.CharField(
        _("product"), max_length=20,
        choices=[(key, name) for key, (name, _price) in PRODUCTS.items()],
    )
    text = models.TextField(_("text"), max_length=1000)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("comment")
        verbose_name_plural = _("comments")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.customer.name} on {self.product_name}"

    @property
    def product_name(self) -> str:
        return self.get_product_display()
