from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from tranche.accounts.models import User
from tranche.core.errors import NotFound
from tranche.projects.selectors import access_project, project_detail, project_details, project_list


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@login_required
def home(request: HttpRequest) -> HttpResponse:
    projects = list(project_list(user=_user(request))[:50])
    return render(request, "web/home.html", {"details": project_details(projects)})


@login_required
def project(request: HttpRequest, project_id: int) -> HttpResponse:
    try:
        found = access_project(_user(request), project_id)
    except NotFound:
        raise Http404("No such project.") from None
    return render(request, "web/project.html", {"detail": project_detail(found)})


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return JsonResponse(
        {"detail": "No API endpoint at this address.", "code": "not_found"}, status=404
    )


def lockout(
    request: HttpRequest, credentials: dict[str, Any] | None = None, *args: Any
) -> HttpResponse:
    """django-axes calls this when a login/address pair is locked out."""
    detail = "Too many failed sign-in attempts. Wait a while, then try again."
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail, "code": "too_many_attempts"}, status=429)
    return render(request, "web/login.html", {"lockout": detail}, status=429)
