"""Real models for triggers to fire on: a customer and their orders."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=100)
    email = models.EmailField()
    language = models.CharField(max_length=15, blank=True, default="")

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    class Status(models.TextChoices):
        CREATED = "created", "created"
        PAID = "paid", "paid"
        SHIPPED = "shipped", "shipped"
        DELIVERED = "delivered", "delivered"
        REFUNDED = "refunded", "refunded"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    number = models.CharField(max_length=20, unique=True)
    total = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.CREATED)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Order {self.number}"


class Voucher(models.Model):
    """A model keyed by a long text: a scheduled run's cursor and an email's source id
    hold its primary key."""

    code = models.CharField(max_length=300, primary_key=True)
    email = models.EmailField()

    def __str__(self) -> str:
        return self.code[:20]
