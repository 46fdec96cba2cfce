"""Projects: the list, one project's page, and its milestone actions."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from tranche.accounts.access import require_admin, require_staff
from tranche.accounts.models import User
from tranche.billing import selectors as billing
from tranche.billing.services.drafts import milestone_complete, milestone_reopen
from tranche.core.errors import DomainError, NotFound
from tranche.projects.selectors import (
    access_project,
    project_detail,
    project_details,
    project_list,
)
from tranche.web.views.common import act, page_of, search_of, user_of


@login_required
def projects(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    search = search_of(request)
    page = page_of(request, project_list(user=user, search=search))
    return render(
        request,
        "web/projects.html",
        {"details": project_details(list(page.object_list)), "page": page, "search": search},
    )


@login_required
def project(request: HttpRequest, project_id: int) -> HttpResponse:
    user = user_of(request)
    try:
        found = access_project(user, project_id)
    except NotFound:
        raise Http404("No such project.") from None
    invoices, summary = billing.project_invoices(user=user, project=found)
    return render(
        request,
        "web/project.html",
        {"detail": project_detail(found), "invoices": invoices, "summary": summary},
    )


def _milestone_action(
    request: HttpRequest,
    project_id: int,
    milestone_id: int,
    *,
    allowed: Callable[[User], None],
    service: Callable[..., object],
    success: str,
) -> HttpResponse:
    user = user_of(request)
    try:
        allowed(user)
        found = access_project(user, project_id)
    except DomainError:
        raise Http404("No such project.") from None
    act(
        request,
        lambda: service(actor=user, project_id=found.pk, milestone_id=milestone_id),
        success,
    )
    return redirect("project", project_id=found.pk)


@login_required
@require_POST
def complete_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    return _milestone_action(
        request,
        project_id,
        milestone_id,
        allowed=require_staff,
        service=milestone_complete,
        success="Milestone completed. A billable milestone now has a draft invoice to review.",
    )


@login_required
@require_POST
def reopen_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    return _milestone_action(
        request,
        project_id,
        milestone_id,
        allowed=require_admin,
        service=milestone_reopen,
        success="Milestone reopened.",
    )


urlpatterns = [
    path("projects/", projects, name="projects"),
    path("projects/<int:project_id>/", project, name="project"),
    path(
        "projects/<int:project_id>/milestones/<int:milestone_id>/complete",
        complete_milestone,
        name="milestone-complete",
    ),
    path(
        "projects/<int:project_id>/milestones/<int:milestone_id>/reopen",
        reopen_milestone,
        name="milestone-reopen",
    ),
]
