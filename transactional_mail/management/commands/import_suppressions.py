"""``manage.py import_suppressions FILE``: add the suppressions of a CSV or an ESP export."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from ...suppression_files import FORMATS, RowError, import_suppressions


class Command(BaseCommand):
    help = (
        "Add the suppressions of FILE that are missing (existing ones are left as they "
        "are): our CSV (export_suppressions), Postmark's suppression dump or Amazon SES's "
        "suppressed destinations. Safe to run again. See docs/privacy.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The file to read; - reads stdin.")
        parser.add_argument("--format", choices=FORMATS, default="ours", dest="fmt",
                            help="The file's layout (default: ours).")
        parser.add_argument("--category", default="",
                            help="With --format postmark or ses: suppress only this "
                            "category (the ESP's list belonged to one stream). Default: all.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Read and check everything, write nothing, report counts.")

    def handle(self, *args, file, fmt, category, dry_run, **options):
        try:
            if file == "-":
                report = self._import(sys.stdin, fmt, category, dry_run, file)
            else:
                with open(file, encoding="utf-8-sig", newline="") as stream:
                    report = self._import(stream, fmt, category, dry_run, file)
        except OSError as err:
            raise CommandError(f"Cannot read {file}: {err.strerror or err}.") from err
        except RowError as err:
            raise CommandError(f"--category: {err}.") from err
        for error in report.errors:
            self.stderr.write(error)
        if report.invalid > len(report.errors):
            self.stderr.write(f"... and {report.invalid - len(report.errors)} more refused.")
        style = self.style.SUCCESS if not report.invalid else self.style.WARNING
        self.stdout.write(style(f"{file}: {report.summary()}."))

    def _import(self, stream, fmt, category, dry_run, name):
        return import_suppressions(stream, fmt, category=category, dry_run=dry_run,
                                   note=f"Imported from {name} ({fmt}) by import_suppressions.")
