"""What a card is charged online is always the amount due now: the PaymentIntent follows
payments recorded by hand and refunds, is cancelled when a transfer settles the invoice,
and the pay page never hands out an intent for another amount. Money paid twice is a
credit owed, never a negative amount due."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.billing import stripe_events as events
from tests.billing.helpers import draft_for
from tests.factories import PASSWORD, make_project
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import AfterCommit, Api, unchanged
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.services.periodic import run_periodic
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate().isoformat()


@pytest.fixture
def big_invoice(admin: User, customer_a: Customer, fake_stripe: FakeStripe) -> Invoice:
    """The review's invoice: 3,600.05 sent through Stripe with its PaymentIntent."""
    project = make_project(actor=admin, customer=customer_a, total="3600.05", percentages=("100",))
    return invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)


def intent_of(fake: FakeStripe, invoice: Invoice) -> dict[str, Any]:
    assert invoice.provider_reference
    return fake.intents[invoice.provider_reference]


def pay_link(invoice: Invoice) -> str:
    assert invoice.pay_token
    return f"/pay/{invoice.pay_token}"


def payments_path(invoice: Invoice) -> str:
    return f"/api/projects/{invoice.project_id}/invoices/{invoice.pk}/payments"


def transfer(amount: str, reference: str = "") -> dict[str, str]:
    return {
        "amount": amount,
        "method": "bank_transfer",
        "received_on": TODAY,
        "reference": reference,
    }


def test_after_a_partial_transfer_the_card_is_charged_only_what_remains(
    big_invoice: Invoice,
    fake_stripe: FakeStripe,
    as_: Callable[[str], Api],
    after_commit: AfterCommit,
) -> None:
    intent = intent_of(fake_stripe, big_invoice)
    assert intent["amount"] == 360005
    with after_commit(execute=True):
        recorded = as_("admin").post(payments_path(big_invoice), transfer("1000.00", "BACS-77"))
    assert recorded.status == 201
    assert intent["amount"] == 260005

    customer = Client()
    page = customer.get(pay_link(big_invoice)).content.decode()
    assert "Pay $2,600.05" in page
    assert intent["client_secret"] in page

    # The customer confirms the intent at Stripe: it charges what it asks now.
    intent.update(status="succeeded", amount_received=intent["amount"])
    customer.get(f"{pay_link(big_invoice)}/done")
    big_invoice.refresh_from_db()
    assert (big_invoice.status, big_invoice.amount_paid) == (InvoiceStatus.PAID, Decimal("3600.05"))
    assert (big_invoice.amount_due, big_invoice.credit_owed) == (Decimal(0), Decimal(0))
    changed = big_invoice.events.get(kind="intent_amount_changed")
    assert changed.details == {
        "provider_reference": intent["id"],
        "old": "3600.05",
        "new": "2600.05",
    }


def test_the_pay_page_brings_a_stale_intent_to_the_amount_due_before_handing_it_out(
    big_invoice: Invoice, fake_stripe: FakeStripe, as_: Callable[[str], Api]
) -> None:
    # The transfer is recorded but its after-commit update has not reached Stripe.
    as_("admin").post(payments_path(big_invoice), transfer("1000.00"))
    intent = intent_of(fake_stripe, big_invoice)
    assert intent["amount"] == 360005

    page = Client().get(pay_link(big_invoice)).content.decode()

    assert intent["amount"] == 260005
    assert "Pay $2,600.05" in page
    assert intent["client_secret"] in page


def test_when_the_intent_cannot_be_updated_the_page_offers_no_way_to_pay(
    big_invoice: Invoice, fake_stripe: FakeStripe, as_: Callable[[str], Api]
) -> None:
    as_("admin").post(payments_path(big_invoice), transfer("1000.00"))
    intent = intent_of(fake_stripe, big_invoice)
    fake_stripe.fail_updates = True

    with unchanged():
        response = Client().get(pay_link(big_invoice))

    page = response.content.decode()
    assert response.status_code == 200
    assert intent["amount"] == 360005
    assert intent["client_secret"] not in page
    assert "payment-element" not in page
    assert "js.stripe.com" not in page
    assert "Online payment is unavailable right now. Please try again in a few minutes." in page
    assert "$2,600.05" in page


def test_a_transfer_that_settles_the_invoice_cancels_its_intent(
    big_invoice: Invoice,
    fake_stripe: FakeStripe,
    as_: Callable[[str], Api],
    after_commit: AfterCommit,
) -> None:
    with after_commit(execute=True):
        recorded = as_("admin").post(payments_path(big_invoice), transfer("3600.05"))
    assert recorded.body["invoice"]["status"] == "paid"
    assert fake_stripe.cancels == [big_invoice.provider_reference]
    assert intent_of(fake_stripe, big_invoice)["status"] == "canceled"
    cancelled = big_invoice.events.get(kind="intent_cancelled")
    assert cancelled.details["provider_reference"] == big_invoice.provider_reference


