from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ninja import Schema
from pydantic import Field

from tranche.core.money import Money
from tranche.core.schemas import (
    Flag,
    Id,
    Input,
    MoneyIn,
    Percentage,
    Quantity,
    Text200,
    Text500,
)
from tranche.core.tax_schemas import TaxLineOut, tax_lines_out
from tranche.sales.models import Quote
from tranche.sales.services import quote_terms_of


def format_percentage(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


class QuoteLineIn(Input):
    description: Text500
    quantity: Quantity
    unit_price: MoneyIn
    # A rate offered now (GET /api/tax-rates?active=true); left out or null: no tax.
    tax_rate_id: Id | None = None


class ScheduleItemIn(Input):
    title: Text200
    is_billable: Flag = False
    billing_percentage: Percentage | None = None
    # A deposit: billed as soon as the quote is accepted.
    bill_on_acceptance: Flag = False


class QuoteIn(Input):
    customer_id: Id
    title: Text200
    currency: str = Field(min_length=3, max_length=3)
    lines: list[QuoteLineIn] = Field(min_length=1, max_length=500)
    schedule: list[ScheduleItemIn] = Field(default_factory=list, max_length=100)


class QuoteLineOut(Schema):
    position: int
    description: str
    quantity: str
    unit_price: str
    line_total: str
    tax_rate_id: int | None
    # The rate's copy as it was when the line was saved (blank and "0.00": no tax).
    tax_name: str
    tax_percentage: str


class ScheduleItemOut(Schema):
    position: int
    title: str
    is_billable: bool
    billing_percentage: str | None
    bill_on_acceptance: bool


class QuoteOut(Schema):
    id: int
    customer_id: int
    title: str
    currency: str
    status: str
    # The price basis: the sum of the line totals, before tax when `price_mode` is
    # "exclusive", including it when "inclusive".
    total: str
    price_mode: str
    net: str
    tax: str
    gross: str
    # Net, tax and gross per rate (for the customer's current tax treatment).
    tax_lines: list[TaxLineOut]
    lines: list[QuoteLineOut]
    schedule: list[ScheduleItemOut]
    project_id: int | None
    created_at: datetime
    accepted_at: datetime | None

    @staticmethod
    def of(quote: Quote) -> QuoteOut:
        """`quote` comes from `quote_list`/`access_quote`, which annotate `project_pk`."""
        tax = quote_terms_of(quote).tax
        zero = Money.zero(quote.currency).api
        return QuoteOut(
            id=quote.pk,
            customer_id=quote.customer_id,
            title=quote.title,
            currency=quote.currency,
            status=quote.status,
            total=quote.price.api,
            price_mode=quote.price_mode,
            net=tax.net.api if tax else zero,
            tax=tax.tax.api if tax else zero,
            gross=tax.gross.api if tax else zero,
            tax_lines=tax_lines_out(tax),
            lines=[
                QuoteLineOut(
                    position=line.position,
                    description=line.description,
                    quantity=f"{line.quantity.normalize():f}",
                    unit_price=line.each.api,
                    line_total=line.subtotal.api,
                    tax_rate_id=line.tax_rate_id,
                    tax_name=line.tax_name,
                    tax_percentage=f"{line.tax_percentage:.2f}",
                )
                for line in quote.lines.all()
            ],
            schedule=[
                ScheduleItemOut(
                    position=item.position,
                    title=item.title,
                    is_billable=item.is_billable,
                    billing_percentage=format_percentage(item.billing_percentage),
                    bill_on_acceptance=item.bill_on_acceptance,
                )
                for item in quote.schedule.all()
            ],
            project_id=quote.project_pk,  # type: ignore[attr-defined]
            created_at=quote.created_at,
            accepted_at=quote.accepted_at,
        )


class QuotePage(Schema):
    items: list[QuoteOut]
    count: int
