"""Credit notes, proven over USD, JPY and KWD with hypothesis:

- the per-rate split alone (no database): whatever sequence of partial credits, per rate
  the credit notes never exceed the invoice's net, tax or gross, each line adds up
  (net + tax = gross), and crediting the rest mirrors what was left exactly;
- the whole flow (database): after any sequence of partial credits, payments and a
  cancel, the credit notes sum to at most the amount (and per rate to at most each line),
  amount_due = max(amount - credited - paid, 0), the sent invoice's figures and tax lines
  never changed, and the credit note numbers are gap-free."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.billing.helpers import draft_for
from tests.factories import CustomerFactory
from tranche.accounts.models import TaxRate as TaxRateRow
from tranche.accounts.models import User
from tranche.billing.models import CreditNoteTaxLine, Invoice, InvoiceStatus, InvoiceTaxLine
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.crediting import (
    LineFigures,
    credit_note_issue,
    split_credit,
)
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.core.errors import DomainError
from tranche.core.money import ZERO, Money, from_minor_units, to_minor_units
from tranche.core.tax import PriceMode, TaxRate, invoice_tax
from tranche.sales.services import LineInput, ScheduleInput, quote_create

CURRENCIES = ("USD", "JPY", "KWD")
RATES = (Decimal(0), Decimal("5.5"), Decimal(10), Decimal(20), Decimal(27))


@st.composite
def invoices(draw: Any) -> tuple[str, list[LineFigures]]:
    """An invoice's tax lines, as invoice_tax makes them, in one of the currencies."""
    currency = draw(st.sampled_from(CURRENCIES))
    count = draw(st.integers(1, 3))
    bases = {}
    for n in range(count):
        rate = TaxRate(f"R{n}", draw(st.sampled_from(RATES)))
        units = draw(st.integers(0 if n else 1, 10**7))
        bases[rate] = Money(from_minor_units(units, currency), currency)
    mode = draw(st.sampled_from(PriceMode))
    exempt = draw(st.booleans())
    tax = invoice_tax(bases, currency=currency, mode=mode, exempt=exempt)
    lines = [
        LineFigures(n, line.rate.name, line.rate.percentage, line.percentage,
                    line.net.amount, line.tax.amount, line.gross.amount)
        for n, line in enumerate(tax.lines, 1)
    ]  # fmt: skip
    return currency, lines


