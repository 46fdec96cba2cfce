from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from tranche.accounts.access import require_admin, require_staff
from tranche.accounts.auth import actor
from tranche.billing.schemas import InvoiceOut
from tranche.core.errors import Invalid
from tranche.core.schemas import PageParams
from tranche.projects import selectors, services
from tranche.projects.models import Project
from tranche.projects.schemas import (
    CompletionOut,
    MilestoneIn,
    MilestoneList,
    MilestoneOut,
    MilestonePatch,
    ProjectOut,
    ProjectPage,
    milestones_out,
)

router = Router(tags=["projects"])


def _milestone_out(project: Project, milestone_id: int) -> MilestoneOut:
    """A milestone as the API shows it: its amount depends on the whole schedule."""
    return next(
        m for m in milestones_out(selectors.project_detail(project)) if m.id == milestone_id
    )


@router.get("", response=ProjectPage)
def list_projects(request: HttpRequest, page: Query[PageParams]) -> ProjectPage:
    projects = selectors.project_list(user=actor(request))
    items = list(projects[page.offset : page.offset + page.limit])
    return ProjectPage(
        items=[ProjectOut.of(d) for d in selectors.project_details(items)], count=projects.count()
    )


@router.get("/{project_id}", response=ProjectOut)
def get_project(request: HttpRequest, project_id: int) -> ProjectOut:
    project = selectors.access_project(actor(request), project_id)
    return ProjectOut.of(selectors.project_detail(project))


@router.get("/{project_id}/milestones", response=MilestoneList)
def list_milestones(request: HttpRequest, project_id: int) -> MilestoneList:
    project = selectors.access_project(actor(request), project_id)
    return MilestoneList(items=milestones_out(selectors.project_detail(project)))


@router.post("/{project_id}/milestones", response={201: MilestoneOut})
def create_milestone(
    request: HttpRequest, project_id: int, payload: MilestoneIn
) -> Status[MilestoneOut]:
    user = actor(request)
    require_staff(user)
    project = selectors.access_project(user, project_id)
    milestone = services.milestone_create(actor=user, project_id=project.pk, **payload.model_dump())
    return Status(201, _milestone_out(project, milestone.pk))


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
    return _milestone_out(project, milestone_id)


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
        milestone=_milestone_out(project, milestone_id),
        draft_invoice=InvoiceOut.of(done.invoice) if done.invoice else None,
    )


@router.patch("/{project_id}/milestones/{milestone_id}/reopen", response=MilestoneOut)
def reopen_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> MilestoneOut:
    user = actor(request)
    require_admin(user)
    project = selectors.access_project(user, project_id)
    services.milestone_reopen(actor=user, project_id=project.pk, milestone_id=milestone_id)
    return _milestone_out(project, milestone_id)
