"""The password reset's request path, for an address with an account and one without.

Run: ``python bench/bench_password_reset.py`` (SQLite, Kombu's in-process ``memory://``
broker). It posts Django's ``PasswordResetView`` (``django.contrib.auth.urls``) with the
test client, N times per address, first with Django's own form, then with
``transactional_mail.auth.PasswordResetForm`` (``USE_PASSWORD_RESET_FORM``), and prints
the median time of a request for each address, side by side.

Django's form looks the address up and, for an account, makes a token and sends the
mail in the request (here to Django's locmem backend, which costs far less than a real
mail server): the known address is slower, which tells an attacker who has an account.
The app's form does the same work for both: it queues one task. Not a test: timings are
the machine's; the tests prove "the same work" by counting queries and publishes.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = int(os.environ.get("BENCH_RESET_N", "200"))


def configure() -> None:
    """bench_send's SQLite set-up, plus what Django's password reset pages need."""
    import bench_send

    bench_send.configure(
        "sqlite",
        extra_apps=["django.contrib.admin", "django.contrib.sessions",
                    "django.contrib.messages"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware",
                    "django.contrib.messages.middleware.MessageMiddleware"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates",
                    "APP_DIRS": True,
                    "OPTIONS": {"context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages"]}}],
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        SECRET_KEY="bench",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )


def _urlpatterns():
    from django.urls import include, path

    return [path("accounts/", include("django.contrib.auth.urls"))]


def medians_ms(client, addresses: tuple[str, ...]) -> list[float]:
    """The median time of a reset request for each address, the addresses taking turns
    (so that drift, a warming cache or a growing queue weighs on each alike)."""
    timings: list[list[float]] = [[] for _ in addresses]
    for _ in range(N):
        for index, address in enumerate(addresses):
            start = time.perf_counter()
            response = client.post("/accounts/password_reset/", {"email": address})
            timings[index].append(time.perf_counter() - start)
            assert response.status_code == 302, response.status_code
    return [statistics.median(times) * 1000 for times in timings]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    configure()
    globals()["urlpatterns"] = _urlpatterns()
    from django.contrib.auth.models import User
    from django.test import Client, override_settings

    User.objects.create_user("ann", "ann@example.com", "password")
    client = Client()
    print(f"Password reset request, median of {N} (ms)")
    print(f"{'form':<34} {'known address':>14} {'unknown address':>16} {'ratio':>7}")
    for label, use_app in (("Django's PasswordResetForm", False),
                           ("transactional_mail's (drop-in)", True)):
        with override_settings(TRANSACTIONAL_MAIL={
                "DEFAULT_FROM_EMAIL": "Shop <shop@example.com>",
                "USE_PASSWORD_RESET_FORM": use_app}):
            addresses = ("ann@example.com", "nobody@example.com")
            medians_ms(client, addresses)  # warm up
            known, unknown = medians_ms(client, addresses)
        print(f"{label:<34} {known:>14.3f} {unknown:>16.3f} {known / unknown:>7.2f}")


if __name__ == "__main__":
    main()
