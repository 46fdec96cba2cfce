"""What the customer pays is the gross: the card is charged the invoice's total with its
tax, a bank transfer of the net alone leaves the tax due, and the pay page asks for the
gross."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.fakes.stripe_server import FakeStripe
from tests.helpers import AfterCommit, Api
from tranche.accounts.models import Customer, TaxRate, TaxTreatment, User
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.sending import invoice_send
from tranche.sales.services import LineInput, ScheduleInput, quote_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def vat() -> TaxRate:
    return TaxRate.objects.create(name="VAT 20 %", percentage=Decimal(20))


def taxed_invoice(admin: User, customer: Customer, vat: TaxRate) -> Invoice:
    """$1,000.01 before tax at VAT 20 %, billed at once: $200.00 tax (200.002 rounded),
    $1,200.01 in all."""
    quote = quote_create(
        actor=admin,
        customer_id=customer.pk,
        title="Loft conversion",
        currency="USD",
        lines=[LineInput("Loft conversion", Decimal(1), Decimal("1000.01"), vat.pk)],
        schedule=[ScheduleInput("Done", True, Decimal(100))],
    )
    project = quote_accept(actor=admin, quote_id=quote.pk)
    return invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)


def test_the_card_is_charged_the_gross_and_the_pay_page_asks_for_it(
    admin: User, customer_a: Customer, vat: TaxRate, fake_stripe: FakeStripe
) -> None:
    invoice = taxed_invoice(admin, customer_a, vat)

    assert (invoice.contract_amount, invoice.net_amount, invoice.tax_amount, invoice.amount) == (
        Decimal("1000.01"),
        Decimal("1000.01"),
        Decimal("200.00"),
        Decimal("1200.01"),
    )
    assert invoice.provider_reference is not None
    assert fake_stripe.intents[invoice.provider_reference]["amount"] == 120001
    page = Client().get(f"/pay/{invoice.pay_token}").content.decode()
    assert "Pay $1,200.01" in page


def test_a_transfer_of_the_net_alone_leaves_the_tax_due_and_the_card_asks_only_for_that(
    admin: User,
    customer_a: Customer,
    vat: TaxRate,
    fake_stripe: FakeStripe,
    as_: Callable[[str], Api],
    after_commit: AfterCommit,
) -> None:
    invoice = taxed_invoice(admin, customer_a, vat)
    with after_commit(execute=True):
        recorded = as_("admin").post(
            f"/api/projects/{invoice.project_id}/invoices/{invoice.pk}/payments",
            {
                "amount": "1000.01",
                "method": "bank_transfer",
                "received_on": timezone.localdate().isoformat(),
                "reference": "BACS-1",
            },
        )
    assert recorded.status == 201
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTIALLY_PAID
    assert invoice.amount_due == Decimal("200.00")
    assert invoice.provider_reference is not None
    assert fake_stripe.intents[invoice.provider_reference]["amount"] == 20000


def test_a_reverse_charge_customer_is_charged_the_net_with_the_legal_note(
    admin: User, customer_a: Customer, vat: TaxRate, fake_stripe: FakeStripe
) -> None:
    customer_a.tax_treatment = TaxTreatment.REVERSE_CHARGE
    customer_a.save(update_fields=["tax_treatment"])

    invoice = taxed_invoice(admin, customer_a, vat)

    assert (invoice.net_amount, invoice.tax_amount, invoice.amount) == (
        Decimal("1000.01"),
        Decimal("0.00"),
        Decimal("1000.01"),
    )
    (line,) = invoice.tax_lines.all()
    assert (line.name, line.rate_percentage, line.percentage) == (
        "VAT 20 %",
        Decimal(20),
        Decimal(0),
    )
    assert invoice.tax_note.startswith("Reverse charge")
    assert invoice.provider_reference is not None
    assert fake_stripe.intents[invoice.provider_reference]["amount"] == 100001
