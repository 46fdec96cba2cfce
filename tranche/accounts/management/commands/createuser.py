"""`tranche createuser`: the first admin of an installation, or any user from a shell.

The password is never an argument (it would sit in the shell history and in `ps` for
every local user to read): it comes from TRANCHE_PASSWORD, as Django's createsuperuser
reads DJANGO_SUPERUSER_PASSWORD, or from a prompt."""

from __future__ import annotations

import getpass
import os
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tranche.accounts.models import Role
from tranche.accounts.services import user_create
from tranche.core.errors import DomainError

PASSWORD_VARIABLE = "TRANCHE_PASSWORD"


class Command(BaseCommand):
    help = f"Create a user; the password comes from {PASSWORD_VARIABLE} or a prompt."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--customer-id", type=int, help="required for a customer user")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = user_create(
                email=options["email"],
                password=self._password(),
                role=options["role"],
                customer_id=options["customer_id"],
                full_name=options["name"],
            )
        except DomainError as exc:
            raise CommandError(exc.detail, returncode=2) from None
        self.stdout.write(f"Created {user.role} {user.email} (id {user.pk}).")

    def _password(self) -> str:
        password = os.environ.get(PASSWORD_VARIABLE)
        if password is not None:
            return password
        if not sys.stdin.isatty():
            raise CommandError(
                f"Set {PASSWORD_VARIABLE} to the new user's password, or run this command "
                "in a terminal to be asked for it.",
                returncode=2,
            )
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The two passwords differ; nothing was created.", returncode=2)
        return first
