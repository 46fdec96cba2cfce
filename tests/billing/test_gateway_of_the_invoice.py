"""An invoice is handled by the gateway it was sent with, whatever is configured today;
and the sandbox takes test cards only while it is allowed now."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.fakes.stripe_server import API_KEY, FakeStripe, FakeStripeServer
from tests.helpers import AfterCommit, Api, unchanged
from tranche.accounts.models import User
from tranche.billing.models import Invoice
from tranche.billing.services.reconcile import reconcile_payments
from tranche.billing.services.sending import invoice_send
from tranche.billing.tasks import sync_payment_intent
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def cancel_path(invoice: Invoice) -> str:
    return f"/api/projects/{invoice.project_id}/invoices/{invoice.pk}/cancel"


def pay_link(invoice: Invoice) -> str:
    assert invoice.pay_token
    return f"/pay/{invoice.pay_token}"


@pytest.fixture
def sandbox_invoice_then_stripe(
    project_a: Project, admin: User, settings: Any
) -> Iterator[tuple[Invoice, FakeStripe]]:
    """An invoice sent from the sandbox; then the installation restarts with Stripe
    configured and PAYMENTS_SANDBOX off."""
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    assert invoice.payment_gateway == "sandbox"
    with FakeStripeServer() as fake:
        settings.STRIPE_SECRET_KEY = API_KEY
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_TIMEOUT_SECONDS = 1
        settings.PAYMENTS_SANDBOX = False
        yield invoice, fake


@pytest.fixture
def stripe_invoice_then_no_stripe(
    project_a: Project, admin: User, fake_stripe: FakeStripe, settings: Any
) -> tuple[Invoice, FakeStripe]:
    """An invoice sent through Stripe, over two hours ago; then the installation restarts
    without a Stripe key (on the sandbox)."""
    invoice = invoice_send(
        actor=admin,
        invoice_id=draft_for(project_a, 1, admin).pk,
        now=timezone.now() - timedelta(hours=2),
    )
    assert invoice.payment_gateway == "stripe"
    settings.STRIPE_SECRET_KEY = ""
    return invoice, fake_stripe


def test_after_leaving_the_sandbox_an_old_sandbox_invoice_takes_no_test_card(
    sandbox_invoice_then_stripe: tuple[Invoice, FakeStripe],
) -> None:
    invoice, fake = sandbox_invoice_then_stripe

    with unchanged():
        response = Client().post(
            pay_link(invoice), {"card_number": "4242 4242 4242 4242"}, follow=True
        )

    page = response.content.decode()
    assert "issued in test mode (the sandbox), which is switched off now" in page
    assert "card_number" not in page
    assert "Sandbox — no real money" not in page
    assert fake.requests == []


def test_a_sandbox_invoice_is_synced_and_cancelled_without_asking_stripe(
    sandbox_invoice_then_stripe: tuple[Invoice, FakeStripe], as_: Callable[[str], Api]
) -> None:
    invoice, fake = sandbox_invoice_then_stripe

    sync_payment_intent.enqueue(invoice.pk)
    response = as_("admin").post(cancel_path(invoice), {"reason": "Issued by mistake"})

    assert response.status == 200
    assert response.body["status"] == "cancelled"
    assert fake.requests == []


def test_a_stripe_invoice_is_cancelled_at_stripe_or_not_at_all(
    stripe_invoice_then_no_stripe: tuple[Invoice, FakeStripe],
    as_: Callable[[str], Api],
    settings: Any,
    after_commit: AfterCommit,
) -> None:
    invoice, fake = stripe_invoice_then_no_stripe
    api = as_("admin")

    with unchanged():
        refused = api.post(cancel_path(invoice), {"reason": "Wrong customer"})
    assert (refused.status, refused.body["code"]) == (502, "payment_provider_unconfigured")
    assert "sent through Stripe, but Stripe is not configured now" in refused.body["detail"]
    assert fake.cancels == []

    settings.STRIPE_SECRET_KEY = API_KEY
    with after_commit(execute=True):
        cancelled = api.post(cancel_path(invoice), {"reason": "Wrong customer"})
    assert (cancelled.status, cancelled.body["status"]) == (200, "cancelled")
    assert fake.cancels == [invoice.provider_reference]


def test_without_stripe_the_pay_page_of_a_stripe_invoice_offers_no_way_to_pay(
    stripe_invoice_then_no_stripe: tuple[Invoice, FakeStripe],
) -> None:
    invoice, _ = stripe_invoice_then_no_stripe
    with unchanged():
        page = Client().get(pay_link(invoice)).content.decode()
    assert "js.stripe.com" not in page
    assert "card_number" not in page
    assert "Online payment is unavailable right now. Please try again in a few minutes." in page


def test_without_stripe_reconcile_says_it_cannot_ask_about_a_stripe_invoice(
    stripe_invoice_then_no_stripe: tuple[Invoice, FakeStripe],
) -> None:
    invoice, _ = stripe_invoice_then_no_stripe
    with unchanged():
        checked, lines = reconcile_payments()
    assert checked == 1
    assert lines == [
        f"{invoice.number}: could not ask the provider (This invoice was sent through Stripe, "
        "but Stripe is not configured now (STRIPE_SECRET_KEY is not set), so its payment "
        "cannot be reached. Nothing was changed.)"
    ]
