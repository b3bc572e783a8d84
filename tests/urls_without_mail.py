"""A URLconf that forgot ``include("transactional_mail.urls")`` (check E023)."""

from django.urls import include, path

urlpatterns = [path("anymail/", include("anymail.urls"))]
