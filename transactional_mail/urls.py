"""The public pages non-essential mail links to.

Included by the site as ``path("mail/", include("transactional_mail.urls"))``.
"""

from django.urls import path

from . import views

app_name = "transactional_mail"

urlpatterns = [
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
]
