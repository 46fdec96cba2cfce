"""Every /api/projects endpoint, and quote acceptance: projects as the portal shows them
(each milestone with its invoice), the schedule's writes, completing and reopening
milestones (which make and cancel drafts), accepting a quote (which makes the project).

They live in billing, the lowest app that knows both projects and invoices: one router
must serve a path for all its methods, and the milestones list shows invoices. The
handlers stay thin: the writes are projects' and billing's services."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from tranche.accounts.access import require_admin, require_staff
from tranche.accounts.auth import actor
from tranche.accounts.models import User
from tranche.billing.schemas import (
    AcceptOut,
    CompletionOut,
    CustomerMilestoneList,
    CustomerProjectOut,
    CustomerProjectPage,
    InvoiceOut,
    MilestoneList,
    MilestoneOut,
    ProjectOut,
    ProjectPage,
    ProjectPatch,
    customer_milestones_out,
    milestones_out,
)
from tranche.billing.selectors import project_view, project_views
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.drafts import milestone_complete, milestone_reopen
from tranche.billing.services.retainage import retainage_release
from tranche.billing.services.schedule import milestone_delete, milestone_update
from tranche.core.errors import Invalid
from tranche.core.schemas import PageParams
from tranche.projects.models import Project
from tranche.projects.schemas import MilestoneIn, MilestonePatch
from tranche.projects.selectors import access_project, project_list
from tranche.projects.services import milestone_create, project_set_retainage
from tranche.sales.selectors import access_quote

router = Router(tags=["projects"])
quotes_router = Router(tags=["quotes"])


def _milestone_out(user: User, project: Project, milestone_id: int) -> MilestoneOut:
    """A milestone as the API shows staff: its amount depends on the whole schedule."""
    return next(m for m in milestones_out(project_view(project, user=user)) if m.id == milestone_id)


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
    projects = project_list(user=user)
    items = list(projects[page.offset : page.offset + page.limit])
    views = project_views(items, user=user)
    if not user.is_staff_member:
        return CustomerProjectPage(
            items=[CustomerProjectOut.of(v) for v in views], count=projects.count()
        )
    return ProjectPage(items=[ProjectOut.of(v) for v in views], count=projects.count())


@router.get(
    "/{project_id}",
    response=ProjectOut | CustomerProjectOut,
    description="Staff get `ProjectOut`; a customer gets `CustomerProjectOut`.",
)
def get_project(request: HttpRequest, project_id: int) -> ProjectOut | CustomerProjectOut:
    user = actor(request)
    view = project_view(access_project(user, project_id), user=user)
    if not user.is_staff_member:
        return CustomerProjectOut.of(view)
    return ProjectOut.of(view)


@router.patch("/{project_id}", response=ProjectOut)
def update_project(request: HttpRequest, project_id: int, payload: ProjectPatch) -> ProjectOut:
    """Admins set the retainage withheld on the milestone invoices made from now on."""
    user = actor(request)
    require_admin(user)
    project = access_project(user, project_id)
    project_set_retainage(
        actor=user, project_id=project.pk, percentage=payload.retainage_percentage
    )
    project.refresh_from_db()
    return ProjectOut.of(project_view(project, user=user))


@router.post("/{project_id}/retainage/release", response={201: InvoiceOut})
def release_retainage(request: HttpRequest, project_id: int) -> Status[InvoiceOut]:
    """Staff release the retainage held early: a draft release invoice for all of it."""
    user = actor(request)
    require_staff(user)
    project = access_project(user, project_id)
    return Status(201, InvoiceOut.of(retainage_release(actor=user, project_id=project.pk)))


@router.get(
    "/{project_id}/milestones",
    response=MilestoneList | CustomerMilestoneList,
    description="Staff get `MilestoneList`; a customer gets `CustomerMilestoneList`.",
)
def list_milestones(request: HttpRequest, project_id: int) -> MilestoneList | CustomerMilestoneList:
    user = actor(request)
    view = project_view(access_project(user, project_id), user=user)
    if not user.is_staff_member:
        return CustomerMilestoneList(items=customer_milestones_out(view))
    return MilestoneList(items=milestones_out(view))


@router.post("/{project_id}/milestones", response={201: MilestoneOut})
def create_milestone(
    request: HttpRequest, project_id: int, payload: MilestoneIn
) -> Status[MilestoneOut]:
    user = actor(request)
    require_staff(user)
    project = access_project(user, project_id)
    milestone = milestone_create(actor=user, project_id=project.pk, **payload.model_dump())
    return Status(201, _milestone_out(user, project, milestone.pk))


@router.patch("/{project_id}/milestones/{milestone_id}", response=MilestoneOut)
def update_milestone(
    request: HttpRequest, project_id: int, milestone_id: int, payload: MilestonePatch
) -> MilestoneOut:
    user = actor(request)
    require_staff(user)
    project = access_project(user, project_id)
    changes: dict[str, Any] = payload.model_dump(exclude_unset=True)
    for field in ("title", "is_billable", "position"):
        if field in changes and changes[field] is None:
            raise Invalid(f"{field} cannot be null.", code="null_not_allowed")
    milestone_update(actor=user, project_id=project.pk, milestone_id=milestone_id, **changes)
    return _milestone_out(user, project, milestone_id)


@router.delete("/{project_id}/milestones/{milestone_id}", response={204: None})
def delete_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> Status[None]:
    user = actor(request)
    require_staff(user)
    project = access_project(user, project_id)
    milestone_delete(actor=user, project_id=project.pk, milestone_id=milestone_id)
    return Status(204, None)


@router.patch("/{project_id}/milestones/{milestone_id}/complete", response=CompletionOut)
def complete_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> CompletionOut:
    user = actor(request)
    require_staff(user)
    # The service's lock is the access check (the same 404 as access_project), and the
    # completion carries all the answer shows: nothing is read again after the commit.
    done = milestone_complete(actor=user, project_id=project_id, milestone_id=milestone_id)
    return CompletionOut(
        message=(
            "Milestone was already completed."
            if done.already_completed
            else "Milestone completed successfully."
        ),
        milestone=MilestoneOut.of(
            done.milestone,
            amount=done.amount,
            invoice_id=done.invoice.pk if done.invoice else None,
        ),
        draft_invoice=InvoiceOut.of(done.invoice) if done.invoice else None,
    )


@router.patch("/{project_id}/milestones/{milestone_id}/reopen", response=MilestoneOut)
def reopen_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> MilestoneOut:
    user = actor(request)
    require_admin(user)
    project = access_project(user, project_id)
    milestone_reopen(actor=user, project_id=project.pk, milestone_id=milestone_id)
    return _milestone_out(user, project, milestone_id)


@quotes_router.post("/{quote_id}/accept", response={201: AcceptOut})
def accept_quote(request: HttpRequest, quote_id: int) -> Status[AcceptOut]:
    user = actor(request)
    require_staff(user)
    quote = access_quote(user, quote_id)
    project = quote_accept(actor=user, quote_id=quote.pk)
    deposits = project.invoices.filter(milestone__bill_on_acceptance=True).order_by("pk")
    return Status(
        201,
        AcceptOut(
            project=ProjectOut.of(project_view(project, user=user)),
            deposit_invoices=[InvoiceOut.of(invoice) for invoice in deposits],
        ),
    )
