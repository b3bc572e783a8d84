"""Devices users log in from, for the login alert.

The ``login_alert`` trigger (``shop_site/settings.py``) is a ``user_logged_in`` signal
trigger whose ``when`` is :func:`is_new_device`: it fires when a user logs in from a
device (user agent and IP address) they have not used before.

Decision: the first login ever (sign-up logs the new user in) does not alert. There is
no earlier device to compare with, and the welcome email has just gone out; the device
is remembered, and from then on a login from any other device alerts.

:func:`remember_device` records each login's device. It is a receiver of the same signal,
connected in ``ShopConfig.ready()``. Receivers run in the order they were connected,
which depends on ``INSTALLED_APPS``; so that the order does not matter, the answer of
:func:`is_new_device` is computed once per request and user, before the device is
recorded, and reused by whichever runs second.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from .models import KnownDevice

_ANSWERS = "_shop_new_device"  # request attribute: {user pk: is_new_device's answer}


def device_of(request) -> tuple[str, str]:
    """The (user agent, IP address) pair that identifies a device in the demo."""
    user_agent = (request.META.get("HTTP_USER_AGENT") or "").strip()[:255]
    ip_address = (request.META.get("REMOTE_ADDR") or "")[:45]
    return user_agent, ip_address


def device_summary(user_agent: str) -> str:
    """A short, human name for a user agent: "Firefox on Linux", "curl"..."""
    if not user_agent:
        return "an unknown device"
    lowered = user_agent.lower()
    browser = next(
        (name for token, name in (("edg/", "Edge"), ("firefox", "Firefox"),
                                  ("chrome", "Chrome"), ("safari", "Safari"),
                                  ("curl", "curl"))
         if token in lowered),
        user_agent.split("/")[0][:40],
    )
    system = next(
        (name for token, name in (("android", "Android"), ("iphone", "iOS"),
                                  ("windows", "Windows"), ("mac os", "macOS"),
                                  ("linux", "Linux"))
         if token in lowered),
        "",
    )
    return f"{browser} on {system}" if system else browser


def is_new_device(user, request=None) -> bool:
    """The login alert's ``when``: this login's device is new for a user who has others.

    False on the user's first login ever, and without a request (a dry run from the
    command line, a login signal sent by code).
    """
    if request is None:
        return False
    answers = request.__dict__.setdefault(_ANSWERS, {})
    if user.pk not in answers:
        user_agent, ip_address = device_of(request)
        devices = KnownDevice.objects.filter(user=user)
        answers[user.pk] = (
            devices.exists()
            and not devices.filter(user_agent=user_agent, ip_address=ip_address).exists()
        )
    return answers[user.pk]


def remember_device(sender, request=None, user=None, **kwargs) -> None:
    """Receiver of ``user_logged_in``: record (or refresh) the device of this login."""
    if request is None or user is None or user.pk is None:
        return
    is_new_device(user, request)  # decide before recording, whatever the receiver order
    user_agent, ip_address = device_of(request)
    try:
        with transaction.atomic():
            device, created = KnownDevice.objects.get_or_create(
                user=user, user_agent=user_agent, ip_address=ip_address
            )
    except IntegrityError:  # the same device logging in twice at the same moment
        return
    if not created:
        device.save(update_fields=["last_seen"])
