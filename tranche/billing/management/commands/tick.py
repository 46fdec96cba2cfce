from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tranche.billing.services.periodic import run_periodic


class Command(BaseCommand):
    help = (
        "The periodic pass, once: mark overdue invoices, queue reminders, retry waiting "
        "webhook events, deliver due emails."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(run_periodic())
