from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from tranche.accounts.access import require_admin, require_staff
from tranche.accounts.auth import actor
from tranche.accounts.models import User
from tranche.billing.schemas import InvoiceOut
from tranche.core.errors import Invalid
from tranche.core.schemas import PageParams
from tranche.projects import selectors, services
from tranche.projects.models import Project
from tranche.projects.schemas import (
    CompletionOut,
    CustomerMilestoneList,
    CustomerProjectOut,
    CustomerProjectPage,
    MilestoneIn,
    MilestoneList,
    MilestoneOut,
    MilestonePatch,
    ProjectOut,
    ProjectPage,
    customer_milestones_out,
    milestones_out,
)

router = Router(tags=["projects"])


def _milestone_out(user: User, project: Project, milestone_id: int) -> MilestoneOut:
    """A milestone as the API shows staff: its amount depends on the whole schedule."""
    detail = selectors.project_detail(project, user=user)
    return next(m for m in milestones_out(detail) if m.id == milestone_id)


# Reads a customer can reach answer in the staff shape or the customer's allow-listed one
# (DESIGN.md rule 15), chosen by the caller's role.


@router.get(
    "",
    response=ProjectPage | CustomerProjectPage,
    description="Staff get `ProjectPage`; a customer gets `CustomerProjectPage`.",
)
def list_projects(
    request: HttpRequest, page: Query[PageParams]
) -> ProjectPage | CustomerProjectPage:
    user = actor(request)
    projects = selectors.project_list(user=user)
    items = list(projects[page.offset : page.offset + page.limit])
    details = selectors.project_details(items, user=user)
    if not user.is_staff_member:
        return CustomerProjectPage(
            items=[CustomerProjectOut.of(d) for d in details], count=projects.count()
        )
    return ProjectPage(items=[ProjectOut.of(d) for d in details], count=projects.count())


@router.get(
    "/{project_id}",
    response=ProjectOut | CustomerProjectOut,
    description="Staff get `ProjectOut`; a customer gets `CustomerProjectOut`.",
)
def get_project(request: HttpRequest, project_id: int) -> ProjectOut | CustomerProjectOut:
    user = actor(request)
    detail = selectors.project_detail(selectors.access_project(user, project_id), user=user)
    if not user.is_staff_member:
        return CustomerProjectOut.of(detail)
    return ProjectOut.of(detail)


@router.get(
    "/{project_id}/milestones",
    response=MilestoneList | CustomerMilestoneList,
    description="Staff get `MilestoneList`; a customer gets `CustomerMilestoneList`.",
)
def list_milestones(request: HttpRequest, project_id: int) -> MilestoneList | CustomerMilestoneList:
    user = actor(request)
    detail = selectors.project_detail(selectors.access_project(user, project_id), user=user)
    if not user.is_staff_member:
        return CustomerMilestoneList(items=customer_milestones_out(detail))
    return MilestoneList(items=milestones_out(detail))


@router.post("/{project_id}/milestones", response={201: MilestoneOut})
def create_milestone(
    request: HttpRequest, project_id: int, payload: MilestoneIn
) -> Status[MilestoneOut]:
    user = actor(request)
    require_staff(user)
    project = selectors.access_project(user, project_id)
    milestone = services.milestone_create(actor=user, project_id=project.pk, **payload.model_dump())
    return Status(201, _milestone_out(user, project, milestone.pk))


@router.patch("/{project_id}/milestones/{milestone_id}", response=MilestoneOut)
def update_milestone(
    request: HttpRequest, project_id: int, milestone_id: int, payload: MilestonePatch
) -> MilestoneOut:
    user = actor(request)
    require_staff(user)
    project = selectors.access_project(user, project_id)
    changes: dict[str, Any] = payload.model_dump(exclude_unset=True)
    for field in ("title", "is_billable", "position"):
        if field in changes and changes[field] is None:
            raise Invalid(f"{field} cannot be null.", code="null_not_allowed")
    services.milestone_update(
        actor=user, project_id=project.pk, milestone_id=milestone_id, **changes
    )
    return _milestone_out(user, project, milestone_id)


@router.delete("/{project_id}/milestones/{milestone_id}", response={204: None})
def delete_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> Status[None]:
    user = actor(request)
    require_staff(user)
    project = selectors.access_project(user, project_id)
    services.milestone_delete(actor=user, project_id=project.pk, milestone_id=milestone_id)
    return Status(204, None)


@router.patch("/{project_id}/milestones/{milestone_id}/complete", response=CompletionOut)
def complete_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> CompletionOut:
    user = actor(request)
    require_staff(user)
    project = selectors.access_project(user, project_id)
    done = services.milestone_complete(actor=user, project_id=project.pk, milestone_id=milestone_id)
    return CompletionOut(
        message=(
            "Milestone was already completed."
            if done.already_completed
            else "Milestone completed successfully."
        ),
        milestone=_milestone_out(user, project, milestone_id),
        draft_invoice=InvoiceOut.of(done.invoice) if done.invoice else None,
    )


@router.patch("/{project_id}/milestones/{milestone_id}/reopen", response=MilestoneOut)
def reopen_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> MilestoneOut:
    user = actor(request)
    require_admin(user)
    project = selectors.access_project(user, project_id)
    services.milestone_reopen(actor=user, project_id=project.pk, milestone_id=milestone_id)
    return _milestone_out(user, project, milestone_id)
