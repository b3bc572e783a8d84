"""``manage.py forget_address ADDRESS``: erase what the send log holds about one address."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ...privacy import AddressBusy, InvalidAddress, forget_address


class Command(BaseCommand):
    help = (
        "Erase everything the send log holds about one address (recipients, subjects, "
        "bodies, contexts, errors, raw events), keeping each email's status, category, "
        "template and times so counts stay true; deletes its digest windows (nothing "
        "collected for it is sent) and frequency-cap counts. A suppression of the address is kept; "
        "--hash keeps it only as a keyed hash, which still blocks sends. See docs/privacy.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("address", help="The email address to forget.")
        parser.add_argument("--hash", action="store_true", dest="hash_suppressions",
                            help="Keep the address's suppressions (and their history) as a "
                            "keyed hash of the address instead of the address.")

    def handle(self, *args, address, hash_suppressions, **options):
        try:
            erasure = forget_address(address, hash_suppressions=hash_suppressions)
        except (InvalidAddress, AddressBusy) as err:
            raise CommandError(str(err)) from err
        kept = f"{erasure.suppressions} suppression(s) kept" + (
            " as a hash" if erasure.hashed else "")
        self.stdout.write(self.style.SUCCESS(
            f"Erased {erasure.emails} email(s) ({erasure.cancelled} cancelled before "
            f"sending), {erasure.events} event(s), {erasure.attempts} attempt error(s); "
            f"{erasure.digest_windows} digest window(s), {erasure.cap_counts} cap count(s) "
            f"deleted; {kept}."))
