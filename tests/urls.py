from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import PasswordResetView
from django.urls import include, path

from transactional_mail.auth import PasswordResetForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("anymail/", include("anymail.urls")),
    path("mail/", include("transactional_mail.urls")),
    # Django's own password reset views (USE_PASSWORD_RESET_FORM switches their form) ...
    path("accounts/", include("django.contrib.auth.urls")),
    # ... and a site's own view given the app's form.
    path("shop/password-reset/", PasswordResetView.as_view(form_class=PasswordResetForm),
         name="shop_password_reset"),
]
if settings.HAS_ALLAUTH:
    urlpatterns.append(path("allauth/", include("allauth.urls")))
