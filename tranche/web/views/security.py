"""Settings → Security (admins only): whether admins must use two-factor, who has it on
(with a reset for a colleague who lost their phone and codes), and the security log."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from tranche.accounts.models import SecurityEventKind
from tranche.accounts.security import security_log
from tranche.accounts.selectors import access_team_user
from tranche.accounts.two_factor import (
    has_two_factor,
    team_two_factor,
    two_factor_required_for_admins,
    two_factor_requirement_set,
    two_factor_reset,
)
from tranche.web.views.common import act, page_of
from tranche.web.views.people_forms import guarded
from tranche.web.views.settings import _admin_only

LOG_PER_PAGE = 50


@login_required
@require_GET
def security_page(request: HttpRequest) -> HttpResponse:
    user = _admin_only(request)
    return render(
        request,
        "web/settings/security.html",
        {
            "required": two_factor_required_for_admins(),
            "team": team_two_factor(user=user),
            "has_two_factor": has_two_factor(user),
        },
    )


@login_required
@require_POST
def requirement(request: HttpRequest) -> HttpResponse:
    user = _admin_only(request)
    required = request.POST.get("required") == "on"
    act(
        request,
        lambda: two_factor_requirement_set(actor=user, required=required),
        "Two-factor authentication is now required for admins: those without it set it up "
        "when they next open a page."
        if required
        else "Two-factor authentication is now optional for admins.",
    )
    return redirect("settings-security")


@login_required
@require_POST
def reset(request: HttpRequest, user_id: int) -> HttpResponse:
    user = _admin_only(request)
    person = guarded(lambda: access_team_user(user, user_id))
    act(
        request,
        lambda: two_factor_reset(actor=user, user=person),
        f"Two-factor authentication of {person.email} is off: they sign in with their password "
        "and can set it up again.",
    )
    return redirect("settings-security")


@login_required
@require_GET
def log(request: HttpRequest) -> HttpResponse:
    user = _admin_only(request)
    kind = request.GET.get("kind", "")
    if kind not in SecurityEventKind.values:
        kind = ""
    events = page_of(request, security_log(user=user, kind=kind), per_page=LOG_PER_PAGE)
    return render(
        request,
        "web/settings/security_log.html",
        {"events": events, "kinds": SecurityEventKind.choices, "kind": kind},
    )


urlpatterns = [
    path("settings/security/", security_page, name="settings-security"),
    path("settings/security/two-factor", requirement, name="settings-security-requirement"),
    path(
        "settings/security/people/<int:user_id>/reset-two-factor",
        reset,
        name="settings-security-reset",
    ),
    path("settings/security/log/", log, name="security-log"),
]
