"""The business's own people (admins only), at /settings/users/: invite staff and admins,
change their role, deactivate and reactivate them."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from tranche.accounts.models import Role, User
from tranche.accounts.selectors import access_team_user, team_list
from tranche.accounts.users import user_deactivate, user_reactivate, user_set_role
from tranche.notifications.invitations import user_invite, user_reinvite
from tranche.web.views.common import act, page_of, user_of
from tranche.web.views.people_forms import INVITE_FIELDS, InviteForm, guarded, submit

TEAM_ROLES = [(Role.STAFF.value, "Staff"), (Role.ADMIN.value, "Admin")]


class TeamInviteForm(InviteForm):
    role = forms.ChoiceField(
        choices=TEAM_ROLES, error_messages={"invalid_choice": "Choose admin or staff."}
    )


def _page(
    request: HttpRequest, user: User, invite: TeamInviteForm, status: int = 200
) -> HttpResponse:
    people = page_of(request, team_list(user=user))
    active_admins = team_list(user=user).filter(role=Role.ADMIN, is_active=True).count()
    return render(
        request,
        "web/users/list.html",
        {
            "people": people,
            "invite": invite,
            "roles": TEAM_ROLES,
            "last_admin": active_admins <= 1,
        },
        status=status,
    )


@login_required
def users(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    guarded(lambda: team_list(user=user))
    return _page(request, user, TeamInviteForm(initial={"role": Role.STAFF.value}))


@login_required
@require_POST
def invite(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    guarded(lambda: team_list(user=user))
    form = TeamInviteForm(request.POST)
    invited = submit(
        request,
        form,
        lambda data: user_invite(
            actor=user, email=data["email"], full_name=data["full_name"], role=data["role"]
        ),
        {**INVITE_FIELDS, "role_invalid": "role"},
    )
    if invited is None:
        return _page(request, user, form, status=422)
    messages.success(
        request,
        f"Invitation sent to {invited.email} ({invited.get_role_display().lower()}). "
        "The link works for a limited time.",
    )
    return redirect("users")


def _action(
    request: HttpRequest,
    user_id: int,
    service: Callable[[User, User], object],
    success: Callable[[User], str],
) -> HttpResponse:
    actor = user_of(request)
    person: User = guarded(lambda: access_team_user(actor, user_id))
    act(request, lambda: service(actor, person), success(person))
    return redirect("users")


@login_required
@require_POST
def set_role(request: HttpRequest, user_id: int) -> HttpResponse:
    role = request.POST.get("role", "")
    label = dict(TEAM_ROLES).get(role, role).lower()
    return _action(
        request,
        user_id,
        lambda actor, person: user_set_role(actor=actor, user_id=person.pk, role=role),
        lambda person: f"{person.email} is now {label}.",
    )


@login_required
@require_POST
def deactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    return _action(
        request,
        user_id,
        lambda actor, person: user_deactivate(actor=actor, user_id=person.pk),
        lambda person: f"{person.email} is deactivated: they can no longer sign in.",
    )


@login_required
@require_POST
def reactivate(request: HttpRequest, user_id: int) -> HttpResponse:
    return _action(
        request,
        user_id,
        lambda actor, person: user_reactivate(actor=actor, user_id=person.pk),
        lambda person: f"{person.email} is active again and can sign in.",
    )


@login_required
@require_POST
def reinvite(request: HttpRequest, user_id: int) -> HttpResponse:
    return _action(
        request,
        user_id,
        lambda actor, person: user_reinvite(actor=actor, user_id=person.pk),
        lambda person: (
            f"A new invitation is on its way to {person.email}; the earlier link no longer works."
        ),
    )


urlpatterns = [
    path("settings/users/", users, name="users"),
    path("settings/users/invite", invite, name="user-invite"),
    path("settings/users/<int:user_id>/role", set_role, name="user-role"),
    path("settings/users/<int:user_id>/deactivate", deactivate, name="user-deactivate"),
    path("settings/users/<int:user_id>/reactivate", reactivate, name="user-reactivate"),
    path("settings/users/<int:user_id>/reinvite", reinvite, name="user-reinvite"),
]
