"""The JSON shapes of credit notes: the staff shape, and the customer's allow-listed one
(DESIGN.md rule 15: no staff identities, no internal timestamps)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ninja import Schema
from pydantic import Field

from tranche.billing.models import CreditNote, CreditNoteTaxLine
from tranche.billing.schemas import InvoiceOut, PaymentOut
from tranche.billing.selectors import CreditNotePage
from tranche.core.money import Money
from tranche.core.schemas import Flag, Input, MoneyIn, ReceivedOn, Text500


class CreditNoteIn(Input):
    amount: MoneyIn
    reason: Text500


class CreditNoteFilters(Schema):
    invoice_id: int | None = None
    limit: int = Field(25, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200)


class CreditNoteLineOut(Schema):
    name: str
    rate_percentage: str
    percentage: str
    net_amount: str
    tax_amount: str
    gross_amount: str

    @staticmethod
    def of(line: CreditNoteTaxLine, currency: str) -> CreditNoteLineOut:
        return CreditNoteLineOut(
            name=line.name,
            rate_percentage=f"{line.rate_percentage:.2f}",
            percentage=f"{line.percentage:.2f}",
            net_amount=Money(line.net_amount, currency).api,
            tax_amount=Money(line.tax_amount, currency).api,
            gross_amount=Money(line.gross_amount, currency).api,
        )


def _values(note: CreditNote) -> dict[str, Any]:
    return dict(
        id=note.pk,
        number=note.number,
        kind=note.kind,
        invoice_id=note.invoice_id,
        invoice_number=note.invoice.number or "",
        project_id=note.invoice.project_id,
        customer_id=note.customer_id,
        customer_name=note.customer_name,
        currency=note.currency,
        amount=note.total.api,
        net_amount=note.net.api,
        tax_amount=note.tax.api,
        reason=note.reason,
        issue_date=note.issue_date,
        lines=[CreditNoteLineOut.of(line, note.currency) for line in note.tax_lines.all()],
        issued_at=note.issued_at,
        issued_by_id=note.issued_by_id,
        emailed_at=note.emailed_at,
    )


class CustomerCreditNoteOut(Schema):
    id: int
    number: str
    kind: str
    invoice_id: int
    invoice_number: str
    project_id: int
    currency: str
    amount: str
    net_amount: str
    tax_amount: str
    reason: str
    issue_date: date
    lines: list[CreditNoteLineOut]

    @staticmethod
    def of(note: CreditNote) -> CustomerCreditNoteOut:
        values = _values(note)
        return CustomerCreditNoteOut(
            **{name: values[name] for name in CustomerCreditNoteOut.model_fields}
        )


class CreditNoteOut(CustomerCreditNoteOut):
    customer_id: int
    customer_name: str
    issued_at: datetime
    issued_by_id: int | None
    emailed_at: datetime | None

    @staticmethod
    def of(note: CreditNote) -> CreditNoteOut:
        values = _values(note)
        return CreditNoteOut(**{name: values[name] for name in CreditNoteOut.model_fields})


class CreditNotePageOut(Schema):
    items: list[CreditNoteOut]
    next_cursor: str | None

    @staticmethod
    def of(page: CreditNotePage) -> CreditNotePageOut:
        return CreditNotePageOut(
            items=[CreditNoteOut.of(n) for n in page.items], next_cursor=page.next_cursor
        )


class CustomerCreditNotePageOut(Schema):
    items: list[CustomerCreditNoteOut]
    next_cursor: str | None

    @staticmethod
    def of(page: CreditNotePage) -> CustomerCreditNotePageOut:
        return CustomerCreditNotePageOut(
            items=[CustomerCreditNoteOut.of(n) for n in page.items], next_cursor=page.next_cursor
        )


class RefundIn(Input):
    amount: MoneyIn
    method: str = Field(min_length=1, max_length=20)
    paid_on: ReceivedOn
    reason: Text500
    # True: the customer owes less (a credit note of the same amount is issued with it).
    credit_invoice: Flag = False


class RefundOut(Schema):
    payment: PaymentOut
    invoice: InvoiceOut
    credit_note: CreditNoteOut | None
