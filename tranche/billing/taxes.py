"""An invoice's tax: worked out from the contract share it bills per rate (core.tax has the
arithmetic and the rounding rule), written on the invoice's figures and its tax lines.

A draft is taxed when it is made and again when it is sent (the customer may have become
reverse charge or exempt meanwhile); once sent, its figures never change."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db.models import Case, F, Q, QuerySet, Subquery, Sum, When

from tranche.accounts.business import business_profile
from tranche.accounts.models import Customer, TaxTreatment
from tranche.billing.models import (
    CreditNoteTaxLine,
    Invoice,
    InvoiceStatus,
    InvoiceTaxLine,
    InvoiceType,
)
from tranche.billing.retainage import apply_retainage
from tranche.core.db import require_atomic
from tranche.core.errors import Conflict
from tranche.core.money import ZERO, Money
from tranche.core.tax import Bases, InvoiceTax, PriceMode, TaxRate, basis_total, invoice_tax

TAX_FIELDS = [
    "contract_amount",
    "net_amount",
    "tax_amount",
    "amount",
    "retainage_amount",
    "price_mode",
    "tax_treatment",
    "tax_note",
]


def tax_note(treatment: str) -> str:
    """The legal sentence a 0 % invoice must carry, from the business's settings."""
    if treatment == TaxTreatment.REVERSE_CHARGE:
        return business_profile().reverse_charge_note
    if treatment == TaxTreatment.EXEMPT:
        return business_profile().tax_exempt_note
    return ""


def tax_for(bases: Bases, *, currency: str, mode: str, customer: Customer) -> InvoiceTax:
    return invoice_tax(
        bases,
        currency=currency,
        mode=PriceMode(mode),
        exempt=customer.tax_treatment != TaxTreatment.STANDARD,
    )


def apply_tax(invoice: Invoice, bases: Bases, *, mode: str, customer: Customer) -> InvoiceTax:
    """Set the invoice's figures (not saved) from its per-rate bases; the caller saves
    them (TAX_FIELDS) and then the lines (`write_tax_lines`). The gross billed is the
    lines' gross; `amount`, what is asked for now, is that less the retainage withheld."""
    tax = tax_for(bases, currency=invoice.currency, mode=mode, customer=customer)
    release = invoice.invoice_type == InvoiceType.RETAINAGE_RELEASE
    # A release bills back what was withheld: none of it is a new share of the contract.
    invoice.contract_amount = (
        ZERO if release else basis_total(bases, currency=invoice.currency).amount
    )
    invoice.net_amount = tax.net.amount
    invoice.tax_amount = tax.tax.amount
    invoice.amount = tax.gross.amount
    apply_retainage(invoice)
    invoice.price_mode = mode
    invoice.tax_treatment = customer.tax_treatment
    invoice.tax_note = tax_note(customer.tax_treatment)
    return tax


def write_tax_lines(invoice: Invoice, tax: InvoiceTax, *, replace: bool = True) -> None:
    """Store `tax`'s lines as the draft's (`replace`: instead of those it has; a new
    invoice has none to delete). The invoice then holds them as if prefetched."""
    require_atomic()
    if invoice.status != InvoiceStatus.DRAFT:
        # A sent invoice's lines are what the customer was sent (and the database refuses
        # the change too): corrections are credit notes.
        raise Conflict(
            f"{invoice} was sent; its tax lines cannot change. Issue a credit note instead.",
            code="invoice_immutable",
        )
    if replace:
        InvoiceTaxLine.objects.filter(invoice=invoice).delete()
    lines = InvoiceTaxLine.objects.bulk_create(
        InvoiceTaxLine(
            invoice=invoice,
            position=position,
            name=line.rate.name,
            rate_percentage=line.rate.percentage,
            percentage=line.percentage,
            net_amount=line.net.amount,
            tax_amount=line.tax.amount,
            gross_amount=line.gross.amount,
        )
        for position, line in enumerate(tax.lines, 1)
    )
    _hold_tax_lines(invoice, lines)


def _hold_tax_lines(invoice: Invoice, lines: list[InvoiceTaxLine]) -> None:
    """Keep `lines` on the invoice as prefetch_related would: whoever shows it next (the
    response, the email) does not read back what was just written."""
    rows = InvoiceTaxLine.objects.filter(invoice=invoice)
    rows._result_cache = lines
    rows._prefetch_done = True  # type: ignore[attr-defined]
    cache = getattr(invoice, "_prefetched_objects_cache", None)
    if cache is None:
        cache = invoice._prefetched_objects_cache = {}  # type: ignore[attr-defined]
    cache["tax_lines"] = rows


