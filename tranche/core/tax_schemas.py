"""The JSON shape of a tax breakdown, shared by quotes and invoices: one row per rate
with its net, tax and gross, amounts as strings at the currency's precision."""

from __future__ import annotations

from tranche.core.schemas import Output
from tranche.core.tax import InvoiceTax, TaxLine


def percent_api(value: object) -> str:
    return f"{value:.2f}"


class TaxLineOut(Output):
    # The rate's name ("VAT 20 %"); blank for lines quoted without a rate.
    name: str
    # What was charged: the rate's percentage, or "0.00" for a reverse-charge or exempt
    # customer (then `rate_percentage` still says which rate of the contract it bills).
    percentage: str
    rate_percentage: str
    net: str
    tax: str
    gross: str

    @staticmethod
    def of(line: TaxLine) -> TaxLineOut:
        return TaxLineOut(
            name=line.rate.name,
            percentage=percent_api(line.percentage),
            rate_percentage=percent_api(line.rate.percentage),
            net=line.net.api,
            tax=line.tax.api,
            gross=line.gross.api,
        )


def tax_lines_out(tax: InvoiceTax | None) -> list[TaxLineOut]:
    return [TaxLineOut.of(line) for line in tax.lines] if tax is not None else []
