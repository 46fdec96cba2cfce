from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tranche.billing.services.reconcile import reconcile_payments


class Command(BaseCommand):
    help = (
        "Settle Stripe payments of unpaid invoices sent over an hour ago that succeeded "
        "without a webhook; prints what it changed."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        checked, lines = reconcile_payments()
        for line in lines:
            self.stdout.write(line)
        self.stdout.write(
            f"reconcile: {checked} invoice(s) checked, {len(lines)} change(s) or problem(s)."
        )
