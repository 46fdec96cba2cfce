"""Projects: GET /api/projects, GET /api/projects/{id}, and the milestone amounts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.factories import make_project
from tests.helpers import Api, unchanged
from tranche.accounts.models import Customer, User
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("persona", ["admin", "staff", "alice"])
def test_who_may_read_a_project(
    as_: Callable[[str], Api], project_a: Project, persona: str
) -> None:
    response = as_(persona).get(f"/api/projects/{project_a.pk}")
    assert response.status == 200
    assert response.body["id"] == project_a.pk
    assert response.body["name"] == "Kitchen for A"
    assert response.body["customer_name"] == "Acme Builders"
    assert len(response.body["milestones"]) == 3


def test_bob_may_not_read_a_project_of_customer_a(
    as_: Callable[[str], Api], project_a: Project
) -> None:
    api = as_("bob")
    with unchanged():
        response = api.get(f"/api/projects/{project_a.pk}")
    assert response.status == 404
    assert response.body == {
        "detail": f"Project {project_a.pk} does not exist.",
        "code": "project_not_found",
    }


def test_anonymous_may_not_read_a_project(as_: Callable[[str], Api], project_a: Project) -> None:
    with unchanged():
        response = as_("anonymous").get(f"/api/projects/{project_a.pk}")
    assert response.status == 401
    assert response.body["code"] == "not_authenticated"


def test_project_lists_are_scoped_to_the_customer(
    as_: Callable[[str], Api], project_a: Project, project_b: Project
) -> None:
    assert {p["id"] for p in as_("admin").get("/api/projects").body["items"]} == {
        project_a.pk,
        project_b.pk,
    }
    assert [p["id"] for p in as_("alice").get("/api/projects").body["items"]] == [project_a.pk]
    assert [p["id"] for p in as_("bob").get("/api/projects").body["items"]] == [project_b.pk]
    assert as_("anonymous").get("/api/projects").status == 401


def test_project_list_pages_newest_first(
    as_: Callable[[str], Api], project_a: Project, project_b: Project
) -> None:
    first = as_("staff").get("/api/projects?limit=1").body
    second = as_("staff").get("/api/projects?limit=1&offset=1").body
    assert first["count"] == second["count"] == 2
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [project_b.pk, project_a.pk]


@pytest.mark.parametrize("project_id", ["999999", "9223372036854775807", "99999999999999999999"])
def test_unknown_projects_are_404(as_: Callable[[str], Api], project_id: str) -> None:
    response = as_("staff").get(f"/api/projects/{project_id}")
    assert response.status == 404


def test_one_third_schedules_bill_exactly_the_quote_total(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = make_project(
        actor=admin, customer=customer_a, total="1000.01", percentages=("33.33", "33.33", "33.34")
    )
    amounts = [
        m["amount"] for m in as_("staff").get(f"/api/projects/{project.pk}").body["milestones"]
    ]
    assert amounts == ["333.30", "333.30", "333.41"]


def test_jpy_projects_bill_whole_yen(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = make_project(
        actor=admin,
        customer=customer_a,
        currency="JPY",
        total="100001",
        percentages=("33.33", "33.33", "33.34"),
    )
    body = as_("staff").get(f"/api/projects/{project.pk}").body
    assert body["contract_total"] == "100001"
    assert [m["amount"] for m in body["milestones"]] == ["33330", "33330", "33341"]


def test_an_unscheduled_share_is_not_billed_by_any_milestone(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = make_project(
        actor=admin, customer=customer_a, total="100.00", percentages=("25", "25")
    )
    body = as_("staff").get(f"/api/projects/{project.pk}").body
    assert body["billable_percentage"] == "50.00"
    assert [m["amount"] for m in body["milestones"]] == ["25.00", "25.00"]


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("admin", {"A", "B"}),
        ("staff", {"A", "B"}),
        ("alice", {"A"}),
        ("bob", {"B"}),
    ],
)
def test_who_sees_which_projects_in_the_list(
    as_: Callable[[str], Api],
    project_a: Project,
    project_b: Project,
    persona: str,
    expected: set[str],
) -> None:
    response = as_(persona).get("/api/projects")
    assert response.status == 200
    names = {"Kitchen for A": "A", "Studio for B": "B"}
    assert {names[p["name"]] for p in response.body["items"]} == expected
    assert response.body["count"] == len(expected)


def test_anonymous_sees_no_project_list(as_: Callable[[str], Api], project_a: Project) -> None:
    response = as_("anonymous").get("/api/projects")
    assert response.status == 401
    assert response.body["code"] == "not_authenticated"
