"""Tax breakdowns on the pages: one table shape (per rate: net, tax, gross; then the
totals) whether the figures come from a quote's terms (`core.tax.InvoiceTax`), an
invoice's stored tax lines, or a project's contract bases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django import template

from tranche.billing.models import Invoice
from tranche.core.money import Money
from tranche.core.tax import InvoiceTax, PriceMode, TaxRate, tax_caption

register = template.Library()


@dataclass(frozen=True)
class TaxRow:
    label: str
    caption: str
    net: Money
    tax: Money
    gross: Money


@dataclass(frozen=True)
class TaxTable:
    rows: list[TaxRow]
    net: Money
    tax: Money
    gross: Money
    inclusive: bool
    # A reverse-charge or exempt customer: every rate charged at 0 %.
    exempt: bool

    @property
    def mode_text(self) -> str:
        return "Prices include tax" if self.inclusive else "Prices exclude tax"

    @property
    def taxed(self) -> bool:
        """Any tax at all, or any named rate: worth a breakdown."""
        return self.tax.amount > 0 or any(row.label != "No tax" for row in self.rows)


def _label(name: str) -> str:
    return name or "No tax"


@register.simple_tag
def tax_table(source: InvoiceTax | Invoice | None) -> TaxTable | None:
    """`{% tax_table terms.tax as t %}` or `{% tax_table invoice as t %}`."""
    if source is None:
        return None
    if isinstance(source, InvoiceTax):
        return TaxTable(
            rows=[
                TaxRow(
                    _label(line.rate.name),
                    line.caption,
                    line.net,
                    line.tax,
                    line.gross,
                )
                for line in source.lines
            ],
            net=source.net,
            tax=source.tax,
            gross=source.gross,
            inclusive=source.mode is PriceMode.INCLUSIVE,
            exempt=source.exempt,
        )
    currency = source.currency
    return TaxTable(
        rows=[
            TaxRow(line.label, line.caption, line.net, line.tax, line.gross)
            for line in source.tax_lines.all()
        ],
        net=Money(source.net_amount, currency),
        tax=Money(source.tax_amount, currency),
        gross=source.total,
        inclusive=source.price_mode == PriceMode.INCLUSIVE,
        exempt=source.tax_treatment != "standard",
    )


@register.simple_tag
def basis_rows(bases: Mapping[TaxRate, Money]) -> list[tuple[str, Money]]:
    """A contract's price basis per rate: (caption, amount)."""
    return [
        (tax_caption(rate.name, rate.percentage, rate.percentage), amount)
        for rate, amount in bases.items()
    ]


@register.filter
def rate_label(rate: object) -> str:
    """A rate as a select lists it: "VAT 20 %" as it is, "Standard" as "Standard (20 %)"."""
    percentage = Decimal(getattr(rate, "percentage", 0))
    return tax_caption(str(getattr(rate, "name", "")), percentage, percentage)
