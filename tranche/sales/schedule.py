"""Rules of a payment schedule, shared by a quote's schedule and a project's milestones."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from tranche.core.errors import Invalid
from tranche.core.money import HUNDRED, ZERO


def check_billing(*, title: str, is_billable: bool, billing_percentage: Decimal | None) -> None:
    if is_billable:
        if billing_percentage is None or billing_percentage <= 0:
            raise Invalid(
                f"Billable item '{title}' needs a billing percentage greater than 0.",
                code="billing_percentage_required",
            )
        if billing_percentage > HUNDRED:
            raise Invalid(
                f"Billable item '{title}' cannot bill more than 100%.",
                code="billing_percentage_too_high",
            )
    elif billing_percentage is not None and billing_percentage != 0:
        raise Invalid(
            f"Item '{title}' is not billable, so it cannot have a billing percentage.",
            code="billing_percentage_not_billable",
        )


def check_schedule_total(percentages: Iterable[Decimal]) -> None:
    total = sum(percentages, ZERO)
    if total > HUNDRED:
        raise Invalid(
            f"Billable percentages add up to {total}%; they may add up to at most 100%.",
            code="schedule_over_100",
        )
