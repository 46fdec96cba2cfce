"""The accounting export: for a date range, every sent invoice and every credit note (by
issue date) and every payment or refund (by the day the money moved), one row per
document per tax rate, as CSV or JSON an accountant imports. docs/accounting-export.md
describes every column.

Rows come from one builder per kind of document (`ROW_BUILDERS`): each takes the period
and yields `ExportRow`s in date order.

Both formats stream: documents are read in chunks with their tax lines prefetched, so
memory and the number of queries per chunk stay flat however long the range is."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from itertools import chain
from math import floor

from django.http import StreamingHttpResponse

from tranche.accounts.access import require_staff
from tranche.accounts.models import SecurityEventKind, User
from tranche.accounts.security import security_event
from tranche.billing.models import CreditNote, Invoice, InvoiceTaxLine, Payment
from tranche.billing.reports import csv_safe
from tranche.core.errors import Invalid
from tranche.core.money import ZERO, format_amount, from_minor_units, to_minor_units

CHUNK = 500
Day = date  # ExportRow has a field named `date`


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


class DocumentType(StrEnum):
    INVOICE = "invoice"
    PAYMENT = "payment"
    REFUND = "refund"
    CREDIT_NOTE = "credit_note"


COLUMNS = [
    "document_type",
    "number",
    "date",
    "due_date",
    "status",
    "customer",
    "customer_tax_id",
    "currency",
    "tax_treatment",
    "tax_name",
    "tax_rate",
    "net",
    "tax",
    "gross",
    "method",
    "reference",
    "credited_invoice",
]

# Cells written by `ExportRow.values` from Decimals, never from what someone typed.
NUMBER_COLUMNS = frozenset({"tax_rate", "net", "tax", "gross"})


@dataclass(frozen=True)
class ExportPeriod:
    """Both days included."""

    date_from: date
    date_to: date


def export_period(date_from: date, date_to: date) -> ExportPeriod:
    if date_to < date_from:
        raise Invalid(
            "The export's period ends before it starts: pick a “to” date on or after the "
            "“from” date.",
            code="export_period_reversed",
        )
    return ExportPeriod(date_from, date_to)


@dataclass(frozen=True)
class ExportRow:
    """One document at one tax rate. Amounts are signed: money the customer owes or paid
    is positive, a refund and a credit note negative."""

    document_type: str
    number: str
    date: Day
    due_date: Day | None
    status: str
    customer: str
    customer_tax_id: str
    currency: str
    tax_treatment: str
    tax_name: str
    tax_rate: Decimal
    net: Decimal
    tax: Decimal
    gross: Decimal
    method: str = ""
    reference: str = ""
    credited_invoice: str = ""  # a credit note's invoice number

    def values(self) -> dict[str, str]:
        """Every column as text: dates ISO, amounts plain decimals at the currency's
        precision, the rate as a percentage with two decimals."""
        return {
            "document_type": self.document_type,
            "number": self.number,
            "date": self.date.isoformat(),
            "due_date": self.due_date.isoformat() if self.due_date else "",
            "status": self.status,
            "customer": self.customer,
            "customer_tax_id": self.customer_tax_id,
            "currency": self.currency,
            "tax_treatment": self.tax_treatment,
            "tax_name": self.tax_name,
            "tax_rate": f"{self.tax_rate.quantize(Decimal('0.01')):f}",
            "net": format_amount(self.net, self.currency),
            "tax": format_amount(self.tax, self.currency),
            "gross": format_amount(self.gross, self.currency),
            "method": self.method,
            "reference": self.reference,
            "credited_invoice": self.credited_invoice,
        }


RowBuilder = Callable[[ExportPeriod], Iterator[ExportRow]]


@dataclass(frozen=True)
class _Rate:
    """One rate of one document, as the rows need it."""

    name: str
    percentage: Decimal
    net: Decimal
    tax: Decimal
    gross: Decimal


def _rates_of(invoice: Invoice) -> list[_Rate]:
    """The invoice's tax lines that carry an amount; an invoice without any (never made
    by the services) is one line of its totals."""
    lines: list[InvoiceTaxLine] = list(invoice.tax_lines.all())
    rates = [
        _Rate(line.label, line.percentage, line.net_amount, line.tax_amount, line.gross_amount)
        for line in lines
        if line.gross_amount or line.net_amount
    ]
    if rates:
        return rates
    tax = invoice.tax_amount
    name = "Tax" if tax else "No tax"
    return [_Rate(name, ZERO, invoice.amount - tax, tax, invoice.amount)]


def invoice_rows(period: ExportPeriod) -> Iterator[ExportRow]:
    """Every invoice that was sent (it has a number, cancelled ones too: the number was
    issued), by issue date, one row per rate."""
    invoices = (
        Invoice.objects.filter(
            number__isnull=False, issue_date__gte=period.date_from, issue_date__lte=period.date_to
        )
        .prefetch_related("tax_lines")
        .order_by("issue_date", "id")
    )
    for invoice in invoices.iterator(chunk_size=CHUNK):
        for rate in _rates_of(invoice):
            yield ExportRow(
                document_type=DocumentType.INVOICE,
                number=invoice.number or "",
                date=invoice.issue_date,
                due_date=invoice.due_date,
                status=invoice.status,
                customer=invoice.customer_name,
                customer_tax_id=invoice.buyer_tax_id,
                currency=invoice.currency,
                tax_treatment=invoice.tax_treatment,
                tax_name=rate.name,
                tax_rate=rate.percentage,
                net=rate.net,
                tax=rate.tax,
                gross=rate.gross,
            )


def spread(total_units: int, weights: list[int]) -> list[int]:
    """`total_units` (not negative) in proportion to `weights`, exactly: each part starts
    at the floor of its share and the units left over go to the largest remainders,
    earlier first on a tie (as core.tax.rebase). No weight at all: all to the first."""
    whole = sum(weights)
    if whole <= 0:
        return [total_units] + [0] * (len(weights) - 1)
    shares = [Fraction(total_units * weight, whole) for weight in weights]
    units = [floor(share) for share in shares]
    leftover = total_units - sum(units)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(shares[i] - units[i]), i))
    for index in by_remainder[:leftover]:
        units[index] += 1
    return units


def _round_half_up(value: Fraction) -> int:
    return floor(value + Fraction(1, 2))


def payment_parts(amount: Decimal, rates: list[_Rate], currency: str) -> list[_Rate]:
    """A payment's amount over its invoice's rates: the gross in proportion to each
    rate's gross (the parts add up to the payment exactly), and in each part the rate's
    share of tax (its tax / its gross, rounded half up); net = gross - tax."""
    sign = -1 if amount < 0 else 1
    units = spread(
        to_minor_units(abs(amount), currency),
        [to_minor_units(rate.gross, currency) for rate in rates],
    )
    parts = []
    for rate, gross_units in zip(rates, units, strict=True):
        gross_minor = to_minor_units(rate.gross, currency)
        tax_units = (
            _round_half_up(Fraction(gross_units * to_minor_units(rate.tax, currency), gross_minor))
            if gross_minor
            else 0
        )
        gross = from_minor_units(sign * gross_units, currency)
        tax = from_minor_units(sign * tax_units, currency)
        parts.append(_Rate(rate.name, rate.percentage, gross - tax, tax, gross))
    return parts


def payment_rows(period: ExportPeriod) -> Iterator[ExportRow]:
    """Every payment (and refund, negative) received in the period, by the day it was
    received, one row per rate of the invoice it pays."""
    payments = (
        Payment.objects.filter(received_on__gte=period.date_from, received_on__lte=period.date_to)
        .select_related("invoice")
        .prefetch_related("invoice__tax_lines")
        .order_by("received_on", "id")
    )
    for payment in payments.iterator(chunk_size=CHUNK):
        invoice = payment.invoice
        parts = payment_parts(payment.amount, _rates_of(invoice), payment.currency)
        for part in parts:
            if not part.gross and len(parts) > 1:
                continue
            yield ExportRow(
                document_type=DocumentType.REFUND if payment.amount < 0 else DocumentType.PAYMENT,
                number=invoice.number or "",
                date=payment.received_on,
                due_date=None,
                status="",
                customer=invoice.customer_name,
                customer_tax_id=invoice.buyer_tax_id,
                currency=payment.currency,
                tax_treatment=invoice.tax_treatment,
                tax_name=part.name,
                tax_rate=part.percentage,
                net=part.net,
                tax=part.tax,
                gross=part.gross,
                method=payment.method,
                reference=payment.reference or payment.provider_reference or "",
            )


def credit_note_rows(period: ExportPeriod) -> Iterator[ExportRow]:
    """Every credit note issued in the period, by issue date, one row per rate it credits,
    amounts negated (a credit note takes back what its invoice asked for). Treatment and
    the customer's tax id are those of the invoice it corrects."""
    notes = (
        CreditNote.objects.filter(issue_date__gte=period.date_from, issue_date__lte=period.date_to)
        .select_related("invoice")
        .prefetch_related("tax_lines")
        .order_by("issue_date", "id")
    )
    for note in notes.iterator(chunk_size=CHUNK):
        invoice = note.invoice
        lines = [line for line in note.tax_lines.all() if line.gross_amount or line.net_amount]
        rates = [
            _Rate(line.label, line.percentage, line.net_amount, line.tax_amount, line.gross_amount)
            for line in lines
        ] or [
            _Rate(
                "Tax" if note.tax_amount else "No tax",
                ZERO,
                note.net_amount,
                note.tax_amount,
                note.amount,
            )
        ]
        for rate in rates:
            yield ExportRow(
                document_type=DocumentType.CREDIT_NOTE,
                number=note.number,
                date=note.issue_date,
                due_date=None,
                status="",
                customer=note.customer_name,
                customer_tax_id=invoice.buyer_tax_id,
                currency=note.currency,
                tax_treatment=invoice.tax_treatment,
                tax_name=rate.name,
                tax_rate=rate.percentage,
                net=-rate.net,
                tax=-rate.tax,
                gross=-rate.gross,
                credited_invoice=invoice.number or "",
            )


