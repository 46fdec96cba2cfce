"""A project's contract in tax terms: its price basis per rate, and each milestone's
share of it per rate. Pure reads of the project row (no query)."""

from __future__ import annotations

from decimal import Decimal

from tranche.core.money import ZERO
from tranche.core.tax import Bases, PriceMode, bases_from_rows, basis_total, split_contract
from tranche.projects.models import Milestone, Project


def project_bases(project: Project) -> Bases:
    """The contract's price basis per tax rate. A project without rows (made before
    tax, or by hand) has its whole total on one basis without a rate."""
    rows = project.contract_bases or [
        {"name": "", "percentage": "0", "amount": str(project.contract_total)}
    ]
    return bases_from_rows(rows, currency=project.currency)


def price_mode(project: Project) -> PriceMode:
    return PriceMode(project.price_mode)


def milestone_bases(project: Project, milestones: list[Milestone]) -> dict[int, Bases]:
    """Each billable milestone's share of the contract per rate (`split_contract`: per
    rate, the shares add up to the contract's basis exactly); non-billable ones have none."""
    billable = [m for m in milestones if m.is_billable and m.billing_percentage]
    shares = split_contract(
        project_bases(project),
        [m.billing_percentage or ZERO for m in billable],
        currency=project.currency,
    )
    result: dict[int, Bases] = {m.pk: {} for m in milestones}
    result.update({m.pk: share for m, share in zip(billable, shares, strict=False)})
    return result


def milestone_amounts(project: Project, milestones: list[Milestone]) -> dict[int, Decimal]:
    """Each milestone's share of the contract's price basis (its rates' shares summed)."""
    return {
        pk: basis_total(bases, currency=project.currency).amount
        for pk, bases in milestone_bases(project, milestones).items()
    }
