"""``manage.py export_address ADDRESS``: every email and event about one address, as JSON."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from ...privacy import InvalidAddress, export_address


class Command(BaseCommand):
    help = (
        "Write everything the send log holds about one address as JSON: each email naming "
        "it (recipients, subject, bodies, context, attempts, events), other events naming "
        "it, its suppressions and their history, its digest windows with their events, and "
        "its frequency-cap counts. For a data subject access request."
    )

    def add_arguments(self, parser):
        parser.add_argument("address", help="The email address to export.")
        parser.add_argument("--output", "-o", help="Write to this file instead of stdout.")

    def handle(self, *args, address, output, **options):
        try:
            data = export_address(address)
        except InvalidAddress as err:
            raise CommandError(str(err)) from err
        text = json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
        if output:
            with open(output, "w", encoding="utf-8") as file:
                file.write(text + "\n")
            self.stderr.write(f"Wrote {len(data['emails'])} email(s) to {output}.")
        else:
            self.stdout.write(text)
