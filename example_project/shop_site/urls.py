"""URLs of the demo shop: the shop pages, the admin, Django's password reset pages,
Anymail's webhooks and the app's unsubscribe pages."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # Tracking webhooks: /anymail/<esp>/tracking/, e.g. /anymail/postmark/tracking/.
    path("anymail/", include("anymail.urls")),
    # The unsubscribe and preferences pages non-essential mail links to.
    path("mail/", include("transactional_mail.urls")),
    # Django's password reset pages; the reset email itself goes through the outbox
    # (TRANSACTIONAL_MAIL["USE_PASSWORD_RESET_FORM"]).
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("shop.urls")),
]
