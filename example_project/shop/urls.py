from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.index, name="index"),
    path("signup/", views.sign_up, name="signup"),
    path("login/", views.log_in, name="login"),
    path("logout/", views.log_out, name="logout"),
    path("order/", views.place_order, name="order"),
    *[
        path(f"orders/<int:pk>/{action}/", views.change_order, {"action": action},
             name=action)
        for action in views.ACTIONS  # ship, deliver, refund
    ],
    path("orders/<int:pk>/emails.json", views.order_emails, name="order-emails"),
    path("emails.json", views.recent_emails, name="emails"),
    path("comment/", views.post_comment, name="comment"),
    path("password-reset/", views.password_reset, name="password-reset"),
]
