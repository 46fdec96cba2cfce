"""An invoice's and a payment's amounts are Money in their currency: shown at the
currency's precision on the pay page and in the emails, and never mixed with another
currency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.factories import make_project
from tests.helpers import AfterCommit
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice, InvoiceStatus, Payment
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.core.money import CurrencyMismatch, Money


def kwd(amount: str) -> Money:
    return Money(Decimal(amount), "KWD")


def test_an_invoices_amounts_are_money_in_its_currency() -> None:
    partly_paid = Invoice(
        currency="KWD",
        amount=Decimal("1234.007"),
        amount_paid=Decimal("1000"),
        status=InvoiceStatus.PARTIALLY_PAID,
    )
    assert partly_paid.total == kwd("1234.007")
    assert partly_paid.received == kwd("1000")
    assert partly_paid.due == kwd("234.007")
    assert partly_paid.owed_back == Money.zero("KWD")
    assert (str(partly_paid.due), partly_paid.due.api) == ("KWD234.007", "234.007")

    paid_twice = Invoice(
        currency="KWD",
        amount=Decimal("1234.007"),
        amount_paid=Decimal("2468.014"),
        status=InvoiceStatus.PAID,
    )
    assert paid_twice.due == Money.zero("KWD")
    assert paid_twice.owed_back == kwd("1234.007")


def test_a_payments_amount_is_money_in_its_currency() -> None:
    refund = Payment(amount=Decimal("-12.5"), currency="KWD")
    assert refund.money == kwd("-12.5")
    assert refund.money.api == "-12.500"


def test_amounts_of_invoices_in_different_currencies_do_not_add_up() -> None:
    usd = Invoice(currency="USD", amount=Decimal("10"), amount_paid=Decimal(0))
    jpy = Invoice(currency="JPY", amount=Decimal("10"), amount_paid=Decimal(0))
    with pytest.raises(CurrencyMismatch):
        usd.due + jpy.due


@pytest.mark.django_db
def test_the_pay_page_and_the_invoice_email_show_dinars_to_three_places(
    admin: User, customer_a: Customer, after_commit: AfterCommit
) -> None:
    project = make_project(
        actor=admin, customer=customer_a, currency="KWD", total="2468.013", percentages=("50", "50")
    )
    with after_commit(execute=True):
        invoice = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    [email] = mail.outbox
    assert email.subject.startswith(
        f"Invoice {invoice.number} from Harbour Build Co: KWD1,234.007 due "
    )
    assert "Amount due: KWD1,234.007 (KWD)" in email.body
    payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal("1000"),
        method="bank_transfer",
        received_on=timezone.localdate(),
    )

    page = Client().get(f"/pay/{invoice.pay_token}").content.decode()
    assert "<dt>Invoice total</dt><dd>KWD1,234.007</dd>" in page
    assert "<dt>Paid so far</dt><dd>KWD1,000.000</dd>" in page
    assert '<dt>Amount due</dt><dd class="due">KWD234.007</dd>' in page
    assert "Pay KWD234.007" in page
