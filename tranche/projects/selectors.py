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
from tranche.projects.contract import milestone_amounts
from tranche.projects.models import Milestone, Project


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
