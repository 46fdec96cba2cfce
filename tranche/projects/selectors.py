"""Reads for projects and milestones, scoped to the caller."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from tranche.accounts.access import customer_scope
from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.selectors import invoice_queryset
from tranche.core.db import valid_id
from tranche.core.errors import NotFound
from tranche.core.money import ZERO, allocate
from tranche.projects.models import Milestone, Project


@dataclass(frozen=True)
class ProjectDetail:
    project: Project
    milestones: list[Milestone]
    amounts: dict[int, Decimal]
    # milestone id -> id of its live (not cancelled) invoice, if the viewer may see it
    invoices: dict[int, int]


def live_invoice(milestone: Milestone) -> Invoice | None:
    return milestone.invoices.exclude(status=InvoiceStatus.CANCELLED).first()


def _live_invoice_ids(milestones: list[Milestone], *, user: User) -> dict[int, int]:
    """Only invoices `user` may open: a customer is not told a draft exists."""
    rows = (
        invoice_queryset(user=user)
        .filter(milestone__in=milestones)
        .exclude(status=InvoiceStatus.CANCELLED)
        .values_list("milestone_id", "pk")
    )
    return {milestone_id: pk for milestone_id, pk in rows if milestone_id is not None}


def project_list(*, user: User) -> QuerySet[Project]:
    projects = Project.objects.select_related("customer")
    scope = customer_scope(user)
    return projects if scope is None else projects.filter(customer_id=scope)


def access_project(user: User, project_id: int) -> Project:
    project = (
        project_list(user=user).filter(pk=project_id).first() if valid_id(project_id) else None
    )
    if project is None:
        raise NotFound(f"Project {project_id} does not exist.", code="project_not_found")
    return project


def milestone_amounts(project: Project, milestones: list[Milestone]) -> dict[int, Decimal]:
    """Each milestone's share of the contract total.

    The whole billable schedule is allocated at once, so the parts sum exactly to the
    contract total (less any unscheduled share) and no cent is lost to rounding."""
    billable = [m for m in milestones if m.is_billable and m.billing_percentage]
    parts = allocate(
        project.contract_total, [m.billing_percentage or ZERO for m in billable], project.currency
    )
    amounts = {m.pk: ZERO for m in milestones}
    amounts.update({m.pk: part for m, part in zip(billable, parts, strict=False)})
    return amounts


def project_detail(project: Project, *, user: User) -> ProjectDetail:
    milestones = list(project.milestones.order_by("position", "id"))
    return ProjectDetail(
        project,
        milestones,
        milestone_amounts(project, milestones),
        _live_invoice_ids(milestones, user=user),
    )


def project_details(projects: list[Project], *, user: User) -> list[ProjectDetail]:
    """Details of many projects with one milestone query."""
    by_project: dict[int, list[Milestone]] = {p.pk: [] for p in projects}
    all_milestones = list(Milestone.objects.filter(project__in=projects).order_by("position", "id"))
    for milestone in all_milestones:
        by_project[milestone.project_id].append(milestone)
    invoices = _live_invoice_ids(all_milestones, user=user)
    return [
        ProjectDetail(p, by_project[p.pk], milestone_amounts(p, by_project[p.pk]), invoices)
        for p in projects
    ]
