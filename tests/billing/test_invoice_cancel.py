"""Cancelling: a draft, or a sent invoice without payments (keeps its number)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core import mail

from tests.billing.helpers import draft_for
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import REFUSED_ADMIN_ONLY, AfterCommit, Api, unchanged
from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def cancel_path(invoice: Invoice) -> str:
    return f"/api/projects/{invoice.project_id}/invoices/{invoice.pk}/cancel"


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_ADMIN_ONLY)
def test_who_may_not_cancel(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    persona: str,
    status: int,
    code: str,
) -> None:
    draft = draft_for(project_a, 1, admin)
    api = as_(persona)
    with unchanged():
        response = api.post(cancel_path(draft), {"reason": "Duplicate"})
    assert response.status == status
    assert response.body["code"] == code
    assert mail.outbox == []


def test_only_an_admin_cancels(as_: Callable[[str], Api], project_a: Project, admin: User) -> None:
    draft = draft_for(project_a, 1, admin)
    response = as_("admin").post(cancel_path(draft), {"reason": "Duplicate"})
    assert response.status == 200
    assert response.body["status"] == "cancelled"
    assert response.body["number"] is None
    assert response.body["events"][-1] == {
        **response.body["events"][-1],
        "kind": "cancelled",
        "details": {"reason": "Duplicate"},
    }
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.CANCELLED
    assert mail.outbox == []


def test_a_sent_invoice_is_cancelled_at_the_provider_keeps_its_number_and_the_customer_is_told(
    as_: Callable[[str], Api],
    project_a: Project,
    admin: User,
    fake_stripe: FakeStripe,
    after_commit: AfterCommit,
) -> None:
    draft = draft_for(project_a, 1, admin)
    with after_commit(execute=True):
        invoice = invoice_send(actor=admin, invoice_id=draft.pk)
        response = as_("admin").post(cancel_path(draft), {"reason": "Agreed to bill this later"})

    assert response.status == 200
    assert response.body["status"] == "cancelled"
    assert response.body["number"] == invoice.number
    assert fake_stripe.cancels == [invoice.provider_reference]
    assert [m.subject for m in mail.outbox][
        -1
    ] == f"Invoice {invoice.number} from Harbour Build Co has been cancelled"
    told = mail.outbox[-1]
    assert f"invoice {invoice.number} ($300.00) for Kitchen for A has been cancelled" in told.body
    # The reason is the business's note (the customer's API does not show it either).
    html = str(told.alternatives[0][0])  # type: ignore[attr-defined]
    assert "Agreed to bill this later" not in told.body + html


def test_when_the_provider_cannot_cancel_the_invoice_stays_sent(
    as_: Callable[[str], Api], project_a: Project, admin: User, fake_stripe: FakeStripe
) -> None:
    draft = draft_for(project_a, 1, admin)
    invoice_send(actor=admin, invoice_id=draft.pk)
    api = as_("admin")
    fake_stripe.mode = "declined_key"
    with unchanged():
        response = api.post(cancel_path(draft), {"reason": "Oops"})
    assert (response.status, response.body["code"]) == (502, "payment_provider_error")


def test_an_invoice_with_payments_cannot_be_cancelled(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    invoice_send(actor=admin, invoice_id=draft.pk)
    Invoice.objects.filter(pk=draft.pk).update(amount_paid=100, status=InvoiceStatus.PARTIALLY_PAID)
    api = as_("admin")
    with unchanged():
        response = api.post(cancel_path(draft), {"reason": "Changed my mind"})
    assert (response.status, response.body["code"]) == (409, "invoice_has_payments")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"reason": ""}, 422),
        ({"reason": "   "}, 422),
        ({"reason": "x", "notify": False}, 422),
    ],
)
def test_a_cancellation_needs_a_reason(
    as_: Callable[[str], Api], project_a: Project, admin: User, body: dict[str, object], status: int
) -> None:
    draft = draft_for(project_a, 1, admin)
    api = as_("admin")
    with unchanged():
        assert api.post(cancel_path(draft), body).status == status


def test_cancelling_twice_is_409(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    draft = draft_for(project_a, 1, admin)
    api = as_("admin")
    api.post(cancel_path(draft), {"reason": "Duplicate"})
    with unchanged():
        again = api.post(cancel_path(draft), {"reason": "Duplicate"})
    assert (again.status, again.body["code"]) == (409, "invoice_already_cancelled")
    with unchanged():
        send = api.post(f"/api/projects/{project_a.pk}/invoices/{draft.pk}/send")
    assert (send.status, send.body["code"]) == (409, "invoice_not_draft")
