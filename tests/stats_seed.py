"""A seeded send log for the statistics tests: emails, events and daily rows."""

from __future__ import annotations

import datetime
import io
import random

from django.core.management import call_command
from django.utils import timezone

from transactional_mail.models import Email, EmailEvent, MailStatDay

#: What each seeded email may get: (event type, Postmark raw event), first to last.
EVENTS = {
    "delivered": ("delivered", {"RecordType": "Delivery"}),
    "opened": ("opened", {"RecordType": "Open"}),
    "clicked": ("clicked", {"RecordType": "Click"}),
    "bounced": ("bounced", {"RecordType": "Bounce", "Type": "HardBounce"}),
    "complained": ("complained", {"RecordType": "SpamComplaint"}),
}


def seed_log(count=300, seed=16):
    """``count`` sent emails over three templates, two categories and five days, with
    random events (a fixed seed); return what a person counting by hand would find."""
    rng = random.Random(seed)
    today = timezone.localdate()
    expected = {}
    for n in range(count):
        key = rng.choice(["welcome", "receipt", "review"])
        day = today - datetime.timedelta(days=rng.randrange(5))
        created = timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))
        email = Email.objects.create(
            template_key=key, category="account" if key != "review" else "reviews",
            trigger_key="order_paid" if key == "receipt" else "", to=[f"u{n}@example.com"],
            from_email="shop@example.com", next_attempt_at=created, attempts=1,
            sent_at=created, status="sent")
        Email.objects.filter(pk=email.pk).update(created_at=created)
        kinds = []
        if rng.random() < 0.9:
            kinds.append("delivered")
            kinds += [kind for kind, p in (("opened", 0.4), ("clicked", 0.1),
                                           ("complained", 0.02)) if rng.random() < p]
            if "opened" in kinds and rng.random() < 0.5:
                kinds.append("opened")  # opened twice: counts once
        else:
            kinds.append("bounced")
        for index, kind in enumerate(kinds):
            event_type, raw = EVENTS[kind]
            EmailEvent.objects.create(
                email=email, esp_name="Postmark", event_id=f"{n}-{index}", event_type=event_type,
                timestamp=created + datetime.timedelta(seconds=rng.choice([1, 4, 40, 900])),
                raw=raw, hard_bounce=kind == "bounced")
        totals = expected.setdefault(key, {"sent": 0, "delivered": 0, "bounced": 0,
                                           "opened": 0, "clicked": 0, "complained": 0})
        totals["sent"] += 1
        for kind in set(kinds):
            totals[kind] += 1
    call_command("rebuild_mail_stats", stdout=io.StringIO())
    return expected


def ab_rows(template_key="welcome"):
    """Today's rows of a two-subject test: B is opened more often, clicks are even."""
    today = timezone.localdate()
    MailStatDay.objects.create(day=today, template_key=template_key, subject_variant=1,
                               sent=1000, delivered=990, opened=200, clicked=20)
    MailStatDay.objects.create(day=today, template_key=template_key, subject_variant=2,
                               sent=1000, delivered=985, opened=300, clicked=25)


