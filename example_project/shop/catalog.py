"""The shop's products: a fixed list is enough for the demo."""

from decimal import Decimal

PRODUCTS = {
    "mug": ("Logo mug", Decimal("12.00")),
    "tshirt": ("T-shirt", Decimal("20.00")),
    "stickers": ("Sticker pack", Decimal("4.50")),
}


def money(amount: Decimal) -> str:
    return f"${amount:,.2f}"
