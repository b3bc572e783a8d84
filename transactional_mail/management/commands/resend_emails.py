"""``manage.py resend_emails``: queue failed emails for delivery again."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ...models import Email, EmailStatus
from ...resending import resend, secrets_reason, skip_reason, with_secrets


class Command(BaseCommand):
    help = (
        "Queue emails for delivery again: by id, or every failed email (--failed). "
        "They keep their template revision and context, so they render as before. "
        "Emails the ESP accepted are skipped unless --force is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="Email ids to resend.")
        parser.add_argument("--failed", action="store_true",
                            help="Resend every email whose status is failed.")
        parser.add_argument("--force", action="store_true",
                            help="Also resend emails the ESP already accepted (sent, "
                            "delivered...): the recipient gets the email again.")
        parser.add_argument("--since", help="With --failed: only emails created since this "
                            "ISO date/time, e.g. 2026-11-20 or 2026-11-20T08:00+00:00.")

    def handle(self, *args, ids, failed, since, force, **options):
        if not ids and not failed:
            raise CommandError("Name email ids to resend, or pass --failed.")
        emails = Email.objects.none()
        skipped = {}
        if ids:
            rows = {pk: (status, secret_keys) for pk, status, secret_keys in
                    Email.objects.filter(pk__in=ids).values_list("pk", "status", "secret_keys")}
            missing = sorted(set(ids) - set(rows))
            if missing:
                raise CommandError(f"No email with id {', '.join(map(str, missing))}.")
            emails = Email.objects.filter(pk__in=ids)
            for pk, (status, secret_keys) in rows.items():
                why = skip_reason(status, force=force, secret_keys=secret_keys)
                if why:
                    skipped[pk] = (status, why)
        if failed:
            query = Email.objects.filter(status=EmailStatus.FAILED)
            if since:
                when = parse_datetime(since) or parse_datetime(f"{since}T00:00")
                if when is None:
                    raise CommandError(f"--since {since!r} is not an ISO date or date/time.")
                if timezone.is_naive(when):
                    when = timezone.make_aware(when)
                query = query.filter(created_at__gte=when)
            emails = emails | query
            for pk, secret_keys in with_secrets(query).values_list("pk", "secret_keys"):
                skipped.setdefault(pk, (EmailStatus.FAILED, secrets_reason(secret_keys)))
        count = resend(emails, force=force)
        self.stdout.write(self.style.SUCCESS(f"Queued {count} email(s) for delivery."))
        for pk, (status, why) in sorted(skipped.items()):
            self.stdout.write(self.style.WARNING(f"Skipped email {pk} ({status}: {why})."))
