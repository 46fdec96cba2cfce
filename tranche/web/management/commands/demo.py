from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from tranche.accounts.models import User
from tranche.web.demo import LOGINS, load_demo


class Command(BaseCommand):
    help = "Load the demo data (safe to run again) and print the demo logins."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--if-empty", action="store_true", help="only when the database has no users yet"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["if_empty"] and User.objects.exists():
            if not User.objects.filter(email=LOGINS[0].email).exists():
                self.stdout.write("The database already has users; demo data not loaded.")
                return
        else:
            load_demo()
        self.stdout.write("Demo logins:")
        for login in LOGINS:
            self.stdout.write(f"  {login.role:<9} {login.email:<22} password: {login.password}")
