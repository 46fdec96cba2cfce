"""Reads of a project's contract that need its invoices: a change order's preview (per
milestone, its share before and after, and the contract per rate before and after), and
the contract's history. The arithmetic is projects/amendment.py's; this module gathers
what it needs (billing is the lowest app that knows invoices)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from tranche.billing.models import Invoice, InvoiceStatus, InvoiceType
from tranche.billing.taxes import billed_bases, credited_bases_of
from tranche.core.money import Money
from tranche.core.tax import Bases, bases_from_rows, bases_to_rows, basis_total, contract_bases
from tranche.projects.amendment import (
    MilestoneState,
    Preview,
    PreviewRow,
    ScheduleChange,
    amend,
)
from tranche.projects.contract import milestone_bases, project_bases
from tranche.projects.models import (
    ChangeOrder,
    ChangeOrderStatus,
    MilestoneStatus,
    Project,
)
from tranche.projects.selectors import ContractLine, contract_lines, milestones_of


def live_invoices(project: Project) -> QuerySet[Invoice]:
    return (
        Invoice.objects.filter(project=project)
        .exclude(status=InvoiceStatus.CANCELLED)
        .prefetch_related("tax_lines")
        .order_by("pk")
    )


def milestone_states(
    project: Project, invoices: Iterable[Invoice]
) -> tuple[list[MilestoneState], Bases]:
    """The project's milestones as the arithmetic reads them, and what live invoices
    without a milestone bill."""
    milestones = milestones_of(project)
    shares = milestone_bases(project, milestones)
    billed: dict[int, Bases] = {}
    elsewhere: dict[Any, Money] = {}
    ids = {m.pk for m in milestones}
    # It bills back retainage its milestone invoices withheld (and counted in full): no
    # share of the contract, so no rate of a retainage release to keep or credit.
    counted = [i for i in invoices if i.invoice_type != InvoiceType.RETAINAGE_RELEASE]
    credited = credited_bases_of(counted)  # one query, not one per invoice
    for invoice in counted:
        bases = billed_bases(invoice, credited[invoice.pk])  # net of its credit notes
        if invoice.milestone_id in ids:
            billed[invoice.milestone_id] = bases
        else:
            for rate, amount in bases.items():
                elsewhere[rate] = elsewhere.get(rate, Money.zero(project.currency)) + amount
    states = [
        MilestoneState(
            id=m.pk,
            title=m.title,
            is_billable=m.is_billable,
            percentage=m.billing_percentage,
            pending=m.status == MilestoneStatus.PENDING,
            share=shares[m.pk],
            invoiced=billed.get(m.pk),
        )
        for m in milestones
    ]
    return states, elsewhere


def schedule_changes(change_order: ChangeOrder) -> list[ScheduleChange]:
    return [
        ScheduleChange(
            milestone_id=item.milestone_id,
            title=item.title,
            is_billable=item.is_billable,
            percentage=item.billing_percentage,
            remove=item.remove,
        )
        for item in change_order.schedule_items.all()
    ]


def new_bases(project: Project, lines: list[ContractLine]) -> Bases:
    return contract_bases(
        ((line.rate, Money(line.line_total, project.currency)) for line in lines),
        currency=project.currency,
    )


def preview_with(
    project: Project, change_order: ChangeOrder, invoices: Iterable[Invoice]
) -> Preview:
    states, elsewhere = milestone_states(project, invoices)
    return amend(
        currency=project.currency,
        before=project_bases(project),
        after=new_bases(project, contract_lines(project, change_order)),
        milestones=states,
        changes=schedule_changes(change_order),
        invoiced_elsewhere=elsewhere,
    )


def change_order_preview(change_order: ChangeOrder) -> Preview:
    """What approving the change order would do now; an approved one shows what its
    approval did (stored, as the contract has moved on since)."""
    if change_order.status == ChangeOrderStatus.APPROVED and change_order.approved_preview:
        return preview_from_json(change_order.approved_preview)
    project = change_order.project
    return preview_with(project, change_order, live_invoices(project))


# --- a preview kept with the approval ---------------------------------------------------


def preview_to_json(preview: Preview) -> dict[str, Any]:
    return {
        "currency": preview.currency,
        "before": bases_to_rows(preview.before),
        "after": bases_to_rows(preview.after),
        "rows": [
            {
                "milestone_id": row.milestone_id,
                "title": row.title,
                "is_billable": row.is_billable,
                "percentage": None if row.percentage is None else str(row.percentage),
                "invoiced": row.invoiced,
                "removed": row.removed,
                "before": bases_to_rows(row.before),
                "after": bases_to_rows(row.after),
            }
            for row in preview.rows
        ],
    }


def preview_from_json(data: dict[str, Any]) -> Preview:
    currency = data["currency"]
    return Preview(
        currency=currency,
        before=bases_from_rows(data["before"], currency=currency),
        after=bases_from_rows(data["after"], currency=currency),
        rows=[
            PreviewRow(
                milestone_id=row["milestone_id"],
                title=row["title"],
                is_billable=row["is_billable"],
                percentage=None if row["percentage"] is None else Decimal(row["percentage"]),
                invoiced=row["invoiced"],
                removed=row["removed"],
                before=bases_from_rows(row["before"], currency=currency),
                after=bases_from_rows(row["after"], currency=currency),
            )
            for row in data["rows"]
        ],
    )


# --- the contract's history -------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    number: int
    change_order: ChangeOrder | None  # None: version 1, the accepted quote
    total: Money
    lines: list[ContractLine]
    changes: list[str]


def line_changes(before: list[ContractLine], after: list[ContractLine], currency: str) -> list[str]:
    """What a version changed, line by line (matched by description), in sentences."""
    old = {line.description: line for line in before}
    new = {line.description: line for line in after}
    changes = []
    for description, line in new.items():
        total = Money(line.line_total, currency)
        if description not in old:
            changes.append(f"Added “{description}” ({total})")
        elif old[description].line_total != line.line_total or old[description].rate != line.rate:
            changes.append(
                f"Changed “{description}” from {Money(old[description].line_total, currency)} "
                f"to {total}"
            )
    changes += [f"Removed “{d}”" for d in old if d not in new]
    return changes


def contract_history(project: Project) -> list[Version]:
    """Every version of the contract, oldest first: the quote, then each approved change
    order with what it changed."""
    approved = list(
        project.change_orders.filter(status=ChangeOrderStatus.APPROVED)
        .select_related("approved_by")
        .prefetch_related("lines")
        .order_by("contract_version")
    )
    currency = project.currency
    lines = contract_lines(project, None)
    versions = [
        Version(
            1,
            None,
            basis_total(new_bases(project, lines), currency=currency)
            if lines
            else Money(project.contract_total, currency),
            lines,
            [],
        )
    ]
    for order in approved:
        after = contract_lines(project, order)
        versions.append(
            Version(
                order.contract_version or len(versions) + 1,
                order,
                basis_total(new_bases(project, after), currency=currency),
                after,
                line_changes(versions[-1].lines, after, currency),
            )
        )
    return versions
