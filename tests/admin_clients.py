"""Test clients for the admin views: staff with chosen permissions, and the guard every
JSON endpoint of the editors has (login, POST, CSRF, same origin)."""

from __future__ import annotations

from django.contrib.auth.models import Permission, User
from django.test import Client


def staff_client(username: str = "sam", perms: tuple[str, ...] = (),
                 email: str | None = None) -> Client:
    """A client logged in as a new staff user holding only the permissions ``perms``, whose
    address is ``email`` (``username@example.com`` by default; ``""`` for none)."""
    address = f"{username}@example.com" if email is None else email
    user = User.objects.create_user(username, address, "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


def assert_needs_login_post_csrf_and_same_origin(url: str, data: dict, admin_user) -> None:
    """``url`` sends anonymous users to the login page and refuses a GET, a POST without a
    CSRF token and a cross-site POST, even from a superuser."""
    assert Client().post(url, data).status_code == 302  # to the login page
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(url, data).status_code == 403  # no CSRF token
    admin = Client()
    admin.force_login(admin_user)
    assert admin.get(url).status_code == 405
    assert admin.post(url, data, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
