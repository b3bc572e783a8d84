"""``manage.py export_suppressions``: every suppression as our CSV."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ...suppression_files import write_csv


class Command(BaseCommand):
    help = (
        "Write every suppression as CSV (address, category, reason, source, created_at), "
        "oldest first: the file import_suppressions reads back, e.g. on another site or "
        "after a change of ESP."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="Write to this file instead of stdout.")

    def handle(self, *args, output, **options):
        if output:
            with open(output, "w", encoding="utf-8", newline="") as file:
                count = write_csv(file)
            self.stderr.write(f"Wrote {count} suppression(s) to {output}.")
        else:
            write_csv(self.stdout)  # CSV lines end in \r\n: nothing is added
