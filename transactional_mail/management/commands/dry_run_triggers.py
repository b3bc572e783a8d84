"""``manage.py dry_run_triggers``: which triggers would fire for an object, without sending."""

from __future__ import annotations

import json

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from ...triggers.dry_runs import dry_run
from ...triggers.syntax import EVENTS


class Command(BaseCommand):
    help = (
        "Show which triggers would fire for an object and an event, for whom and with "
        "which context. Writes nothing and sends nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("model", help="app_label.Model, e.g. shop.Order")
        parser.add_argument("pk", help="The object's primary key.")
        parser.add_argument("--event", default="created", choices=[*EVENTS, "signal"],
                            help="The event to simulate (default: created).")
        parser.add_argument("--old", action="append", default=[], metavar="FIELD=VALUE",
                            help="With --event changed: a field's value before the change "
                            "(repeatable), e.g. --old status=paid.")
        parser.add_argument("--signal", help="With --event signal: the signal's dotted path.")

    def handle(self, *args, model, pk, event, old, signal, **options):
        try:
            model_class = apps.get_model(model)
        except (LookupError, ValueError) as err:
            raise CommandError(f"{model!r} is not an installed model (app_label.Model).") \
                from err
        instance = model_class._base_manager.filter(pk=pk).first()
        if instance is None:
            raise CommandError(f"No {model} with primary key {pk!r}.")
        old_values = {}
        for item in old:
            name, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--old {item!r} must look like FIELD=VALUE.")
            try:
                # The value as the field holds it: "3" is 3 for an integer or a key field.
                old_values[name] = model_class._meta.get_field(name).to_python(value)
            except FieldDoesNotExist as err:
                raise CommandError(f"--old: {model} has no field {name!r}.") from err
            except ValidationError as err:
                raise CommandError(f"--old {item!r}: {' '.join(err.messages)}") from err
        if event == "signal" and not signal:
            raise CommandError("--event signal needs --signal dotted.path.to.signal.")
        plans = dry_run(instance, event, old_values=old_values, signal=signal)
        if not plans:
            self.stdout.write(f"No trigger listens to {event} on {model}.")
        for plan in plans:
            if not plan.fires:
                self.stdout.write(f"- {plan.trigger}: does not fire ({plan.reason})")
                continue
            self.stdout.write(self.style.SUCCESS(f"- {plan.trigger}: fires"))
            self.stdout.write(f"    template:   {plan.template}")
            self.stdout.write(f"    recipients: {', '.join(plan.recipients) or '(none)'}")
            for address, problem in plan.invalid_recipients.items():
                self.stdout.write(self.style.WARNING(f"    not sent to {address!r}: {problem}"))
            for name in ("from_email", "reply_to"):
                value = plan.options.get(name)
                if value:
                    shown = value if isinstance(value, str) else ", ".join(value)
                    self.stdout.write(f"    {name + ':':<12}{shown}")
            if plan.language:
                self.stdout.write(f"    language:   {plan.language}")
            if plan.delay:
                self.stdout.write(f"    delay:      {plan.delay}")
            if plan.digest_window:
                self.stdout.write(f"    digest:     collected into a {plan.digest_window} "
                                  "window per recipient (context: one of its items)")
            context = json.dumps(plan.context, cls=DjangoJSONEncoder, indent=2,
                                 sort_keys=True)
            self.stdout.write("    context:    " + context.replace("\n", "\n    "))
