from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = _("Shop")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from .devices import remember_device

        # The login alert trigger compares each login's device with the known ones.
        user_logged_in.connect(remember_device, dispatch_uid="shop.remember_device")
