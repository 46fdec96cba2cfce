"""The change-order endpoints: who may do what (anonymous, customer A, customer B,
staff, admin), with proof that every refusal changed nothing, and the shapes each
audience gets."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.billing.change_order_helpers import change_order, line, sent
from tests.billing.helpers import draft_for
from tests.helpers import Api, unchanged
from tranche.accounts.models import User
from tranche.notifications.change_orders import change_order_send
from tranche.projects.models import ChangeOrder, ChangeOrderStatus, Project

pytestmark = pytest.mark.django_db

STAFF_ONLY = [
    ("anonymous", 401, "not_authenticated"),
    ("alice", 403, "staff_only"),
    ("bob", 403, "staff_only"),
]


@pytest.fixture
def order(project_a: Project, admin: User) -> ChangeOrder:
    return change_order(project_a, admin, line("Build", "1000.00"), line("Deck", "200.00"))


@pytest.fixture
def sent_order(order: ChangeOrder, admin: User) -> ChangeOrder:
    change_order_send(actor=admin, change_order_id=order.pk)
    order.refresh_from_db()
    return order


BODY = {
    "title": "Deck",
    "lines": [{"description": "Build", "quantity": "1", "unit_price": "1200.00"}],
}


@pytest.mark.parametrize("persona", ["staff", "admin"])
def test_staff_create_a_change_order(
    as_: Callable[[str], Api], project_a: Project, persona: str
) -> None:
    response = as_(persona).post(f"/api/projects/{project_a.pk}/change-orders", BODY)
    assert response.status == 201
    assert response.body["reference"] == "CO-1"
    assert response.body["status"] == "draft"
    assert response.body["contract_total"] == "1200.00"
    assert response.body["created_by"].endswith("@tranche.example")


@pytest.mark.parametrize(("persona", "status", "code"), STAFF_ONLY)
def test_others_cannot_create_one(
    as_: Callable[[str], Api], project_a: Project, persona: str, status: int, code: str
) -> None:
    api = as_(persona)
    with unchanged():
        response = api.post(f"/api/projects/{project_a.pk}/change-orders", BODY)
    assert (response.status, response.body["code"]) == (status, code)


def test_without_lines_it_starts_from_the_contract(
    as_: Callable[[str], Api], project_a: Project
) -> None:
    response = as_("staff").post(
        f"/api/projects/{project_a.pk}/change-orders", {"title": "Same again"}
    )
    assert [x["line_total"] for x in response.body["lines"]] == ["1000.00"]


def test_a_draft_is_staffs_alone(
    as_: Callable[[str], Api], project_a: Project, order: ChangeOrder
) -> None:
    assert as_("staff").get(f"/api/change-orders/{order.pk}").status == 200
    assert as_("alice").get(f"/api/change-orders/{order.pk}").status == 404
    assert as_("alice").get(f"/api/projects/{project_a.pk}/change-orders").body["items"] == []
    assert (
        as_("admin").get(f"/api/projects/{project_a.pk}/change-orders").body["items"][0]["id"]
        == order.pk
    )


@pytest.mark.parametrize(("persona", "status"), [("anonymous", 401), ("bob", 404)])
def test_strangers_see_nothing(
    as_: Callable[[str], Api],
    project_a: Project,
    sent_order: ChangeOrder,
    persona: str,
    status: int,
) -> None:
    api = as_(persona)
    for path in (
        f"/api/change-orders/{sent_order.pk}",
        f"/api/change-orders/{sent_order.pk}/preview",
        f"/api/projects/{project_a.pk}/change-orders",
    ):
        assert api.get(path).status == status


def test_the_customer_reads_her_sent_change_order_without_staff_details(
    as_: Callable[[str], Api], sent_order: ChangeOrder
) -> None:
    body = as_("alice").get(f"/api/change-orders/{sent_order.pk}").body
    assert body["status"] == "sent"
    assert "created_by" not in body
    assert "approved_ip" not in body
    preview = as_("alice").get(f"/api/change-orders/{sent_order.pk}/preview").body
    assert (preview["contract_before"], preview["contract_after"]) == ("1000.00", "1200.00")
    assert [(m["title"], m["before"], m["after"]) for m in preview["milestones"]] == [
        ("Step 1", "300.00", "360.00"),
        ("Step 2", "300.00", "360.00"),
        ("Step 3", "400.00", "480.00"),
    ]


@pytest.mark.parametrize(("persona", "status", "code"), STAFF_ONLY)
def test_only_staff_edit_and_send(
    as_: Callable[[str], Api], order: ChangeOrder, persona: str, status: int, code: str
) -> None:
    api = as_(persona)
    with unchanged():
        edited = api.patch(f"/api/change-orders/{order.pk}", {"title": "Other"})
        sent = api.post(f"/api/change-orders/{order.pk}/send")
    assert (edited.status, edited.body["code"]) == (status, code)
    assert (sent.status, sent.body["code"]) == (status, code)


def test_staff_edit_a_draft_then_send_it(as_: Callable[[str], Api], order: ChangeOrder) -> None:
    api = as_("staff")
    edited = api.patch(f"/api/change-orders/{order.pk}", {"title": "Bigger deck"})
    assert edited.body["title"] == "Bigger deck"
    sent = api.post(f"/api/change-orders/{order.pk}/send")
    assert sent.body["status"] == "sent"
    with unchanged():
        again = api.patch(f"/api/change-orders/{order.pk}", {"title": "Smaller"})
    assert (again.status, again.body["code"]) == (409, "change_order_not_draft")


def test_the_customer_approves_online(
    as_: Callable[[str], Api], project_a: Project, sent_order: ChangeOrder
) -> None:
    path = f"/api/change-orders/{sent_order.pk}/approve"
    alice = as_("alice")
    with unchanged():
        unsigned = alice.post(path, {"name": "", "agreed": True})
    assert (unsigned.status, unsigned.body["code"]) == (422, "signature_required")
    response = alice.post(path, {"name": "Alice Archer", "agreed": True})
    assert response.status == 200
    assert response.body["status"] == "approved"
    assert response.body["approved_name"] == "Alice Archer"
    assert response.body["on_behalf"] is False
    project_a.refresh_from_db()
    assert project_a.contract_version == 2
    stored = ChangeOrder.objects.get(pk=sent_order.pk)
    assert stored.approved_ip == "127.0.0.1"


@pytest.mark.parametrize("persona", ["staff", "admin"])
def test_staff_record_an_approval_on_the_customers_behalf(
    as_: Callable[[str], Api], sent_order: ChangeOrder, persona: str
) -> None:
    response = as_(persona).post(f"/api/change-orders/{sent_order.pk}/approve", {})
    assert response.body["status"] == "approved"
    assert response.body["on_behalf"] is True
    assert response.body["approved_ip"] is None


@pytest.mark.parametrize(("persona", "status"), [("anonymous", 401), ("bob", 404)])
def test_strangers_cannot_answer(
    as_: Callable[[str], Api], sent_order: ChangeOrder, persona: str, status: int
) -> None:
    api = as_(persona)
    with unchanged():
        approved = api.post(
            f"/api/change-orders/{sent_order.pk}/approve", {"name": "Bob Baker", "agreed": True}
        )
        declined = api.post(f"/api/change-orders/{sent_order.pk}/decline", {"reason": "no"})
    assert approved.status == status
    assert declined.status == status


def test_a_customer_cannot_answer_a_draft(as_: Callable[[str], Api], order: ChangeOrder) -> None:
    alice = as_("alice")
    with unchanged():
        response = alice.post(
            f"/api/change-orders/{order.pk}/approve", {"name": "Alice Archer", "agreed": True}
        )
    assert response.status == 404


def test_the_customer_declines_with_a_reason(
    as_: Callable[[str], Api], sent_order: ChangeOrder
) -> None:
    alice = as_("alice")
    response = alice.post(f"/api/change-orders/{sent_order.pk}/decline", {"reason": "Not now"})
    assert response.body["status"] == "declined"
    assert response.body["decline_reason"] == "Not now"
    with unchanged():
        again = alice.post(
            f"/api/change-orders/{sent_order.pk}/approve", {"name": "Alice Archer", "agreed": True}
        )
    assert (again.status, again.body["code"]) == (409, "change_order_answered")
    assert ChangeOrder.objects.get().status == ChangeOrderStatus.DECLINED


def test_the_contract_below_what_was_invoiced_is_refused(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    sent(draft_for(project_a, 1, admin), admin)
    order = change_order(project_a, admin, line("Build", "100.00"))
    preview = as_("staff").get(f"/api/change-orders/{order.pk}/preview").body
    assert preview["shortfall"] == [{"tax_name": "", "tax_percentage": "0.00", "amount": "200.00"}]
    assert preview["problems"][0]["code"] == "credit_note_required"
    api = as_("admin")
    with unchanged():
        refused = api.post(f"/api/change-orders/{order.pk}/approve", {})
    assert (refused.status, refused.body["code"]) == (409, "credit_note_required")
