from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.index, name="index"),
    path("order/", views.place_order, name="order"),
    path("orders/<int:pk>/ship/", views.ship_order, name="ship"),
    path("orders/<int:pk>/emails.json", views.order_emails, name="order-emails"),
    path("password-reset/", views.password_reset, name="password-reset"),
    path("reset/<str:token>/", views.reset, name="reset"),
]
