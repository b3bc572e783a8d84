from django import forms
from django.contrib.auth import get_user_model

from .catalog import PRODUCTS, money
from .models import Customer

#: The languages the starter templates are written in, and a variant that falls back to fr.
LANGUAGES = [("", "English (default)"), ("fr", "French"), ("fr-ca", "French (Canada)"),
             ("de", "German"), ("it", "Italian"), ("ar", "Arabic")]


class OrderForm(forms.Form):
    name = forms.CharField(max_length=100, initial="Ada Lovelace")
    email = forms.EmailField(initial="ada@example.com")
    language = forms.ChoiceField(choices=LANGUAGES, required=False)
    product = forms.ChoiceField(
        choices=[(key, f"{name} ({money(price)})") for key, (name, price) in PRODUCTS.items()]
    )
    quantity = forms.IntegerField(min_value=1, max_value=10, initial=1)


class SignUpForm(forms.Form):
    name = forms.CharField(max_length=100)
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, min_length=3)
    language = forms.ChoiceField(choices=LANGUAGES, required=False)

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if get_user_model().objects.filter(username=email).exists():
            raise forms.ValidationError("An account with this address exists: log in.")
        return email


class LoginForm(forms.Form):
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput)



class CommentForm(forms.Form):
    """A comment on a product, by a customer of the shop (an order or an account): the
    address must be one of theirs, so that a stranger cannot start notifications."""

    email = forms.EmailField(initial="ada@example.com",
                             help_text="The address you ordered or signed up with.")
    product = forms.ChoiceField(choices=[(key, name) for key, (name, _price) in PRODUCTS.items()])
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=1000)

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        customer = Customer.objects.filter(email__iexact=email).first()
        if customer is None:
            raise forms.ValidationError(
                "No customer has this address: place an order or sign up first.")
        self.customer = customer
        return email
