"""Reads for projects and milestones, scoped to the caller."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, QuerySet

from tranche.accounts.access import customer_scope
from tranche.accounts.models import User
from tranche.core.db import valid_id
from tranche.core.errors import NotFound
from tranche.core.money import Money
from tranche.core.tax import TaxRate
from tranche.projects.contract import milestone_amounts
from tranche.projects.models import (
    ChangeOrder,
    ChangeOrderEvent,
    ChangeOrderStatus,
    Milestone,
    Project,
    ProjectEvent,
)


@dataclass(frozen=True)
class ProjectDetail:
    project: Project
    milestones: list[Milestone]
    amounts: dict[int, Decimal]

    def amount_of(self, milestone: Milestone) -> Money:
        """The milestone's share of the contract, in the project's currency."""
        return Money(self.amounts[milestone.pk], self.project.currency)


def project_list(*, user: User, search: str = "") -> QuerySet[Project]:
    """The projects this user may see, newest first; `search` matches the project's or
    the customer's name."""
    projects = Project.objects.select_related("customer")
    scope = customer_scope(user)
    if scope is not None:
        projects = projects.filter(customer_id=scope)
    search = search.strip()
    if search:
        projects = projects.filter(Q(name__icontains=search) | Q(customer__name__icontains=search))
    return projects


def access_project(user: User, project_id: int) -> Project:
    project = (
        project_list(user=user).filter(pk=project_id).first() if valid_id(project_id) else None
    )
    if project is None:
        raise NotFound(f"Project {project_id} does not exist.", code="project_not_found")
    return project


def milestones_of(project: Project) -> list[Milestone]:
    return list(project.milestones.order_by("position", "id"))


def find_milestone(milestones: list[Milestone], milestone_id: int, project: Project) -> Milestone:
    for milestone in milestones:
        if milestone.pk == milestone_id:
            return milestone
    raise NotFound(
        f"Milestone {milestone_id} does not exist in project {project.pk}.",
        code="milestone_not_found",
    )


def project_detail(project: Project) -> ProjectDetail:
    milestones = milestones_of(project)
    return ProjectDetail(project, milestones, milestone_amounts(project, milestones))


def project_details(projects: list[Project]) -> list[ProjectDetail]:
    """Details of many projects with one milestone query."""
    by_project: dict[int, list[Milestone]] = {p.pk: [] for p in projects}
    all_milestones = list(Milestone.objects.filter(project__in=projects).order_by("position", "id"))
    for milestone in all_milestones:
        by_project[milestone.project_id].append(milestone)
    return [
        ProjectDetail(p, by_project[p.pk], milestone_amounts(p, by_project[p.pk])) for p in projects
    ]


# --- the contract and its change orders ---------------------------------------------------


@dataclass(frozen=True)
class ContractLine:
    """A line of the contract as it stands: the quote's, or an approved change order's."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    line_total: Decimal
    tax_rate_id: int | None
    tax_name: str
    tax_percentage: Decimal

    @property
    def rate(self) -> TaxRate:
        return TaxRate(self.tax_name, self.tax_percentage)


def current_change_order(project: Project) -> ChangeOrder | None:
    """The approved change order that made the contract's current version, if any."""
    return (
        project.change_orders.filter(status=ChangeOrderStatus.APPROVED)
        .order_by("-contract_version")
        .first()
    )


def contract_lines(project: Project, change_order: ChangeOrder | None) -> list[ContractLine]:
    """The lines of one version: the origin quote's (no change order) or the change
    order's."""
    source = (
        change_order.lines.all()
        if change_order is not None
        else (project.origin_quote.lines.all() if project.origin_quote is not None else [])
    )
    return [
        ContractLine(
            line.description,
            line.quantity,
            line.unit_price,
            line.line_total,
            line.tax_rate_id,
            line.tax_name,
            line.tax_percentage,
        )
        for line in source
    ]


def current_lines(project: Project) -> list[ContractLine]:
    """The contract's lines now: the origin quote's until the first approved change
    order, then the last approved change order's."""
    return contract_lines(project, current_change_order(project))


def change_order_list(*, user: User, project: Project) -> QuerySet[ChangeOrder]:
    """A project's change orders, oldest first; a customer never sees drafts."""
    orders = project.change_orders.select_related("approved_by", "created_by")
    if not user.is_staff_member:
        orders = orders.exclude(status=ChangeOrderStatus.DRAFT)
    return orders.order_by("number")


def access_change_order(user: User, change_order_id: int) -> ChangeOrder:
    """A change order `user` may see (a customer: their own project's, not a draft)."""
    order = None
    if valid_id(change_order_id):
        order = (
            ChangeOrder.objects.select_related("project", "project__customer")
            .filter(pk=change_order_id)
            .first()
        )
    scope = customer_scope(user)
    if (
        order is not None
        and scope is not None
        and (order.project.customer_id != scope or order.status == ChangeOrderStatus.DRAFT)
    ):
        order = None
    if order is None:
        raise NotFound(
            f"Change order {change_order_id} does not exist.", code="change_order_not_found"
        )
    return order


def project_events(project: Project) -> QuerySet[ProjectEvent]:
    """The audit trail of the project's own terms (staff only: the caller checks)."""
    return project.events.select_related("actor").order_by("-at", "-id")


def change_order_events(project: Project) -> QuerySet[ChangeOrderEvent]:
    """The audit trail of the project's change orders (staff only: the caller checks)."""
    return (
        ChangeOrderEvent.objects.filter(change_order__project=project)
        .select_related("actor", "change_order", "change_order__project")
        .order_by("-at", "-id")
    )