def test_after_a_refund_the_paid_intent_is_not_handed_out_again(
    big_invoice: Invoice, fake_stripe: FakeStripe, settings: Any, after_commit: AfterCommit
) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [events.WEBHOOK_SECRET]
    intent = intent_of(fake_stripe, big_invoice)
    intent.update(status="succeeded", amount_received=360005)
    for payload in (
        events.intent_succeeded(intent["id"], 360005),
        events.charge_refunded(intent["id"], 100000),
    ):
        signature = events.sign(payload)
        with after_commit(execute=True):  # the intent sync the refund queues runs too
            response = Client().post(
                "/api/webhooks/stripe",
                payload,
                content_type="application/json",
                headers={"Stripe-Signature": signature},
            )
        assert response.status_code == 200
    big_invoice.refresh_from_db()
    assert big_invoice.amount_due == Decimal("1000.00")

    with unchanged():
        page = Client().get(pay_link(big_invoice)).content.decode()

    assert intent["client_secret"] not in page
    assert "payment-element" not in page
    assert (
        "Online payment is not available for the amount now due ($1,000.00). Please contact "
        "Harbour Build Co to pay it." in page
    )


def test_money_paid_twice_is_a_credit_owed_on_the_invoice_and_in_financials(
    project_a: Project,
    admin: User,
    staff: User,
    fake_stripe: FakeStripe,
    as_: Callable[[str], Api],
    settings: Any,
    after_commit: AfterCommit,
) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [events.WEBHOOK_SECRET]
    twice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    # Another invoice of the project, for 300.00, still unpaid.
    invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk)
    # The customer pays by card while the admin records their bank transfer for it too.
    intent = intent_of(fake_stripe, twice)
    intent.update(status="succeeded", amount_received=30000)
    admin_api = as_("admin")
    with after_commit(execute=True):
        admin_api.post(payments_path(twice), transfer("300.00", "BACS-5"))
    payload = events.intent_succeeded(intent["id"], 30000)
    Client().post(
        "/api/webhooks/stripe",
        payload,
        content_type="application/json",
        headers={"Stripe-Signature": events.sign(payload)},
    )

    detail = admin_api.get(f"/api/projects/{project_a.pk}/invoices/{twice.pk}").body
    assert (detail["status"], detail["amount_paid"]) == ("paid", "600.00")
    assert detail["amount_due"] == "0.00"
    assert detail["credit_owed"] == "300.00"
    assert [e["details"] for e in detail["events"] if e["kind"] == "credit_owed"] == [
        {"amount": "300.00"}
    ]
    totals = admin_api.get("/api/invoices").body["totals"]
    assert totals == [
        {
            "currency": "USD",
            "draft_count": 0,
            "draft_amount": "0.00",
            "outstanding_amount": "300.00",
            "overdue_amount": "0.00",
            "paid_amount": "600.00",
            "credit_owed_amount": "300.00",
        }
    ]
    summary = admin_api.get(f"/api/projects/{project_a.pk}/invoices").body["summary"]
    # The other invoice's 300.00 is still owed: the overpayment does not net it away.
    assert (summary["outstanding_amount"], summary["credit_owed_amount"]) == ("300.00", "300.00")

    staff_pages = Client()
    staff_pages.post("/login/", {"username": staff.email, "password": PASSWORD})
    financials = staff_pages.get("/financials/").content.decode()
    assert "Credit owed to customers" in financials
    assert "Credit owed $300.00" in financials
    assert "-$300.00" not in financials
    pay_page = Client().get(pay_link(twice)).content.decode()
    assert "You have paid $300.00 more than this invoice asks for." in pay_page


def test_an_intent_stripe_could_not_update_is_brought_in_step_by_the_next_periodic_pass(
    big_invoice: Invoice,
    fake_stripe: FakeStripe,
    as_: Callable[[str], Api],
    after_commit: AfterCommit,
) -> None:
    """Stripe is down when the transfer is recorded: the after-commit sync fails, and the
    periodic pass keeps trying until the intent charges what is due."""
    fake_stripe.fail_updates = True
    with after_commit(execute=True):
        as_("admin").post(payments_path(big_invoice), transfer("1000.00"))
    big_invoice.refresh_from_db()
    assert intent_of(fake_stripe, big_invoice)["amount"] == 360005
    assert big_invoice.intent_out_of_step

    assert ", 0 PaymentIntent(s) brought in step, " in run_periodic()
    fake_stripe.fail_updates = False
    summary = run_periodic()

    big_invoice.refresh_from_db()
    assert intent_of(fake_stripe, big_invoice)["amount"] == 260005
    assert not big_invoice.intent_out_of_step
    assert ", 1 PaymentIntent(s) brought in step, " in summary
    assert ", 0 PaymentIntent(s) brought in step, " in run_periodic()
