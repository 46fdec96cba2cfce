"""Reviewing drafts: the project's financials, the global view, the detail, draft edits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.factories import make_project
from tests.helpers import REFUSED_ADMIN_ONLY, Api, unchanged
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def test_the_financials_tab_lists_invoices_and_sums_the_contract(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    first = draft_for(project_a, 1, admin)
    second = draft_for(project_a, 2, admin)
    invoice_send(actor=admin, invoice_id=first.pk)

    body = as_("staff").get(f"/api/projects/{project_a.pk}/invoices").body

    assert [i["id"] for i in body["items"]] == [second.pk, first.pk]
    assert body["summary"] == {
        "currency": "USD",
        "contract_total": "1000.00",
        "invoiced_amount": "300.00",
        "paid_amount": "0.00",
        "outstanding_amount": "300.00",
        "draft_amount": "300.00",
        "unbilled_amount": "400.00",
        "credit_owed_amount": "0.00",
    }


def test_customers_never_see_drafts(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    sent = draft_for(project_a, 2, admin)
    invoice_send(actor=admin, invoice_id=sent.pk)
    alice = as_("alice")

    assert [i["id"] for i in alice.get(f"/api/projects/{project_a.pk}/invoices").body["items"]] == [
        sent.pk
    ]
    assert [i["id"] for i in alice.get("/api/invoices").body["items"]] == [sent.pk]
    assert alice.get(f"/api/projects/{project_a.pk}/invoices/{draft.pk}").status == 404
    assert alice.get(f"/api/projects/{project_a.pk}/invoices/{sent.pk}").status == 200


@pytest.mark.parametrize(
    ("persona", "events"),
    [
        ("admin", [("created", "admin@tranche.example"), ("sent", "admin@tranche.example")]),
        ("staff", [("created", "admin@tranche.example"), ("sent", "admin@tranche.example")]),
        # The customer follows the sending, not the drafting, and is told no staff identity.
        ("alice", [("sent", None)]),
    ],
)
def test_who_may_read_a_sent_invoice(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    persona: str,
    events: list[tuple[str, str | None]],
) -> None:
    invoice = draft_for(project_a, 1, admin)
    invoice_send(actor=admin, invoice_id=invoice.pk)
    response = as_(persona).get(f"/api/projects/{project_a.pk}/invoices/{invoice.pk}")
    assert response.status == 200
    assert response.body["id"] == invoice.pk
    assert response.body["status"] == "pending"
    assert [(e["kind"], e.get("actor_email")) for e in response.body["events"]] == events


@pytest.mark.parametrize(
    ("persona", "status", "code"),
    [("bob", 404, "project_not_found"), ("anonymous", 401, "not_authenticated")],
)
def test_who_may_not_read_a_sent_invoice(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    persona: str,
    status: int,
    code: str,
) -> None:
    invoice = draft_for(project_a, 1, admin)
    invoice_send(actor=admin, invoice_id=invoice.pk)
    api = as_(persona)
    with unchanged():
        response = api.get(f"/api/projects/{project_a.pk}/invoices/{invoice.pk}")
    assert response.status == status
    assert response.body["code"] == code
    assert "events" not in response.body


def test_an_invoice_is_only_found_through_its_own_project(
    as_: Callable[[str], Api], project_a: Project, project_b: Project, admin: User
) -> None:
    invoice = draft_for(project_b, 1, admin)
    assert as_("staff").get(f"/api/projects/{project_a.pk}/invoices/{invoice.pk}").status == 404


def test_the_global_view_filters_pages_and_totals_per_currency(
    as_: Callable[[str], Api], admin: User, customer_a: Customer, customer_b: Customer
) -> None:
    usd = make_project(actor=admin, customer=customer_a, total="1000.00")
    jpy = make_project(
        actor=admin, customer=customer_b, currency="JPY", total="90000", percentages=("50", "50")
    )
    drafts = [
        draft_for(usd, 1, admin),
        draft_for(usd, 2, admin),
        draft_for(usd, 3, admin),
        draft_for(jpy, 1, admin),
    ]
    invoice_send(actor=admin, invoice_id=drafts[0].pk)
    Invoice.objects.filter(pk=drafts[0].pk).update(status="overdue")
    api = as_("staff")

    page1 = api.get("/api/invoices?limit=2").body
    assert [i["id"] for i in page1["items"]] == [drafts[3].pk, drafts[2].pk]
    page2 = api.get(f"/api/invoices?limit=2&cursor={page1['next_cursor']}").body
    assert [i["id"] for i in page2["items"]] == [drafts[1].pk, drafts[0].pk]
    assert page2["next_cursor"] is None
    assert (
        page1["totals"]
        == page2["totals"]
        == [
            {
                "currency": "JPY",
                "draft_count": 1,
                "draft_amount": "45000",
                "outstanding_amount": "0",
                "overdue_amount": "0",
                "paid_amount": "0",
                "credit_owed_amount": "0",
            },
            {
                "currency": "USD",
                "draft_count": 2,
                "draft_amount": "700.00",
                "outstanding_amount": "300.00",
                "overdue_amount": "300.00",
                "paid_amount": "0.00",
                "credit_owed_amount": "0.00",
            },
        ]
    )

    drafts_only = api.get("/api/invoices?status=draft").body
    assert len(drafts_only["items"]) == 3
    assert [
        i["id"] for i in api.get(f"/api/invoices?customer_id={customer_b.pk}").body["items"]
    ] == [drafts[3].pk]
    assert len(api.get(f"/api/invoices?project_id={usd.pk}").body["items"]) == 3


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("status=lost", "status_invalid"),
        ("cursor=not-a-cursor", "cursor_invalid"),
        ("limit=0", "validation_error"),
        ("limit=101", "validation_error"),
        ("project_id=x", "validation_error"),
    ],
)
def test_bad_filters_are_422(as_: Callable[[str], Api], query: str, code: str) -> None:
    response = as_("staff").get(f"/api/invoices?{query}")
    assert (response.status, response.body["code"]) == (422, code)


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_ADMIN_ONLY)
def test_who_may_not_edit_a_draft(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    persona: str,
    status: int,
    code: str,
) -> None:
    draft = draft_for(project_a, 1, admin)
    due = (timezone.localdate() + timedelta(days=30)).isoformat()
    body = {"amount": "250.50", "description": "Deposit, less the agreed discount", "due_date": due}
    api = as_(persona)
    with unchanged():
        response = api.patch(f"/api/projects/{project_a.pk}/invoices/{draft.pk}", body)
    assert response.status == status
    assert response.body["code"] == code


def test_only_an_admin_edits_a_draft(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    due = (timezone.localdate() + timedelta(days=30)).isoformat()
    body = {"amount": "250.50", "description": "Deposit, less the agreed discount", "due_date": due}
    response = as_("admin").patch(f"/api/projects/{project_a.pk}/invoices/{draft.pk}", body)
    assert response.status == 200
    assert (response.body["amount"], response.body["description"], response.body["due_date"]) == (
        "250.50",
        "Deposit, less the agreed discount",
        due,
    )
    assert response.body["events"][-1]["kind"] == "edited"
    draft.refresh_from_db()
    assert (draft.amount, draft.description, draft.due_date.isoformat()) == (
        Decimal("250.50"),
        "Deposit, less the agreed discount",
        due,
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": "0"}, "amount_not_positive"),
        ({"amount": "-5"}, "validation_error"),
        ({"amount": "700.01"}, "amount_exceeds_unbilled"),
        ({"amount": "10.001"}, "amount_precision"),
        ({"amount": None}, "null_not_allowed"),
        ({"description": ""}, "validation_error"),
        ({"due_date": "2001-01-01"}, "due_date_invalid"),
        ({"number": "INV-1"}, "validation_error"),
    ],
)
def test_bad_draft_edits_are_422_and_change_nothing(
    as_: Callable[[str], Api], project_a: Project, admin: User, body: dict[str, object], code: str
) -> None:
    draft = draft_for(project_a, 1, admin)
    draft_for(project_a, 2, admin)
    api = as_("admin")
    with unchanged():
        response = api.patch(f"/api/projects/{project_a.pk}/invoices/{draft.pk}", body)
    assert (response.status, response.body["code"]) == (422, code)


def test_the_whole_unbilled_rest_may_go_on_one_draft(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    response = as_("admin").patch(
        f"/api/projects/{project_a.pk}/invoices/{draft.pk}", {"amount": "1000.00"}
    )
    assert response.status == 200


def test_a_sent_invoice_cannot_be_edited(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    invoice_send(actor=admin, invoice_id=draft.pk)
    api = as_("admin")
    with unchanged():
        response = api.patch(
            f"/api/projects/{project_a.pk}/invoices/{draft.pk}", {"amount": "10.00"}
        )
    assert (response.status, response.body["code"]) == (409, "invoice_not_draft")
