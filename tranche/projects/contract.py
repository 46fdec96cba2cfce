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


def amended(project: Project) -> bool:
    """Whether a change order amended the contract: from then on each milestone's share
    is stored (`Milestone.contract_shares`), not worked out from percentages."""
    return project.contract_version > 1


def stored_share(project: Project, milestone: Milestone) -> Bases:
    return bases_from_rows(milestone.contract_shares or [], currency=project.currency)


def milestone_bases(project: Project, milestones: list[Milestone]) -> dict[int, Bases]:
    """Each billable milestone's share of the contract per rate (`split_contract`: per
    rate, the shares add up to the contract's basis exactly); non-billable ones have none.
    After a change order the shares are the ones its approval stored (see
    projects/amendment.py: per rate they add up to the amended contract's basis with
    what was invoiced before)."""
    if amended(project):
        return {m.pk: stored_share(project, m) if m.is_billable else {} for m in milestones}
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