def tax_lines_unchanged(invoice: Invoice, tax: InvoiceTax) -> bool:
    """Whether the invoice's stored lines are already `tax`'s: sending re-addresses a
    draft, and most drafts are re-taxed to exactly what they hold."""
    stored = [
        (
            line.position,
            line.name,
            line.rate_percentage,
            line.percentage,
            line.net_amount,
            line.tax_amount,
            line.gross_amount,
        )
        for line in invoice.tax_lines.all()
    ]
    wanted = [
        (
            position,
            line.rate.name,
            line.rate.percentage,
            line.percentage,
            line.net.amount,
            line.tax.amount,
            line.gross.amount,
        )
        for position, line in enumerate(tax.lines, 1)
    ]
    return stored == wanted


def invoice_bases(invoice: Invoice) -> Bases:
    """The contract share the invoice bills per rate, read back from its tax lines: the
    net when its contract is priced tax-exclusive, the gross when inclusive."""
    exclusive = invoice.price_mode == PriceMode.EXCLUSIVE
    bases: Bases = {}
    for line in invoice.tax_lines.all():
        rate = TaxRate(line.name, Decimal(line.rate_percentage))
        amount = line.net_amount if exclusive else line.gross_amount
        bases[rate] = bases.get(rate, Money.zero(invoice.currency)) + Money(
            amount, invoice.currency
        )
    if not bases:  # an invoice made without lines (never by the services)
        bases[TaxRate("", Decimal(0))] = Money(invoice.contract_amount, invoice.currency)
    return bases


def credited_bases(invoice: Invoice) -> Bases:
    """What the invoice's credit notes took back of the contract basis, per rate: their
    net when the contract is priced tax-exclusive, their gross when inclusive (the basis
    an invoice line bills, read the same way as `invoice_bases`)."""
    return credited_bases_of([invoice])[invoice.pk]


def credited_bases_of(invoices: Iterable[Invoice]) -> dict[int, Bases]:
    """`credited_bases` of each invoice (by id), in one query for them all."""
    by_id = {invoice.pk: invoice for invoice in invoices}
    credited: dict[int, Bases] = {pk: {} for pk in by_id}
    rows = CreditNoteTaxLine.objects.filter(credit_note__invoice_id__in=list(by_id)).values_list(
        "credit_note__invoice_id", "name", "rate_percentage", "net_amount", "gross_amount"
    )
    for invoice_id, name, percentage, net, gross in rows.order_by("credit_note_id", "position"):
        invoice, bases = by_id[invoice_id], credited[invoice_id]
        rate = TaxRate(name, Decimal(percentage))
        exclusive = invoice.price_mode == PriceMode.EXCLUSIVE
        amount = Money(net if exclusive else gross, invoice.currency)
        bases[rate] = bases.get(rate, Money.zero(invoice.currency)) + amount
    return credited


def billed_bases(invoice: Invoice, credited: Bases | None = None) -> Bases:
    """What the invoice still counts against the contract per rate: its bases less its
    credit notes' (the "invoiced" of the change-order arithmetic). `credited`: its
    `credited_bases`, when the caller read them for many invoices at once."""
    bases = invoice_bases(invoice)
    for rate, amount in (credited_bases(invoice) if credited is None else credited).items():
        bases[rate] = bases.get(rate, Money.zero(invoice.currency)) - amount
    return bases


def credited_contract_subquery(invoices: QuerySet[Invoice]) -> Subquery:
    """`credited_contract_amount` of one project's `invoices` as a subquery (NULL when
    nothing was credited), for a read that wants it along with other values."""
    rows = (
        CreditNoteTaxLine.objects.filter(credit_note__invoice__in=invoices)
        .exclude(credit_note__invoice__invoice_type=InvoiceType.RETAINAGE_RELEASE)
        .order_by()
        .values("credit_note__invoice__project_id")
        .annotate(
            total=Sum(
                Case(
                    When(
                        credit_note__invoice__price_mode=PriceMode.EXCLUSIVE,
                        then=F("net_amount"),
                    ),
                    default=F("gross_amount"),
                )
            )
        )
        .values("total")
    )
    return Subquery(rows[:1], output_field=Invoice._meta.get_field("contract_amount"))


def credited_contract_amount(invoices: QuerySet[Invoice]) -> Decimal:
    """What the credit notes of `invoices` took back of the contract basis, in total
    (as `credited_bases`, summed in the database): it no longer counts as invoiced."""
    rows = CreditNoteTaxLine.objects.filter(credit_note__invoice__in=invoices).exclude(
        credit_note__invoice__invoice_type=InvoiceType.RETAINAGE_RELEASE
    )
    exclusive = Q(credit_note__invoice__price_mode=PriceMode.EXCLUSIVE)
    totals = rows.aggregate(
        net=Sum("net_amount", filter=exclusive), gross=Sum("gross_amount", filter=~exclusive)
    )
    return Decimal(totals["net"] or ZERO) + Decimal(totals["gross"] or ZERO)
