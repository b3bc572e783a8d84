"""URLs of the demo shop: the shop pages, the admin and Anymail's webhooks."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # Tracking webhooks: /anymail/<esp>/tracking/, e.g. /anymail/postmark/tracking/.
    path("anymail/", include("anymail.urls")),
    path("", include("shop.urls")),
]
