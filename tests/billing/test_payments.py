"""Recording payments by hand: partial payments, statuses, the receipt, refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.helpers import REFUSED_ADMIN_ONLY, AfterCommit, Api, unchanged
from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def sent_invoice(project: Project, admin: User, position: int = 1) -> Invoice:
    return invoice_send(actor=admin, invoice_id=draft_for(project, position, admin).pk)


def pay_path(invoice: Invoice) -> str:
    return f"/api/projects/{invoice.project_id}/invoices/{invoice.pk}/payments"


TODAY = timezone.localdate().isoformat()


PAYMENT_BODY = {
    "amount": "100.00",
    "method": "bank_transfer",
    "received_on": TODAY,
    "reference": "BACS-123",
    "note": "First part",
}


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_ADMIN_ONLY)
def test_who_may_not_record_a_payment(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    persona: str,
    status: int,
    code: str,
) -> None:
    invoice = sent_invoice(project_a, admin)
    api = as_(persona)
    with unchanged():
        response = api.post(pay_path(invoice), PAYMENT_BODY)
    assert response.status == status
    assert response.body["code"] == code


def test_only_an_admin_records_a_payment(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    invoice = sent_invoice(project_a, admin)
    response = as_("admin").post(pay_path(invoice), PAYMENT_BODY)
    assert response.status == 201
    assert response.body["payment"] == {
        **response.body["payment"],
        "amount": "100.00",
        "currency": "USD",
        "method": "bank_transfer",
        "reference": "BACS-123",
        "received_on": TODAY,
        "recorded_by_id": admin.pk,
        "note": "First part",
    }
    assert (
        response.body["invoice"]["status"],
        response.body["invoice"]["amount_paid"],
        response.body["invoice"]["amount_due"],
    ) == ("partially_paid", "100.00", "200.00")
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PARTIALLY_PAID, Decimal("100"))


def test_paying_the_rest_makes_it_paid_and_sends_one_receipt(
    as_: Callable[[str], Api], project_a: Project, admin: User, after_commit: AfterCommit
) -> None:
    invoice = sent_invoice(project_a, admin)
    api = as_("admin")
    with after_commit(execute=True):
        api.post(pay_path(invoice), {"amount": "100.00", "method": "cash", "received_on": TODAY})
        paid = api.post(
            pay_path(invoice), {"amount": "200.00", "method": "check", "received_on": TODAY}
        )

    assert paid.body["invoice"]["status"] == "paid"
    assert paid.body["invoice"]["amount_due"] == "0.00"
    assert paid.body["invoice"]["paid_at"] is not None
    receipts = [m for m in mail.outbox if m.subject.startswith("Receipt")]
    assert len(receipts) == 1
    assert str(invoice.number) in str(receipts[0].subject)

    detail = api.get(f"/api/projects/{project_a.pk}/invoices/{invoice.pk}").body
    assert [p["amount"] for p in detail["payments"]] == ["100.00", "200.00"]
    summary = api.get(f"/api/projects/{project_a.pk}/invoices").body["summary"]
    assert (summary["paid_amount"], summary["outstanding_amount"]) == ("300.00", "0.00")
    totals = api.get("/api/invoices").body["totals"][0]
    assert (totals["paid_amount"], totals["outstanding_amount"]) == ("300.00", "0.00")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": "300.01", "method": "cash", "received_on": TODAY}, 422, "amount_exceeds_due"),
        ({"amount": "0", "method": "cash", "received_on": TODAY}, 422, "amount_not_positive"),
        ({"amount": "-5", "method": "cash", "received_on": TODAY}, 422, "validation_error"),
        ({"amount": "1.001", "method": "cash", "received_on": TODAY}, 422, "amount_precision"),
        ({"amount": "10", "method": "stripe", "received_on": TODAY}, 422, "payment_method_invalid"),
        ({"amount": "10", "method": "barter", "received_on": TODAY}, 422, "payment_method_invalid"),
        (
            {"amount": "10", "method": "cash", "received_on": "2999-01-01"},
            422,
            "received_on_future",
        ),
        ({"amount": "10", "method": "cash"}, 422, "validation_error"),
        (
            {"amount": "10", "method": "cash", "received_on": TODAY, "currency": "EUR"},
            422,
            "validation_error",
        ),
    ],
)
def test_bad_payments_are_refused_and_nothing_is_recorded(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    body: dict[str, object],
    status: int,
    code: str,
) -> None:
    invoice = sent_invoice(project_a, admin)
    api = as_("admin")
    with unchanged():
        response = api.post(pay_path(invoice), body)
    assert (response.status, response.body["code"]) == (status, code)


def test_drafts_cancelled_and_paid_invoices_take_no_payments(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    cancelled = sent_invoice(project_a, admin, 2)
    api = as_("admin")
    api.post(
        f"/api/projects/{project_a.pk}/invoices/{cancelled.pk}/cancel", {"reason": "Wrong amount"}
    )
    paid = sent_invoice(project_a, admin, 3)
    api.post(pay_path(paid), {"amount": "400.00", "method": "cash", "received_on": TODAY})
    body = {"amount": "1.00", "method": "cash", "received_on": TODAY}
    for invoice in (draft, cancelled, paid):
        with unchanged():
            response = api.post(pay_path(invoice), body)
        assert (response.status, response.body["code"]) == (409, "invoice_not_payable")


def test_a_reference_is_recorded_once(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    invoice = sent_invoice(project_a, admin)
    api = as_("admin")
    body = {
        "amount": "10.00",
        "method": "bank_transfer",
        "received_on": TODAY,
        "reference": "BACS-9",
    }
    assert api.post(pay_path(invoice), body).status == 201
    with unchanged():
        again = api.post(pay_path(invoice), body)
    assert (again.status, again.body["code"]) == (409, "payment_reference_taken")


def test_a_partial_payment_after_the_due_date_leaves_it_overdue(
    project_a: Project, admin: User
) -> None:
    invoice = sent_invoice(project_a, admin)
    later = timezone.now() + timedelta(days=20)
    recorded = payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal("50.00"),
        method="cash",
        received_on=timezone.localdate(later),
        now=later,
    )
    assert recorded.invoice.status == InvoiceStatus.OVERDUE
    assert recorded.invoice.amount_due == Decimal("250.00")
    paid = payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal("250.00"),
        method="cash",
        received_on=timezone.localdate(later),
        now=later,
    )
    assert paid.invoice.status == InvoiceStatus.PAID
