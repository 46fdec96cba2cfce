"""Completing a milestone creates its draft invoice; reopening cancels the draft."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from tests.concurrency import at_once
from tests.factories import make_project
from tests.helpers import REFUSED_ADMIN_ONLY, Api, unchanged
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice, InvoiceEvent, InvoiceStatus
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Milestone, Project

pytestmark = pytest.mark.django_db


def complete_path(project: Project, milestone: Milestone) -> str:
    return f"/api/projects/{project.pk}/milestones/{milestone.pk}/complete"


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_who_may_complete_a_milestone(
    as_: Callable[[str], Api], project_a: Project, persona: str
) -> None:
    milestone = project_a.milestones.get(position=1)
    response = as_(persona).patch(complete_path(project_a, milestone))
    assert response.status == 200
    assert response.body["milestone"]["status"] == "completed"
    assert response.body["draft_invoice"]["status"] == "draft"
    milestone.refresh_from_db()
    assert milestone.status == "completed"
    assert Invoice.objects.get().milestone_id == milestone.pk


@pytest.mark.parametrize(
    ("persona", "status", "code"),
    [
        ("alice", 403, "staff_only"),
        ("bob", 403, "staff_only"),
        ("anonymous", 401, "not_authenticated"),
    ],
)
def test_who_may_not_complete_a_milestone(
    as_: Callable[[str], Api], project_a: Project, persona: str, status: int, code: str
) -> None:
    milestone = project_a.milestones.get(position=1)
    api = as_(persona)
    with unchanged():
        response = api.patch(complete_path(project_a, milestone))
    assert response.status == status
    assert response.body["code"] == code


def test_completing_a_billable_milestone_creates_a_draft_and_tells_nobody(
    as_: Callable[[str], Api], project_a: Project, staff: User, customer_a: Customer
) -> None:
    milestone = project_a.milestones.get(position=1)
    response = as_("staff").patch(complete_path(project_a, milestone))

    assert response.status == 200
    body = response.body
    invoice = Invoice.objects.get()
    today = timezone.localdate()
    assert body["message"] == "Milestone completed successfully."
    assert body["milestone"]["status"] == "completed"
    assert body["milestone"]["completed_by_id"] == staff.pk
    assert body["milestone"]["actual_date"] == today.isoformat()
    assert body["milestone"]["invoice_id"] == invoice.pk
    assert body["draft_invoice"] == {
        **body["draft_invoice"],
        "id": invoice.pk,
        "number": None,
        "status": "draft",
        "invoice_type": "milestone",
        "project_id": project_a.pk,
        "quote_id": project_a.origin_quote_id,
        "milestone_id": milestone.pk,
        "currency": "USD",
        "amount": "300.00",
        "amount_paid": "0.00",
        "amount_due": "300.00",
        "description": "Payment for completed milestone: Step 1",
        "issue_date": today.isoformat(),
        "due_date": (today + timedelta(days=14)).isoformat(),
        "customer_name": "Acme Builders",
        "customer_email": "accounts@acme.example",
        "payment_link": None,
        "stripe_payment_intent_id": None,
        "sent_at": None,
    }
    assert mail.outbox == []
    assert list(InvoiceEvent.objects.values_list("kind", flat=True)) == ["created"]


def test_a_non_billable_milestone_completes_without_an_invoice(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    api = as_("staff")
    milestone_id = api.post(
        f"/api/projects/{make_project(actor=admin, customer=customer_a).pk}/milestones",
        {"title": "Survey"},
    ).body["id"]
    milestone = Milestone.objects.get(pk=milestone_id)
    response = api.patch(complete_path(milestone.project, milestone))
    assert response.status == 200
    assert response.body["draft_invoice"] is None
    assert Invoice.objects.count() == 0


def test_completing_again_is_idempotent(as_: Callable[[str], Api], project_a: Project) -> None:
    milestone = project_a.milestones.get(position=2)
    api = as_("staff")
    first = api.patch(complete_path(project_a, milestone)).body
    with unchanged():
        again = api.patch(complete_path(project_a, milestone))
    assert again.status == 200
    assert again.body["message"] == "Milestone was already completed."
    assert again.body["milestone"]["completed_at"] == first["milestone"]["completed_at"]
    assert again.body["draft_invoice"]["id"] == first["draft_invoice"]["id"]


def test_milestones_of_a_third_schedule_bill_exactly_the_quote_total(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = make_project(
        actor=admin, customer=customer_a, total="1000.01", percentages=("33.33", "33.33", "33.34")
    )
    api = as_("staff")
    amounts = [
        api.patch(complete_path(project, m)).body["draft_invoice"]["amount"]
        for m in project.milestones.order_by("position")
    ]
    assert amounts == ["333.30", "333.30", "333.41"]
    assert sum(Decimal(a) for a in amounts) == Decimal("1000.01")


def test_a_jpy_project_bills_whole_yen(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = make_project(
        actor=admin,
        customer=customer_a,
        currency="JPY",
        total="100000",
        percentages=("33.33", "33.33", "33.34"),
    )
    api = as_("staff")
    amounts = [
        api.patch(complete_path(project, m)).body["draft_invoice"]["amount"]
        for m in project.milestones.order_by("position")
    ]
    assert amounts == ["33330", "33330", "33340"]
    assert [i.amount for i in Invoice.objects.order_by("id")] == [
        Decimal(33330),
        Decimal(33330),
        Decimal(33340),
    ]


def test_a_project_without_a_quote_cannot_bill(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = Project.objects.create(
        name="Imported",
        customer=customer_a,
        currency="USD",
        contract_total=Decimal(500),
        created_at=timezone.now(),
        created_by=admin,
    )
    now = timezone.now()
    milestone = Milestone.objects.create(
        project=project,
        title="Legacy",
        position=1,
        is_billable=True,
        billing_percentage=Decimal(50),
        created_at=now,
        updated_at=now,
    )
    api = as_("staff")
    with unchanged():
        response = api.patch(complete_path(project, milestone))
    assert (response.status, response.body["code"]) == (422, "project_without_quote")


def test_a_billable_milestone_worth_nothing_cannot_complete(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a, total="0.00")
    milestone = project.milestones.get(position=1)
    api = as_("staff")
    with unchanged():
        response = api.patch(complete_path(project, milestone))
    assert (response.status, response.body["code"]) == (422, "milestone_amount_zero")


def test_unknown_milestones_and_other_customers_projects_are_404(
    as_: Callable[[str], Api], project_a: Project, project_b: Project
) -> None:
    api = as_("staff")
    foreign = project_b.milestones.get(position=1)
    with unchanged():
        assert (
            api.patch(f"/api/projects/{project_a.pk}/milestones/{foreign.pk}/complete").status
            == 404
        )
        assert api.patch(f"/api/projects/{project_a.pk}/milestones/999999/complete").status == 404
        assert api.patch("/api/projects/999999/milestones/1/complete").status == 404


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_ADMIN_ONLY)
def test_who_may_not_reopen_a_milestone(
    as_: Callable[[str], Api], project_a: Project, persona: str, status: int, code: str
) -> None:
    milestone = project_a.milestones.get(position=1)
    as_("staff").patch(complete_path(project_a, milestone))
    api = as_(persona)
    path = f"/api/projects/{project_a.pk}/milestones/{milestone.pk}/reopen"
    with unchanged():
        response = api.patch(path)
    assert response.status == status
    assert response.body["code"] == code


def test_only_an_admin_reopens_and_the_draft_is_cancelled(
    as_: Callable[[str], Api], project_a: Project
) -> None:
    milestone = project_a.milestones.get(position=1)
    draft_id = as_("staff").patch(complete_path(project_a, milestone)).body["draft_invoice"]["id"]
    path = f"/api/projects/{project_a.pk}/milestones/{milestone.pk}/reopen"
    response = as_("admin").patch(path)
    assert response.status == 200
    assert response.body["status"] == "pending"
    assert response.body["completed_at"] is None
    assert response.body["invoice_id"] is None
    draft = Invoice.objects.get(pk=draft_id)
    assert draft.status == InvoiceStatus.CANCELLED
    assert draft.events.last().kind == "cancelled"  # type: ignore[union-attr]
    # completing again bills again, with a fresh draft
    again = as_("staff").patch(complete_path(project_a, milestone)).body["draft_invoice"]
    assert again["id"] != draft_id


def test_reopening_after_the_invoice_was_sent_is_refused(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    milestone = project_a.milestones.get(position=1)
    draft_id = as_("staff").patch(complete_path(project_a, milestone)).body["draft_invoice"]["id"]
    invoice_send(actor=admin, invoice_id=draft_id)
    api = as_("admin")
    with unchanged():
        response = api.patch(f"/api/projects/{project_a.pk}/milestones/{milestone.pk}/reopen")
    assert response.status == 409
    assert response.body["code"] == "invoice_already_sent"
    assert "Cancel the invoice first" in response.body["detail"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_completions_make_exactly_one_invoice(
    admin: User, staff: User, customer_a: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a)
    milestone = project.milestones.get(position=1)
    from tranche.accounts.services import token_create

    token = token_create(user=staff)

    def complete() -> int:
        return Api(token).patch(complete_path(project, milestone)).status

    statuses = at_once(20, complete)

    assert statuses == [200] * 20
    assert Invoice.objects.filter(milestone=milestone).count() == 1
    assert InvoiceEvent.objects.filter(kind="created").count() == 1
