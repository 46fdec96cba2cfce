"""A reference typed for money received by hand is free text in its own column: it can
never stand in for, or block, a provider's payment, whatever it looks like."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from tests.billing import stripe_events as events
from tests.billing.helpers import draft_for
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import Api
from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceStatus, Payment
from tranche.billing.services.reconcile import reconcile_payments
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate().isoformat()


def _succeed_at_stripe(invoice: Invoice, fake: FakeStripe) -> dict[str, Any]:
    """The customer paid the invoice's intent at Stripe."""
    assert invoice.provider_reference
    intent = fake.intents[invoice.provider_reference]
    intent.update(status="succeeded", amount_received=intent["amount"])
    return intent


def by_webhook(invoice: Invoice, fake: FakeStripe) -> None:
    intent = _succeed_at_stripe(invoice, fake)
    payload = events.intent_succeeded(intent["id"], intent["amount"])
    response = Client().post(
        "/api/webhooks/stripe",
        payload,
        content_type="application/json",
        headers={"Stripe-Signature": events.sign(payload)},
    )
    assert response.status_code == 200


def by_pay_page(invoice: Invoice, fake: FakeStripe) -> None:
    _succeed_at_stripe(invoice, fake)
    assert invoice.pay_token
    Client().get(f"/pay/{invoice.pay_token}/done")


def by_reconcile(invoice: Invoice, fake: FakeStripe) -> None:
    _succeed_at_stripe(invoice, fake)
    reconcile_payments()


@pytest.mark.parametrize(
    "settle_at_stripe",
    [by_webhook, by_pay_page, by_reconcile],
    ids=["webhook", "pay page", "reconcile"],
)
def test_a_transfer_referenced_with_another_invoices_intent_id_cannot_swallow_its_payment(
    project_a: Project,
    admin: User,
    fake_stripe: FakeStripe,
    as_: Callable[[str], Api],
    settings: Any,
    settle_at_stripe: Callable[[Invoice, FakeStripe], None],
) -> None:
    settings.STRIPE_WEBHOOK_SECRETS = [events.WEBHOOK_SECRET]
    sent_at = timezone.now() - timedelta(hours=2)  # old enough for reconcile to look at it
    x = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk, now=sent_at)
    y = invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk, now=sent_at)
    assert x.provider_reference

    recorded = as_("admin").post(
        f"/api/projects/{project_a.pk}/invoices/{y.pk}/payments",
        {
            "amount": "10.00",
            "method": "bank_transfer",
            "received_on": TODAY,
            "reference": x.provider_reference,
        },
    )
    assert (recorded.status, recorded.body["payment"]["reference"]) == (201, x.provider_reference)

    settle_at_stripe(x, fake_stripe)

    x.refresh_from_db()
    y.refresh_from_db()
    assert (x.status, x.amount_paid) == (InvoiceStatus.PAID, Decimal("300.00"))
    assert list(x.payments.values_list("method", "amount", "provider_reference", "reference")) == [
        ("stripe", Decimal("300.00"), x.provider_reference, "")
    ]
    assert (y.status, y.amount_paid) == (InvoiceStatus.PARTIALLY_PAID, Decimal("10.00"))
    assert recorded.body["payment"]["provider_reference"] is None


def test_one_transfer_reference_may_pay_two_invoices(
    project_a: Project, admin: User, as_: Callable[[str], Api]
) -> None:
    api = as_("admin")
    body = {
        "amount": "300.00",
        "method": "bank_transfer",
        "received_on": TODAY,
        "reference": "BACS-ONE-FOR-BOTH",
    }
    for position in (1, 2):
        invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, position, admin).pk)
        response = api.post(f"/api/projects/{project_a.pk}/invoices/{invoice.pk}/payments", body)
        assert response.status == 201
        assert response.body["invoice"]["status"] == "paid"


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_manual_references_out_of_the_provider_column(
    project_a: Project, admin: User
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    executor = MigrationExecutor(connection)
    executor.migrate([("billing", "0002_stripeevent_payment")])
    old = executor.loader.project_state([("billing", "0002_stripeevent_payment")]).apps
    OldPayment = old.get_model("billing", "Payment")
    now = timezone.now()
    for method, amount, reference in [
        ("bank_transfer", "100.00", "BACS-1"),
        ("cash", "5.00", None),
        ("stripe", "20.00", "pi_from_stripe"),
        ("stripe", "-20.00", "refund:ch_1:20.00"),
    ]:
        OldPayment.objects.create(
            invoice_id=invoice.pk,
            amount=Decimal(amount),
            currency="USD",
            method=method,
            provider_reference=reference,
            received_on=timezone.localdate(now),
            created_at=now,
        )

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    rows = Payment.objects.order_by("pk").values_list("method", "reference", "provider_reference")
    assert list(rows) == [
        ("bank_transfer", "BACS-1", None),
        ("cash", "", None),
        ("stripe", "", "pi_from_stripe"),
        ("stripe", "", "refund:ch_1:20.00"),
    ]
