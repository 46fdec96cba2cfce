"""The JSON shapes of change orders: what staff send (the whole set of contract lines,
the schedule rows), what staff read, the customer's allow-listed shape (no staff
identities, no address recorded), and a preview."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from ninja import Schema
from pydantic import Field

from tranche.core.money import Money
from tranche.core.schemas import (
    Flag,
    Id,
    Input,
    MoneyIn,
    OptionalText200,
    Percentage,
    Quantity,
    Text200,
    Text500,
)
from tranche.core.tax import Bases
from tranche.projects.amendment import Preview
from tranche.projects.models import ChangeOrder

Summary = Annotated[str, Field(max_length=5000)]


class ChangeOrderLineIn(Input):
    description: Text500
    quantity: Quantity
    unit_price: MoneyIn
    # A tax rate offered now; none: the line carries no tax.
    tax_rate_id: Id | None = None


class ScheduleRowIn(Input):
    """A milestone not yet invoiced (`milestone_id`) as it should be, or removed; or a new
    milestone (no id). Percentages of the milestones not yet invoiced are weights: the
    part of the contract not yet invoiced is shared in proportion to them."""

    milestone_id: Id | None = None
    title: OptionalText200 = ""
    is_billable: Flag = False
    billing_percentage: Percentage | None = None
    remove: Flag = False


class ChangeOrderIn(Input):
    title: Text200
    summary: Summary = ""
    # Omitted: the contract's current lines (a change order always holds all of them).
    lines: list[ChangeOrderLineIn] | None = Field(None, max_length=200)
    schedule: list[ScheduleRowIn] = Field(default_factory=list, max_length=200)


class ChangeOrderPatch(Input):
    title: Text200 | None = None
    summary: Summary | None = None
    lines: list[ChangeOrderLineIn] | None = Field(None, max_length=200)
    schedule: list[ScheduleRowIn] | None = Field(None, max_length=200)


class ApproveIn(Input):
    """A customer signs with their full name and ticks the box; staff recording an
    approval on the customer's behalf send neither. `issue_credit_note` (staff only): a
    change order lowering the contract below what was invoiced is approved with credit
    notes for the difference."""

    name: Annotated[str, Field(max_length=200)] = ""
    agreed: Flag = False
    issue_credit_note: Flag = False


class DeclineIn(Input):
    reason: Annotated[str, Field(max_length=2000)] = ""


class ContractLineOut(Schema):
    description: str
    quantity: Decimal
    unit_price: str
    line_total: str
    tax_rate_id: int | None
    tax_name: str
    tax_percentage: Decimal


class ScheduleRowOut(Schema):
    milestone_id: int | None
    title: str
    is_billable: bool
    billing_percentage: Decimal | None
    remove: bool


class CustomerChangeOrderOut(Schema):
    id: int
    project_id: int
    reference: str
    status: str
    title: str
    summary: str
    lines: list[ContractLineOut]
    schedule: list[ScheduleRowOut]
    contract_total: str  # the total of its lines (the contract's once approved)
    sent_at: datetime | None
    approved_at: datetime | None
    approved_name: str
    on_behalf: bool  # approved by staff for the customer
    declined_at: datetime | None
    decline_reason: str
    contract_version: int | None

    @staticmethod
    def fields_of(order: ChangeOrder) -> dict[str, Any]:
        currency = order.project.currency
        lines = list(order.lines.all())
        return {
            "id": order.pk,
            "project_id": order.project_id,
            "reference": order.reference,
            "status": order.status,
            "title": order.title,
            "summary": order.summary,
            "lines": [
                ContractLineOut(
                    description=line.description,
                    quantity=line.quantity,
                    unit_price=Money(line.unit_price, currency).api,
                    line_total=Money(line.line_total, currency).api,
                    tax_rate_id=line.tax_rate_id,
                    tax_name=line.tax_name,
                    tax_percentage=line.tax_percentage,
                )
                for line in lines
            ],
            "schedule": [
                ScheduleRowOut(
                    milestone_id=item.milestone_id,
                    title=item.title,
                    is_billable=item.is_billable,
                    billing_percentage=item.billing_percentage,
                    remove=item.remove,
                )
                for item in order.schedule_items.all()
            ],
            "contract_total": Money(sum((x.line_total for x in lines), Decimal(0)), currency).api,
            "sent_at": order.sent_at,
            "approved_at": order.approved_at,
            "approved_name": order.approved_name,
            "on_behalf": order.approved_at is not None and not order.approved_name,
            "declined_at": order.declined_at,
            "decline_reason": order.decline_reason,
            "contract_version": order.contract_version,
        }

    @staticmethod
    def of(order: ChangeOrder) -> CustomerChangeOrderOut:
        return CustomerChangeOrderOut(**CustomerChangeOrderOut.fields_of(order))


class ChangeOrderOut(CustomerChangeOrderOut):
    created_at: datetime
    created_by: str
    approved_by: str | None
    approved_ip: str | None

    @staticmethod
    def of(order: ChangeOrder) -> ChangeOrderOut:
        return ChangeOrderOut(
            **CustomerChangeOrderOut.fields_of(order),
            created_at=order.created_at,
            created_by=order.created_by.email,
            approved_by=order.approved_by.email if order.approved_by else None,
            approved_ip=order.approved_ip,
        )


class ChangeOrderList(Schema):
    items: list[ChangeOrderOut]


class CustomerChangeOrderList(Schema):
    items: list[CustomerChangeOrderOut]


class BasisOut(Schema):
    tax_name: str
    tax_percentage: Decimal
    amount: str


def bases_out(bases: Bases) -> list[BasisOut]:
    return [
        BasisOut(tax_name=rate.name, tax_percentage=rate.percentage, amount=amount.api)
        for rate, amount in bases.items()
    ]


class PreviewMilestoneOut(Schema):
    milestone_id: int | None  # null: a milestone the change order adds
    title: str
    is_billable: bool
    invoiced: bool  # keeps what its invoice bills
    removed: bool
    before: str
    after: str
    after_bases: list[BasisOut]


class ProblemOut(Schema):
    code: str
    detail: str


class PreviewOut(Schema):
    currency: str
    contract_before: str
    contract_after: str
    bases_before: list[BasisOut]
    bases_after: list[BasisOut]
    # Per rate, how much more was invoiced than the amended contract allows.
    shortfall: list[BasisOut]
    milestones: list[PreviewMilestoneOut]
    problems: list[ProblemOut]

    @staticmethod
    def of(preview: Preview) -> PreviewOut:
        currency = preview.currency
        return PreviewOut(
            currency=currency,
            contract_before=preview.before_total.api,
            contract_after=preview.after_total.api,
            bases_before=bases_out(preview.before),
            bases_after=bases_out(preview.after),
            shortfall=bases_out(preview.shortfall),
            milestones=[
                PreviewMilestoneOut(
                    milestone_id=row.milestone_id,
                    title=row.title,
                    is_billable=row.is_billable,
                    invoiced=row.invoiced,
                    removed=row.removed,
                    before=row.before_total(currency).api,
                    after=row.after_total(currency).api,
                    after_bases=bases_out(row.after),
                )
                for row in preview.rows
            ],
            problems=[ProblemOut(code=p.code, detail=p.detail) for p in preview.problems],
        )
