from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tranche.accounts.selectors import active_user_by_email
from tranche.accounts.services import token_create


class Command(BaseCommand):
    help = "Print a new API token for an active user."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("email")

    def handle(self, *args: Any, **options: Any) -> None:
        user = active_user_by_email(options["email"])
        if user is None:
            raise CommandError(f"no active user with email {options['email']}.", returncode=2)
        self.stdout.write(token_create(user=user, how="with the `tranche token` command"))