def _minus(left: list[LineFigures], credit: list[LineFigures]) -> list[LineFigures]:
    taken = {line.position: line for line in credit}
    out = []
    for line in left:
        c = taken.get(line.position)
        if c is None:
            out.append(line)
            continue
        out.append(
            LineFigures(
                line.position,
                line.name,
                line.rate_percentage,
                line.percentage,
                line.net - c.net,
                line.tax - c.tax,
                line.gross - c.gross,
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(invoices(), st.lists(st.integers(1, 10**6), max_size=12))
def test_credits_never_exceed_the_invoice_per_rate_and_the_rest_mirrors_it(
    invoice: tuple[str, list[LineFigures]], weights: list[int]
) -> None:
    currency, lines = invoice
    left = lines
    for weight in weights:
        remaining = to_minor_units(sum((line.gross for line in left), ZERO), currency)
        if remaining <= 1:
            break
        # Any amount from one minor unit to all but one of what is left.
        amount = from_minor_units(1 + weight % (remaining - 1), currency)
        credit = split_credit(left, amount, currency)
        assert sum((c.gross for c in credit), ZERO) == amount
        for c in credit:
            assert c.net + c.tax == c.gross
            assert c.gross > 0
            assert c.tax >= 0
            assert c.net >= 0
        left = _minus(left, credit)
        for line in left:
            assert line.gross >= 0
            assert line.tax >= 0
            assert line.net >= 0
    if sum((line.gross for line in left), ZERO) > 0:
        rest = split_credit(left, sum((line.gross for line in left), ZERO), currency)
        assert rest == [line for line in left if line.gross]
        left = _minus(left, rest)
    assert all((line.net, line.tax, line.gross) == (ZERO, ZERO, ZERO) for line in left)


# --- the whole flow, in the database ---------------------------------------------------------

OPERATIONS = st.lists(
    st.tuples(st.sampled_from(("credit", "pay", "cancel")), st.integers(1, 10**6)),
    min_size=1,
    max_size=8,
)


def _project(admin: User, currency: str, prices: list[tuple[Decimal, int]]) -> Any:
    customer = CustomerFactory.create(billing_email="ap@example.com")
    rates = {
        p: TaxRateRow.objects.get_or_create(name=f"Rate {p}", defaults={"percentage": p})[0]
        for p, _ in prices
    }
    quote = quote_create(
        actor=admin,
        customer_id=customer.pk,
        title="Property",
        currency=currency,
        lines=[
            LineInput("Work", Decimal(1), price, tax_rate_id=rates[rate].pk)
            for rate, price in ((p, Decimal(u)) for p, u in prices)
        ],
        schedule=[ScheduleInput("All", True, Decimal(100))],
    )
    return quote_accept(actor=admin, quote_id=quote.pk)


def _snapshot(invoice: Invoice) -> tuple[Any, ...]:
    row = Invoice.objects.values(
        "amount", "contract_amount", "net_amount", "tax_amount", "number", "issue_date",
        "due_date", "description", "customer_id", "currency",
    ).get(pk=invoice.pk)  # fmt: skip
    lines = list(
        InvoiceTaxLine.objects.filter(invoice=invoice)
        .order_by("position")
        .values_list("position", "net_amount", "tax_amount", "gross_amount")
    )
    return tuple(sorted(row.items())), tuple(lines)


@pytest.mark.django_db
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    currency=st.sampled_from(CURRENCIES),
    prices=st.lists(
        st.tuples(st.sampled_from(RATES[1:]), st.integers(1, 10**5)), min_size=1, max_size=3
    ),
    operations=OPERATIONS,
)
def test_any_sequence_of_credits_payments_and_a_cancel_keeps_the_books_exact(
    admin: User, currency: str, prices: list[tuple[Decimal, int]], operations: list[Any]
) -> None:
    prices = list({rate: units for rate, units in prices}.items())
    project = _project(admin, currency, prices)
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    before = _snapshot(invoice)
    numbers: list[str] = []
    for kind, weight in operations:
        invoice.refresh_from_db()
        units = to_minor_units(invoice.amount, currency)
        amount = from_minor_units(1 + weight % units, currency)
        try:
            if kind == "credit":
                numbers.append(
                    credit_note_issue(
                        actor=admin, invoice_id=invoice.pk, amount=amount, reason="r"
                    ).number
                )
            elif kind == "pay":
                payment_record_manual(
                    actor=admin,
                    invoice_id=invoice.pk,
                    amount=amount,
                    method="bank_transfer",
                    received_on=invoice.issue_date,
                )
            else:
                invoice_cancel(actor=admin, invoice_id=invoice.pk, reason="r")
                note = invoice.credit_notes.order_by("-id").first()
                if note is not None and note.number not in numbers:
                    numbers.append(note.number)
        except DomainError:
            pass  # a refusal (too much, nothing due, has payments): nothing changed
        invoice.refresh_from_db()
        notes = invoice.credit_notes.all()
        credited = sum((n.amount for n in notes), ZERO)
        assert credited == invoice.amount_credited <= invoice.amount
        if invoice.status != InvoiceStatus.CANCELLED:
            assert invoice.amount_due == max(
                invoice.amount - invoice.amount_credited - invoice.amount_paid, ZERO
            )
        for line in invoice.tax_lines.all():
            taken = CreditNoteTaxLine.objects.filter(
                credit_note__invoice=invoice, position=line.position
            )
            assert sum((t.gross_amount for t in taken), ZERO) <= line.gross_amount
            assert sum((t.net_amount for t in taken), ZERO) <= line.net_amount
            assert sum((t.tax_amount for t in taken), ZERO) <= line.tax_amount
        if invoice.amount_credited == invoice.amount and invoice.status != "cancelled":
            assert invoice.status == InvoiceStatus.CREDITED
        assert _snapshot(invoice) == before
    # Gap-free: this example's numbers follow each other.
    seqs = [int(n.rsplit("-", 1)[1]) for n in numbers]
    if seqs:
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
