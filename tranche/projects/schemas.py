from __future__ import annotations

from datetime import date, datetime

from ninja import Schema

from tranche.core.money import ZERO, Money
from tranche.core.schemas import Input, Percentage, PlannedDate, Position, Text200
from tranche.projects.models import Milestone
from tranche.projects.selectors import ProjectDetail
from tranche.sales.schemas import format_percentage


class MilestoneOut(Schema):
    id: int
    project_id: int
    title: str
    position: int
    status: str
    is_billable: bool
    billing_percentage: str | None
    amount: str
    planned_date: date | None
    actual_date: date | None
    completed_at: datetime | None
    completed_by_id: int | None
    invoice_id: int | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def of(milestone: Milestone, *, amount: Money, invoice_id: int | None) -> MilestoneOut:
        return MilestoneOut(
            id=milestone.pk,
            project_id=milestone.project_id,
            title=milestone.title,
            position=milestone.position,
            status=milestone.status,
            is_billable=milestone.is_billable,
            billing_percentage=format_percentage(milestone.billing_percentage),
            amount=amount.api,
            planned_date=milestone.planned_date,
            actual_date=milestone.actual_date,
            completed_at=milestone.completed_at,
            completed_by_id=milestone.completed_by_id,
            invoice_id=invoice_id,
            created_at=milestone.created_at,
            updated_at=milestone.updated_at,
        )


def milestone_amount(detail: ProjectDetail, milestone: Milestone) -> Money:
    """The milestone's share of the contract, as Money in the project's currency."""
    return Money(detail.amounts[milestone.pk], detail.project.currency)


def milestones_out(detail: ProjectDetail) -> list[MilestoneOut]:
    return [
        MilestoneOut.of(m, amount=milestone_amount(detail, m), invoice_id=detail.invoices.get(m.pk))
        for m in detail.milestones
    ]


class ProjectOut(Schema):
    id: int
    name: str
    customer_id: int
    customer_name: str
    origin_quote_id: int | None
    currency: str
    contract_total: str
    billable_percentage: str
    created_at: datetime
    milestones: list[MilestoneOut]

    @staticmethod
    def of(detail: ProjectDetail) -> ProjectOut:
        project = detail.project
        billable = sum(
            (m.billing_percentage or ZERO for m in detail.milestones if m.is_billable), ZERO
        )
        return ProjectOut(
            id=project.pk,
            name=project.name,
            customer_id=project.customer_id,
            customer_name=project.customer.name,
            origin_quote_id=project.origin_quote_id,
            currency=project.currency,
            contract_total=project.contract.api,
            billable_percentage=f"{billable:.2f}",
            created_at=project.created_at,
            milestones=milestones_out(detail),
        )


class ProjectPage(Schema):
    items: list[ProjectOut]
    count: int


class MilestoneList(Schema):
    items: list[MilestoneOut]


class MilestoneIn(Input):
    title: Text200
    is_billable: bool = False
    billing_percentage: Percentage | None = None
    planned_date: PlannedDate | None = None
    position: Position | None = None


class MilestonePatch(Input):
    title: Text200 | None = None
    is_billable: bool | None = None
    billing_percentage: Percentage | None = None
    planned_date: PlannedDate | None = None
    position: Position | None = None


# --- what a customer sees ------------------------------------------------------------------
# Allow-listed like the billing customer shapes: no staff identities (completed_by_id), no
# internal bookkeeping, and a milestone's invoice id only when its invoice was sent to them
# (ProjectDetail.invoices is already scoped to the viewer).


class CustomerMilestoneOut(Schema):
    id: int
    project_id: int
    title: str
    position: int
    status: str
    is_billable: bool
    billing_percentage: str | None
    amount: str
    planned_date: date | None
    actual_date: date | None
    completed_at: datetime | None
    invoice_id: int | None

    @staticmethod
    def of(milestone: Milestone, *, amount: Money, invoice_id: int | None) -> CustomerMilestoneOut:
        return CustomerMilestoneOut(
            id=milestone.pk,
            project_id=milestone.project_id,
            title=milestone.title,
            position=milestone.position,
            status=milestone.status,
            is_billable=milestone.is_billable,
            billing_percentage=format_percentage(milestone.billing_percentage),
            amount=amount.api,
            planned_date=milestone.planned_date,
            actual_date=milestone.actual_date,
            completed_at=milestone.completed_at,
            invoice_id=invoice_id,
        )


def customer_milestones_out(detail: ProjectDetail) -> list[CustomerMilestoneOut]:
    return [
        CustomerMilestoneOut.of(
            m, amount=milestone_amount(detail, m), invoice_id=detail.invoices.get(m.pk)
        )
        for m in detail.milestones
    ]


class CustomerProjectOut(Schema):
    id: int
    name: str
    customer_id: int
    customer_name: str
    currency: str
    contract_total: str
    created_at: datetime
    milestones: list[CustomerMilestoneOut]

    @staticmethod
    def of(detail: ProjectDetail) -> CustomerProjectOut:
        project = detail.project
        return CustomerProjectOut(
            id=project.pk,
            name=project.name,
            customer_id=project.customer_id,
            customer_name=project.customer.name,
            currency=project.currency,
            contract_total=project.contract.api,
            created_at=project.created_at,
            milestones=customer_milestones_out(detail),
        )


class CustomerProjectPage(Schema):
    items: list[CustomerProjectOut]
    count: int


class CustomerMilestoneList(Schema):
    items: list[CustomerMilestoneOut]
