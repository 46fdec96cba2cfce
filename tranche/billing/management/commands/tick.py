from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tranche.billing.services.periodic import run_periodic
from tranche.core.heartbeat import TICK, heartbeat_record


class Command(BaseCommand):
    help = (
        "The periodic pass, once: mark overdue invoices, queue reminders, retry waiting "
        "webhook events, deliver due emails."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = run_periodic()
        heartbeat_record(name=TICK, summary=summary)
        self.stdout.write(summary)
