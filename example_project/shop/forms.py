from django import forms

from .catalog import PRODUCTS, money

LANGUAGES = [("", "English (default)"), ("fr", "French"), ("fr-ca", "French (Canada)")]


class OrderForm(forms.Form):
    name = forms.CharField(max_length=100, initial="Ada Lovelace")
    email = forms.EmailField(initial="ada@example.com")
    language = forms.ChoiceField(choices=LANGUAGES, required=False)
    product = forms.ChoiceField(
        choices=[(key, f"{name} ({money(price)})") for key, (name, price) in PRODUCTS.items()]
    )
    quantity = forms.IntegerField(min_value=1, max_value=10, initial=1)


class PasswordResetForm(forms.Form):
    email = forms.EmailField()