# Each kind of document the export holds, in the order its rows come out.
ROW_BUILDERS: tuple[RowBuilder, ...] = (invoice_rows, credit_note_rows, payment_rows)


def accounting_rows(*, user: User, period: ExportPeriod) -> Iterator[ExportRow]:
    """All rows of the period: invoices, credit notes, then payments (each in date order).
    Staff only, checked at once (not when the first row is read): it covers every
    customer."""
    require_staff(user)
    return chain.from_iterable(build(period) for build in ROW_BUILDERS)


class _Echo:
    """A file-like object for csv.writer that hands each line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def accounting_csv(*, user: User, period: ExportPeriod) -> Iterator[str]:
    """The header, then one line per row. Every text cell a spreadsheet would run as a
    formula is made text (see reports.csv_safe); the amounts and rates are numbers this
    module wrote itself (a refund's "-38.67" must stay a number), so they are left alone."""
    rows = accounting_rows(user=user, period=period)
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(COLUMNS)
        for row in rows:
            values = row.values()
            yield writer.writerow(
                [
                    values[column] if column in NUMBER_COLUMNS else csv_safe(values[column])
                    for column in COLUMNS
                ]
            )

    return lines()


def accounting_json(*, user: User, period: ExportPeriod) -> Iterator[str]:
    """{"date_from", "date_to", "columns", "rows": [{column: text}, …]}, in pieces."""
    rows = accounting_rows(user=user, period=period)
    head = json.dumps(
        {
            "date_from": period.date_from.isoformat(),
            "date_to": period.date_to.isoformat(),
            "columns": COLUMNS,
        }
    )

    def pieces() -> Iterator[str]:
        yield head[:-1] + ', "rows": ['
        for index, row in enumerate(rows):
            yield ("," if index else "") + json.dumps(row.values())
        yield "]}"

    return pieces()


def export_response(
    *, user: User, period: ExportPeriod, export_format: ExportFormat
) -> StreamingHttpResponse:
    """The export as a streamed download, for the API and the financials page alike.
    Who exported which period goes in the security log: it is the whole of the books."""
    if export_format is ExportFormat.JSON:
        response = StreamingHttpResponse(
            accounting_json(user=user, period=period), content_type="application/json"
        )
    else:
        response = StreamingHttpResponse(
            accounting_csv(user=user, period=period), content_type="text/csv; charset=utf-8"
        )
    name = (
        f"accounting-{period.date_from.isoformat()}-to-{period.date_to.isoformat()}"
        f".{export_format.value}"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    security_event(
        kind=SecurityEventKind.EXPORT,
        actor=user,
        detail=f"Accounting export {period.date_from.isoformat()} to "
        f"{period.date_to.isoformat()} as {export_format.value.upper()}.",
    )
    return response
