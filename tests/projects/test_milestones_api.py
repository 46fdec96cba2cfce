"""Milestones: GET/POST /api/projects/{id}/milestones, PATCH/DELETE …/milestones/{mid}."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import REFUSED_STAFF_ONLY, Api, unchanged
from tranche.accounts.models import User
from tranche.billing.services.drafts import milestone_complete
from tranche.projects.models import Milestone, Project

pytestmark = pytest.mark.django_db


def titles(project: Project) -> list[tuple[int, str]]:
    return [(m.position, m.title) for m in project.milestones.order_by("position")]


def complete(milestone: Milestone, by: User) -> None:
    milestone_complete(actor=by, project_id=milestone.project_id, milestone_id=milestone.pk)


@pytest.mark.parametrize("persona", ["admin", "staff", "alice"])
def test_who_may_list_milestones(
    as_: Callable[[str], Api], project_a: Project, persona: str
) -> None:
    response = as_(persona).get(f"/api/projects/{project_a.pk}/milestones")
    assert response.status == 200
    assert [m["title"] for m in response.body["items"]] == ["Step 1", "Step 2", "Step 3"]


@pytest.mark.parametrize(
    ("persona", "status", "code"),
    [("bob", 404, "project_not_found"), ("anonymous", 401, "not_authenticated")],
)
def test_who_may_not_list_milestones(
    as_: Callable[[str], Api], project_a: Project, persona: str, status: int, code: str
) -> None:
    api = as_(persona)
    with unchanged():
        response = api.get(f"/api/projects/{project_a.pk}/milestones")
    assert response.status == status
    assert response.body["code"] == code
    assert "items" not in response.body


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_who_may_not_add_a_milestone(
    as_: Callable[[str], Api], project_a: Project, persona: str, status: int, code: str
) -> None:
    api = as_(persona)
    body = {"title": "Snagging", "planned_date": "2026-12-24"}
    with unchanged():
        response = api.post(f"/api/projects/{project_a.pk}/milestones", body)
    assert response.status == status
    assert response.body["code"] == code


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_who_may_add_a_milestone(
    as_: Callable[[str], Api], project_a: Project, persona: str
) -> None:
    api = as_(persona)
    body = {"title": "Snagging", "planned_date": "2026-12-24"}
    response = api.post(f"/api/projects/{project_a.pk}/milestones", body)
    assert response.status == 201
    created = Milestone.objects.get(title="Snagging")
    assert response.body == {
        "id": created.pk,
        "project_id": project_a.pk,
        "title": "Snagging",
        "position": 4,
        "status": "pending",
        "is_billable": False,
        "billing_percentage": None,
        "bill_on_acceptance": False,
        "amount": "0.00",
        "planned_date": "2026-12-24",
        "actual_date": None,
        "completed_at": None,
        "completed_by_id": None,
        "invoice_id": None,
        "created_at": response.body["created_at"],
        "updated_at": response.body["updated_at"],
    }


def test_adding_at_a_position_shifts_the_others(
    as_: Callable[[str], Api], project_a: Project
) -> None:
    response = as_("staff").post(
        f"/api/projects/{project_a.pk}/milestones", {"title": "Kick-off", "position": 1}
    )
    assert response.status == 201
    assert titles(project_a) == [(1, "Kick-off"), (2, "Step 1"), (3, "Step 2"), (4, "Step 3")]


def test_a_billable_milestone_fits_only_into_what_is_unscheduled(
    as_: Callable[[str], Api], admin: User, customer_a: Any
) -> None:
    from tests.factories import make_project

    project = make_project(
        actor=admin, customer=customer_a, total="1000.00", percentages=("50", "30")
    )
    api = as_("staff")
    with unchanged():
        too_much = api.post(
            f"/api/projects/{project.pk}/milestones",
            {"title": "Extra", "is_billable": True, "billing_percentage": "20.01"},
        )
    assert too_much.status == 422
    assert too_much.body["code"] == "schedule_over_100"

    fits = api.post(
        f"/api/projects/{project.pk}/milestones",
        {"title": "Extra", "is_billable": True, "billing_percentage": "20"},
    )
    assert fits.status == 201
    assert fits.body["amount"] == "200.00"


BAD_MILESTONES: list[tuple[str, dict[str, Any], str]] = [
    ("no title", {}, "validation_error"),
    ("blank title", {"title": "   "}, "title_required"),
    (
        "billable without percentage",
        {"title": "X", "is_billable": True},
        "billing_percentage_required",
    ),
    (
        "percentage on non-billable",
        {"title": "X", "billing_percentage": "5"},
        "billing_percentage_not_billable",
    ),
    (
        "percentage over 100",
        {"title": "X", "is_billable": True, "billing_percentage": "100.01"},
        "validation_error",
    ),
    ("bad date", {"title": "X", "planned_date": "next week"}, "validation_error"),
    ("position past the end", {"title": "X", "position": 9}, "position_invalid"),
    ("unknown field", {"title": "X", "owner": "me"}, "validation_error"),
    (
        "schedule over 100",
        {"title": "X", "is_billable": True, "billing_percentage": "1"},
        "schedule_over_100",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "code"), BAD_MILESTONES, ids=[c[0] for c in BAD_MILESTONES]
)
def test_bad_milestones_are_refused_and_nothing_changes(
    as_: Callable[[str], Api], project_a: Project, case: str, body: dict[str, Any], code: str
) -> None:
    api = as_("staff")
    with unchanged():
        response = api.post(f"/api/projects/{project_a.pk}/milestones", body)
    assert response.status == 422
    assert response.body["code"] == code


def test_milestones_of_an_unknown_project_are_404(as_: Callable[[str], Api]) -> None:
    api = as_("staff")
    with unchanged():
        assert api.post("/api/projects/99999/milestones", {"title": "X"}).status == 404
    assert api.get("/api/projects/99999/milestones").status == 404


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_who_may_not_edit_a_milestone(
    as_: Callable[[str], Api], project_a: Project, persona: str, status: int, code: str
) -> None:
    milestone = project_a.milestones.get(position=1)
    api = as_(persona)
    body = {"title": "Deposit", "billing_percentage": "25", "planned_date": "2027-01-15"}
    with unchanged():
        response = api.patch(f"/api/projects/{project_a.pk}/milestones/{milestone.pk}", body)
    assert response.status == status
    assert response.body["code"] == code


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_who_may_edit_a_milestone(
    as_: Callable[[str], Api], project_a: Project, persona: str
) -> None:
    milestone = project_a.milestones.get(position=1)
    api = as_(persona)
    body = {"title": "Deposit", "billing_percentage": "25", "planned_date": "2027-01-15"}
    response = api.patch(f"/api/projects/{project_a.pk}/milestones/{milestone.pk}", body)
    assert response.status == 200
    assert response.body["title"] == "Deposit"
    assert response.body["billing_percentage"] == "25.00"
    assert response.body["planned_date"] == "2027-01-15"
    assert response.body["amount"] == "250.00"
    assert response.body["is_billable"] is True


def test_making_a_milestone_non_billable_drops_its_percentage(
    as_: Callable[[str], Api], project_a: Project
) -> None:
    milestone = project_a.milestones.get(position=2)
    response = as_("staff").patch(
        f"/api/projects/{project_a.pk}/milestones/{milestone.pk}", {"is_billable": False}
    )
    assert response.status == 200
    assert response.body["billing_percentage"] is None
    assert response.body["amount"] == "0.00"


def test_moving_a_milestone_renumbers_the_schedule(
    as_: Callable[[str], Api], project_a: Project
) -> None:
    last = project_a.milestones.get(position=3)
    response = as_("staff").patch(
        f"/api/projects/{project_a.pk}/milestones/{last.pk}", {"position": 1}
    )
    assert response.status == 200
    assert titles(project_a) == [(1, "Step 3"), (2, "Step 1"), (3, "Step 2")]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"billing_percentage": "71"}, "schedule_over_100"),
        ({"title": None}, "null_not_allowed"),
        ({"title": ""}, "validation_error"),
        ({"position": 0}, "validation_error"),
        ({"position": 4}, "position_invalid"),
        ({"status": "completed"}, "validation_error"),
    ],
)
def test_bad_edits_are_refused_and_nothing_changes(
    as_: Callable[[str], Api], project_a: Project, body: dict[str, Any], code: str
) -> None:
    milestone = project_a.milestones.get(position=1)
    api = as_("staff")
    with unchanged():
        response = api.patch(f"/api/projects/{project_a.pk}/milestones/{milestone.pk}", body)
    assert response.status == 422
    assert response.body["code"] == code


def test_a_completed_milestone_cannot_be_edited_or_deleted(
    as_: Callable[[str], Api], project_a: Project, staff: User
) -> None:
    milestone = project_a.milestones.get(position=1)
    complete(milestone, staff)
    api = as_("staff")
    with unchanged():
        edit = api.patch(
            f"/api/projects/{project_a.pk}/milestones/{milestone.pk}", {"title": "Changed"}
        )
        delete = api.delete(f"/api/projects/{project_a.pk}/milestones/{milestone.pk}")
    assert (edit.status, edit.body["code"]) == (409, "milestone_not_pending")
    assert (delete.status, delete.body["code"]) == (409, "milestone_not_pending")


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_who_may_not_delete_a_milestone(
    as_: Callable[[str], Api], project_a: Project, persona: str, status: int, code: str
) -> None:
    milestone = project_a.milestones.get(position=1)
    api = as_(persona)
    with unchanged():
        response = api.delete(f"/api/projects/{project_a.pk}/milestones/{milestone.pk}")
    assert response.status == status
    assert response.body["code"] == code


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_who_may_delete_a_milestone(
    as_: Callable[[str], Api], project_a: Project, persona: str
) -> None:
    milestone = project_a.milestones.get(position=1)
    response = as_(persona).delete(f"/api/projects/{project_a.pk}/milestones/{milestone.pk}")
    assert response.status == 204
    assert response.body is None
    assert titles(project_a) == [(1, "Step 2"), (2, "Step 3")]


def test_a_milestone_of_another_project_is_404_through_this_one(
    as_: Callable[[str], Api], project_a: Project, project_b: Project
) -> None:
    foreign = project_b.milestones.get(position=1)
    api = as_("staff")
    with unchanged():
        edit = api.patch(
            f"/api/projects/{project_a.pk}/milestones/{foreign.pk}", {"title": "Hijack"}
        )
        delete = api.delete(f"/api/projects/{project_a.pk}/milestones/{foreign.pk}")
    assert (edit.status, edit.body["code"]) == (404, "milestone_not_found")
    assert delete.status == 404
