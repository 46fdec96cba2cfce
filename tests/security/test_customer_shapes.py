"""Each audience gets its own shape (DESIGN.md rule 15): a customer's invoice reads carry
exactly the allow-listed fields (tests/security/allow_lists.py) with the values she was
sent, never a draft; staff keep the full shape. That nothing internal reaches her on any
route at all is tests/security/test_customer_views.py.

The project used throughout has four milestones of $100, $200, $300 and $400:
1. sent, paid $30 by bank transfer (recorded by the admin, with a note and a reference)
   and $20 through the payment provider (a webhook): partially paid;
2. drafted and cancelled without ever being sent;
3. a draft waiting for review;
4. sent, then cancelled (it keeps its number)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.factories import PASSWORD, make_project
from tests.helpers import Api, unchanged
from tests.security.allow_lists import (
    CUSTOMER_EVENT,
    CUSTOMER_INVOICE,
    CUSTOMER_INVOICE_DETAIL,
    CUSTOMER_MILESTONE,
    CUSTOMER_PROJECT,
    CUSTOMER_SUMMARY,
    CUSTOMER_TOTALS,
)
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice, PaymentMethod
from tranche.billing.schemas import (
    CurrencyTotalsOut,
    InvoiceDetailOut,
    InvoiceEventOut,
    InvoiceOut,
    MilestoneOut,
    PaymentOut,
    ProjectOut,
    ProjectSummaryOut,
)
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.payments import payment_record_manual, settle_intent_succeeded
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

# Staff get every field of the staff shapes, whatever fields those gain later.
STAFF_INVOICE = set(InvoiceOut.model_fields)
STAFF_INVOICE_DETAIL = set(InvoiceDetailOut.model_fields)
STAFF_PAYMENT = set(PaymentOut.model_fields)
STAFF_EVENT = set(InvoiceEventOut.model_fields)
STAFF_SUMMARY = set(ProjectSummaryOut.model_fields)
STAFF_TOTALS = set(CurrencyTotalsOut.model_fields)
STAFF_MILESTONE = set(MilestoneOut.model_fields)
STAFF_PROJECT = set(ProjectOut.model_fields)

NOTE = "Paid from the director's personal account; chase the rest quietly"
MANUAL_REFERENCE = "BANK-REF-99172"
WEBHOOK_ID = "evt_1ShapesWebhookSecret"
CANCEL_REASON = "Scope dispute with their site manager: internal"


@dataclass
class Books:
    project: Project
    sent: Invoice  # milestone 1, partially paid
    cancelled_draft: Invoice  # milestone 2, never sent
    draft: Invoice  # milestone 3
    cancelled_sent: Invoice  # milestone 4, sent then cancelled


@pytest.fixture
def books(admin: User, staff: User, customer_a: Customer) -> Books:
    project = make_project(
        actor=admin, customer=customer_a, title="Loft for A", percentages=("10", "20", "30", "40")
    )
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, staff).pk)
    payment_record_manual(
        actor=admin,
        invoice_id=sent.pk,
        amount=Decimal("30.00"),
        method=PaymentMethod.BANK_TRANSFER,
        received_on=timezone.localdate(),
        reference=MANUAL_REFERENCE,
        note=NOTE,
    )
    assert sent.provider_reference is not None
    settle_intent_succeeded(
        intent_id=sent.provider_reference,
        amount_received=Decimal("20.00"),
        currency="USD",
        method=PaymentMethod.SANDBOX,
        source=f"webhook {WEBHOOK_ID}",
    )
    cancelled_draft = draft_for(project, 2, staff)
    invoice_cancel(actor=admin, invoice_id=cancelled_draft.pk, reason="Wrong amount")
    draft = draft_for(project, 3, staff)
    cancelled_sent = invoice_send(actor=admin, invoice_id=draft_for(project, 4, staff).pk)
    invoice_cancel(actor=admin, invoice_id=cancelled_sent.pk, reason=CANCEL_REASON)
    for invoice in (sent, cancelled_draft, draft, cancelled_sent):
        invoice.refresh_from_db()
    assert cancelled_draft.number is None
    assert cancelled_sent.number is not None
    return Books(project, sent, cancelled_draft, draft, cancelled_sent)


def keys(body: dict[str, Any]) -> set[str]:
    return set(body)


def only(items: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [i for i in items if all(i[k] == v for k, v in match.items())]
    assert len(found) == 1, found
    return found[0]


# --- projects ----------------------------------------------------------------------------


def test_a_customer_lists_projects_in_the_customer_shape(
    as_: Callable[[str], Api], books: Books
) -> None:
    body = as_("alice").get("/api/projects").body
    assert keys(body) == {"items", "count"}
    project = only(body["items"], id=books.project.pk)
    assert keys(project) == CUSTOMER_PROJECT
    assert [keys(m) for m in project["milestones"]] == [CUSTOMER_MILESTONE] * 4


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_staff_list_projects_in_the_full_shape(
    as_: Callable[[str], Api], books: Books, persona: str
) -> None:
    project = only(as_(persona).get("/api/projects").body["items"], id=books.project.pk)
    assert keys(project) == STAFF_PROJECT
    assert [keys(m) for m in project["milestones"]] == [STAFF_MILESTONE] * 4


def test_a_customer_reads_a_project_and_its_milestones_in_the_customer_shape(
    as_: Callable[[str], Api], books: Books
) -> None:
    alice = as_("alice")
    project = alice.get(f"/api/projects/{books.project.pk}").body
    assert keys(project) == CUSTOMER_PROJECT
    milestones = alice.get(f"/api/projects/{books.project.pk}/milestones").body
    assert keys(milestones) == {"items"}
    assert [keys(m) for m in milestones["items"]] == [CUSTOMER_MILESTONE] * 4
    assert milestones["items"] == project["milestones"]


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_staff_read_a_project_and_its_milestones_in_the_full_shape(
    as_: Callable[[str], Api], books: Books, persona: str, staff: User
) -> None:
    api = as_(persona)
    project = api.get(f"/api/projects/{books.project.pk}").body
    assert keys(project) == STAFF_PROJECT
    milestones = api.get(f"/api/projects/{books.project.pk}/milestones").body["items"]
    assert [keys(m) for m in milestones] == [STAFF_MILESTONE] * 4
    assert [m["completed_by_id"] for m in milestones] == [staff.pk] * 4


@pytest.mark.parametrize(
    ("persona", "sees_draft"), [("admin", True), ("staff", True), ("alice", False)]
)
def test_a_milestone_names_its_invoice_only_to_whom_may_open_it(
    as_: Callable[[str], Api], books: Books, persona: str, sees_draft: bool
) -> None:
    invoice_ids = [
        m["invoice_id"]
        for m in as_(persona).get(f"/api/projects/{books.project.pk}/milestones").body["items"]
    ]
    # Milestones 2 and 4 have no live invoice (theirs were cancelled); 3 has a draft.
    assert invoice_ids == [books.sent.pk, None, books.draft.pk if sees_draft else None, None]


# --- a project's invoices ----------------------------------------------------------------


def test_a_customer_reads_a_projects_invoices_in_the_customer_shape(
    as_: Callable[[str], Api], books: Books
) -> None:
    body = as_("alice").get(f"/api/projects/{books.project.pk}/invoices").body
    assert keys(body) == {"items", "summary"}
    assert [i["id"] for i in body["items"]] == [books.cancelled_sent.pk, books.sent.pk]
    assert [keys(i) for i in body["items"]] == [CUSTOMER_INVOICE] * 2
    # Totals over what she was sent: the $300 draft is neither named nor subtracted.
    assert body["summary"] == {
        "currency": "USD",
        "contract_total": "1000.00",
        "invoiced_amount": "100.00",
        "paid_amount": "50.00",
        "outstanding_amount": "50.00",
        "credit_owed_amount": "0.00",
    }
    assert keys(body["summary"]) == CUSTOMER_SUMMARY


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_staff_read_a_projects_invoices_in_the_full_shape(
    as_: Callable[[str], Api], books: Books, persona: str
) -> None:
    body = as_(persona).get(f"/api/projects/{books.project.pk}/invoices").body
    assert [i["id"] for i in body["items"]] == [
        books.cancelled_sent.pk,
        books.draft.pk,
        books.cancelled_draft.pk,
        books.sent.pk,
    ]
    assert [keys(i) for i in body["items"]] == [STAFF_INVOICE] * 4
    assert keys(body["summary"]) == STAFF_SUMMARY
    assert body["summary"]["draft_amount"] == "300.00"
    assert body["summary"]["unbilled_amount"] == "600.00"


def test_a_customer_reads_a_sent_invoice_in_the_customer_shape(
    as_: Callable[[str], Api], books: Books
) -> None:
    body = as_("alice").get(f"/api/projects/{books.project.pk}/invoices/{books.sent.pk}").body
    assert keys(body) == CUSTOMER_INVOICE_DETAIL
    assert body["number"] == books.sent.number
    assert body["amount_due"] == "50.00"
    assert body["payments"] == [
        {
            "id": body["payments"][0]["id"],
            "amount": "30.00",
            "currency": "USD",
            "method": "bank_transfer",
            "received_on": timezone.localdate().isoformat(),
        },
        {
            "id": body["payments"][1]["id"],
            "amount": "20.00",
            "currency": "USD",
            "method": "sandbox",
            "received_on": timezone.localdate().isoformat(),
        },
    ]
    assert [keys(e) for e in body["events"]] == [CUSTOMER_EVENT] * len(body["events"])
    # Drafting is the business's own work: her history starts when the invoice was sent.
    assert [
        (e["kind"], e["number"], e["amount"], e["method"], e["status"]) for e in body["events"]
    ] == [
        ("sent", books.sent.number, None, None, None),
        ("payment_recorded", None, "30.00", "bank_transfer", None),
        ("status_changed", None, None, None, "partially_paid"),
        ("payment_recorded", None, "20.00", "sandbox", None),
    ]


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_staff_read_a_sent_invoice_in_the_full_shape(
    as_: Callable[[str], Api], books: Books, persona: str, admin: User, staff: User
) -> None:
    body = as_(persona).get(f"/api/projects/{books.project.pk}/invoices/{books.sent.pk}").body
    assert keys(body) == STAFF_INVOICE_DETAIL
    assert [keys(p) for p in body["payments"]] == [STAFF_PAYMENT] * 2
    manual = body["payments"][0]
    assert (manual["note"], manual["recorded_by_id"]) == (NOTE, admin.pk)
    assert body["payments"][1]["provider_reference"] == books.sent.provider_reference
    assert body["stripe_payment_intent_id"] is None  # a sandbox invoice has no Stripe intent
    assert body["payment_gateway"] == "sandbox"
    assert [keys(e) for e in body["events"]] == [STAFF_EVENT] * len(body["events"])
    assert [(e["kind"], e["actor_email"]) for e in body["events"]] == [
        ("created", staff.email),
        ("sent", admin.email),
        ("payment_recorded", admin.email),
        ("status_changed", admin.email),
        ("payment_recorded", None),
    ]
    assert body["events"][-1]["details"]["source"] == f"webhook {WEBHOOK_ID}"


# --- the global invoice list -------------------------------------------------------------


def test_a_customer_lists_invoices_in_the_customer_shape(
    as_: Callable[[str], Api], books: Books
) -> None:
    body = as_("alice").get("/api/invoices").body
    assert keys(body) == {"items", "next_cursor", "totals"}
    assert [i["id"] for i in body["items"]] == [books.cancelled_sent.pk, books.sent.pk]
    assert [keys(i) for i in body["items"]] == [CUSTOMER_INVOICE] * 2
    assert body["totals"] == [
        {
            "currency": "USD",
            "outstanding_amount": "50.00",
            "overdue_amount": "0.00",
            "paid_amount": "50.00",
            "credit_owed_amount": "0.00",
        }
    ]
    assert [keys(t) for t in body["totals"]] == [CUSTOMER_TOTALS]


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_staff_list_invoices_in_the_full_shape(
    as_: Callable[[str], Api], books: Books, persona: str
) -> None:
    body = as_(persona).get("/api/invoices").body
    assert len(body["items"]) == 4
    assert [keys(i) for i in body["items"]] == [STAFF_INVOICE] * 4
    assert [keys(t) for t in body["totals"]] == [STAFF_TOTALS]
    assert (body["totals"][0]["draft_count"], body["totals"][0]["draft_amount"]) == (1, "300.00")


# --- drafts, sent or cancelled -----------------------------------------------------------


def test_a_cancelled_draft_that_was_never_sent_does_not_exist_for_a_customer(
    as_: Callable[[str], Api], books: Books
) -> None:
    alice = as_("alice")
    path = f"/api/projects/{books.project.pk}/invoices"
    with unchanged():
        response = alice.get(f"{path}/{books.cancelled_draft.pk}")
    assert (response.status, response.body.get("code")) == (404, "invoice_not_found")
    assert books.cancelled_draft.pk not in [i["id"] for i in alice.get(path).body["items"]]
    assert books.cancelled_draft.pk not in [
        i["id"] for i in alice.get("/api/invoices?status=cancelled").body["items"]
    ]
    # Staff still find it.
    assert as_("staff").get(f"{path}/{books.cancelled_draft.pk}").status == 200


def test_a_cancelled_invoice_that_was_sent_stays_visible_to_its_customer(
    as_: Callable[[str], Api], books: Books
) -> None:
    alice = as_("alice")
    body = alice.get(f"/api/projects/{books.project.pk}/invoices/{books.cancelled_sent.pk}").body
    assert (body["number"], body["status"]) == (books.cancelled_sent.number, "cancelled")
    # She is told it was cancelled and credited, not the reason the admin wrote down.
    note = books.cancelled_sent.credit_notes.get()
    assert [(e["kind"], e["number"]) for e in body["events"]] == [
        ("sent", books.cancelled_sent.number),
        ("credited", note.number),
        ("cancelled", None),
    ]
    assert all("reason" not in e for e in body["events"])
    cancelled = alice.get("/api/invoices?status=cancelled").body["items"]
    assert [i["number"] for i in cancelled] == [books.cancelled_sent.number]


def signed_in(user: User) -> Client:
    client = Client()
    response = client.post("/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


# --- the project page ----------------------------------------------------------------------


def test_a_customers_project_page_shows_only_what_she_was_sent(
    books: Books, admin: User, alice: User
) -> None:
    path = f"/projects/{books.project.pk}/"
    page = signed_in(alice).get(path).content.decode()
    assert str(books.sent.number) in page
    assert str(books.cancelled_sent.number) in page
    assert '<span class="muted">Draft</span>' not in page
    assert "In draft" not in page
    # Not yet billed: $1,000 less the $100 she was invoiced; the $300 draft is not hers yet.
    assert "$900.00" in page
    assert "$600.00" not in page

    staff_page = signed_in(admin).get(f"{path}financials").content.decode()
    # Both unsent invoices: the draft, and the cancelled draft that never went out.
    assert staff_page.count(">Draft</a>") == 1
    assert staff_page.count(">Never sent</a>") == 1
    assert "$600.00" in staff_page
