"""`tranche migrate` is Django's, and then makes the cache table the rate limits count in
(settings CACHES): the table is not a model's, so no migration creates it, and every way
of installing Tranche (`make run`, `tranche run`, a deployment's own `tranche migrate`)
runs this command."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.commands.migrate import Command as MigrateCommand


class Command(MigrateCommand):
    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        if not options.get("plan") and not options.get("check_unapplied"):
            call_command("createcachetable", database=options["database"], verbosity=0)
