"""Receipts: one per payment received on an invoice, saying what was paid, how, when, and
what is left to pay. The same document for staff, the customer's portal and the pay page;
like the invoice it holds only what the customer may read (no staff names, no notes, no
provider ids, no reference an admin typed: the customer's allow-list has none of them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.template.loader import render_to_string

from tranche.accounts.business import business_profile
from tranche.billing.models import Invoice, Payment
from tranche.billing.pdf import document_context, html_to_pdf
from tranche.core.errors import NotFound
from tranche.core.money import ZERO, Money


@dataclass(frozen=True)
class Receipt:
    """What a receipt says about one payment."""

    number: str  # "INV-2026-00003-R2": the invoice's number and the payment's place on it
    invoice: Invoice
    payment: Payment
    business_name: str
    business_address: str
    business_tax_id: str
    method: str  # how it was paid, as a person says it ("Bank transfer")
    received_on: date
    amount: Money  # this payment
    paid_to_date: Money  # every payment up to and including this one
    left_to_pay: Money  # what the invoice still asked for after this payment


def receipt_of(payment: Payment) -> Receipt:
    invoice = payment.invoice
    mark = (payment.created_at, payment.pk)
    earlier = [p for p in invoice.payments.all() if (p.created_at, p.pk) <= mark]
    ordinal = sum(1 for p in earlier if p.amount > 0)
    paid = sum((p.amount for p in earlier), ZERO)
    business = business_profile()
    return Receipt(
        number=f"{invoice.number or invoice.pk}-R{ordinal}",
        invoice=invoice,
        payment=payment,
        business_name=business.name,
        business_address=business.address,
        business_tax_id=business.tax_id,
        method=payment.get_method_display(),
        received_on=payment.received_on,
        amount=payment.money,
        paid_to_date=Money(paid, invoice.currency),
        left_to_pay=Money(max(invoice.amount - paid, ZERO), invoice.currency),
    )


def receipt_payment(invoice: Invoice, payment_id: int) -> Payment:
    """The payment of `invoice` (already scoped to the caller) that has a receipt: money
    received, not a refund. 404 alike for another invoice's payment and a refund."""
    found = invoice.payments.filter(pk=payment_id, amount__gt=0).first() if payment_id > 0 else None
    if found is None:
        raise NotFound(f"Payment {payment_id} does not exist.", code="payment_not_found")
    found.invoice = invoice
    return found


def latest_receipt_payment(invoice: Invoice) -> Payment | None:
    """The last money received on `invoice` (what the pay page's "Download receipt" gives)."""
    found = invoice.payments.filter(amount__gt=0).order_by("-created_at", "-id").first()
    if found is not None:
        found.invoice = invoice
    return found


def receipt_html(payment: Payment) -> str:
    receipt = receipt_of(payment)
    return render_to_string(
        "billing/receipt_document.html",
        {**document_context(), "receipt": receipt, "invoice": receipt.invoice},
    )


def receipt_pdf(payment: Payment) -> bytes:
    return html_to_pdf(receipt_html(payment))


def receipt_filename(payment: Payment) -> str:
    return f"receipt-{receipt_of(payment).number}.pdf"
