"""``manage.py install_starter_templates``: create the starter templates a site lacks."""

from __future__ import annotations

from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from ...starters import LANGUAGES, load_starters
from ...starters.installer import install_starters


def _choices(value: str | None, valid: list[str], what: str) -> list[str]:
    """The comma-separated ``value`` as a list (all of ``valid`` when None), or CommandError
    naming the unknown ones and the valid ones."""
    if value is None:
        return list(valid)
    chosen = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in valid]
    if unknown or not chosen:
        raise CommandError(
            f"Unknown {what}: {', '.join(unknown) or repr(value)}. "
            f"Valid {what}s: {', '.join(valid)}."
        )
    return list(dict.fromkeys(chosen))


class Command(BaseCommand):
    help = (
        "Create the starter email templates the site does not have (published, in the "
        "default layout), and upgrade the ones still holding an earlier starter version. "
        "A template staff edited, or one with an unpublished draft, is never changed. "
        "Safe to run again: a second run changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--language", help="Comma-separated languages to install "
                            f"(default: all of {', '.join(LANGUAGES)}).")
        parser.add_argument("--only", help="Comma-separated starter keys to install "
                            "(default: all).")
        parser.add_argument("--dry-run", action="store_true",
                            help="Say what would be created or updated; write nothing.")
        parser.add_argument("--database", default="default",
                            help="The database to install into (default: default).")

    def handle(self, *args, language, only, dry_run, database, **options):
        starters = load_starters()
        languages = _choices(language, list(LANGUAGES), "language")
        keys = _choices(only, sorted(starters), "starter key")
        # Naming a language installs it even where staff deleted it.
        outcomes = install_starters([starters[key] for key in keys], languages,
                                    dry_run=dry_run, restore_missing=bool(language),
                                    using=database)
        for outcome in outcomes:
            self.stdout.write(outcome.line(dry_run))
        counts = Counter(outcome.action for outcome in outcomes)
        summary = ", ".join(f"{counts[action]} {action}" for action in
                            ("created", "updated", "unchanged", "skipped"))
        prefix = "Dry run, nothing written: " if dry_run else ""
        self.stdout.write(self.style.SUCCESS(f"{prefix}{summary}."))
