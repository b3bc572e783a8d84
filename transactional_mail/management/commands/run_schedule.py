"""``manage.py run_schedule KEY``: run one period of a periodic email by hand."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ...exceptions import ConfigurationError
from ...periodic.definitions import get_schedule
from ...periodic.periods import due_time, parse_period, period_label
from ...periodic.runs import Progress, run

_BAR_WIDTH = 30


class Command(BaseCommand):
    help = (
        "Run one period of a schedule of TRANSACTIONAL_MAIL['SCHEDULES'] now: its latest "
        "due time, or --period. Recipients already queued for that period are skipped, so "
        "running a period again, or after a crash, sends nobody anything twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("key", help="The schedule's key in TRANSACTIONAL_MAIL['SCHEDULES'].")
        parser.add_argument(
            "--period",
            help="The due time to run, ISO 8601 (e.g. 2026-11-30T08:00+01:00; without an "
            "offset, in the schedule's time zone). Default: the latest due time.",
        )
        parser.add_argument("--dry-run", action="store_true",
                            help="Build every email and count them; write nothing.")

    def handle(self, *args, key, period, dry_run, **options):
        try:
            schedule = get_schedule(key)
            due = parse_period(schedule, period) if period else due_time(schedule)
        except (ConfigurationError, ValueError) as err:
            raise CommandError(str(err)) from err
        label = period_label(schedule, due)
        self.stdout.write(f"{'Dry run of' if dry_run else 'Running'} schedule {key!r}, "
                          f"period {label}.")
        tally = run(schedule, due, dry_run=dry_run, progress=self._show)
        if tally.done:
            self.stdout.write("")  # end the progress line
        if tally.outcome == "already done":
            self.stdout.write(f"The period {label} was already done: nothing to queue.")
            return
        if tally.outcome == "running":
            raise CommandError(
                f"Another process is running period {label} of {key!r} (its lease has not "
                "expired). Wait for it, or run again after SCHEDULE_LEASE seconds to resume."
            )
        verb = "would queue" if dry_run else "queued"
        summary = (f"{tally.done} recipient(s): {verb} {tally.queued}, already queued "
                   f"{tally.already_queued}, skipped {tally.skipped}.")
        self.stdout.write(self.style.SUCCESS(summary))

    def _show(self, tally: Progress) -> None:
        """A progress bar (a count when the total is unknown) rewritten on one line."""
        if tally.total:
            filled = min(_BAR_WIDTH, _BAR_WIDTH * tally.done // tally.total)
            line = (f"[{'#' * filled}{' ' * (_BAR_WIDTH - filled)}] "
                    f"{tally.done}/{tally.total}")
        else:
            line = f"{tally.done} recipients"
        self.stdout.write(f"\r{line}, {tally.queued} queued", ending="")
        self.stdout.flush()
