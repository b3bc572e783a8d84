"""``manage.py rebuild_mail_stats [--since DATE]``: recount the dashboard's daily rows."""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError

from ...stats_rebuild import rebuild


class Command(BaseCommand):
    help = (
        "Recount the daily mail statistics (the admin dashboard's rows) from the send log: "
        "every day, or the days from --since on. Live counting goes on afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", metavar="YYYY-MM-DD",
                            help="First day to recount (in the site's time zone); "
                            "default: every day.")

    def handle(self, *args, since=None, **options):
        day = None
        if since is not None:
            try:
                day = datetime.date.fromisoformat(since)
            except ValueError as err:
                raise CommandError(
                    f"--since {since!r} is not a date: give it as YYYY-MM-DD, "
                    "e.g. --since 2026-01-31.") from err
        rows = rebuild(day)
        scope = f"from {day.isoformat()}" if day else "for every day"
        self.stdout.write(f"Rebuilt the mail statistics {scope}: {rows} daily rows.")
