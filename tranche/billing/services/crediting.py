"""Credit notes: the only correction of a sent invoice. A sent invoice never changes (the
database refuses it, see migration 0009); a credit note takes back part or all of what
it asked for, per tax rate, with its own gap-free yearly number, PDF and email.

What the customer owes is then `amount - amount_credited - amount_paid` (never below
zero); money already paid beyond that is `credit_owed`, for staff to refund.

The per-rate split (docs/credit-notes.md):
- a FULL credit (all that is still creditable) mirrors the invoice's remaining lines
  exactly: net, tax and gross per rate;
- a PARTIAL credit of gross G spreads G over the remaining gross per rate with
  core.tax.rebase (exact, largest remainder), then per rate tax = round(gross * r/(100+r))
  half up, net = gross - tax, the tax held within what is left of the rate's tax and net,
  so the credit notes of an invoice never exceed it per rate, in net, tax or gross."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from tranche.accounts.models import User
from tranche.billing.audit import EventKind, record_event
from tranche.billing.locks import lock_invoice
from tranche.billing.models import (
    MANUAL_METHODS,
    SENT_STATUSES,
    CreditNote,
    CreditNoteKind,
    CreditNoteTaxLine,
    Invoice,
    InvoiceStatus,
    Payment,
)
from tranche.billing.numbering import next_credit_note_number
from tranche.billing.services.emails import queue_credit_note_email
from tranche.billing.services.payments import queue_intent_amount_sync, settle_invoice
from tranche.core.db import require_atomic
from tranche.core.errors import Conflict, Invalid
from tranche.core.money import ZERO, Money, has_currency_precision
from tranche.core.tax import PriceMode, TaxRate, rebase, tax_line


@dataclass(frozen=True)
class LineFigures:
    """One tax rate's figures: of an invoice line, what is left of it, or a credit."""

    position: int
    name: str
    rate_percentage: Decimal
    percentage: Decimal  # charged (0 when the invoice was reverse charge or exempt)
    net: Decimal
    tax: Decimal
    gross: Decimal


def remaining_lines(invoice: Invoice) -> list[LineFigures]:
    """The invoice's tax lines less what its credit notes took back, rate by rate."""
    taken: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    rows = CreditNoteTaxLine.objects.filter(credit_note__invoice=invoice).values_list(
        "position", "net_amount", "tax_amount", "gross_amount"
    )
    for position, net, tax, gross in rows:
        sums = taken[position]
        sums[0] += net
        sums[1] += tax
        sums[2] += gross
    lines = list(invoice.tax_lines.all())
    if not lines:  # an invoice made without lines (never by the services)
        amount = invoice.amount
        net, tax, gross = taken[1]
        return [LineFigures(1, "", ZERO, ZERO, amount - net, ZERO - tax, amount - gross)]
    return [
        LineFigures(
            position=line.position,
            name=line.name,
            rate_percentage=Decimal(line.rate_percentage),
            percentage=Decimal(line.percentage),
            net=line.net_amount - taken[line.position][0],
            tax=line.tax_amount - taken[line.position][1],
            gross=line.gross_amount - taken[line.position][2],
        )
        for line in lines
    ]


def split_credit(
    remaining: Sequence[LineFigures], amount: Decimal, currency: str
) -> list[LineFigures]:
    """The credit of gross `amount` per rate (lines with nothing credited left out).
    `amount` must be positive and at most the remaining gross (the caller checks)."""
    left = sum((line.gross for line in remaining), ZERO)
    if not ZERO < amount <= left:
        raise ValueError(f"Cannot credit {amount} of {left}.")
    if amount == left:
        return [line for line in remaining if line.gross]
    # Keys only need to be distinct: the index names each line.
    weights = {
        TaxRate(str(n), line.percentage): Money(line.gross, currency)
        for n, line in enumerate(remaining)
    }
    parts = rebase(weights, Money(amount, currency))
    credit = []
    for (rate, part), line in zip(parts.items(), remaining, strict=True):
        if not part.amount:
            continue
        tax = tax_line(rate, part, mode=PriceMode.INCLUSIVE).tax.amount
        # Held within what is left: the net may not go over the rate's remaining net,
        # nor the tax over its remaining tax (rounding half up many times could).
        tax = min(max(tax, part.amount - line.net, ZERO), line.tax)
        credit.append(replace(line, gross=part.amount, tax=tax, net=part.amount - tax))
    return credit


def _refuse(invoice: Invoice, amount: Decimal) -> None:
    if invoice.status not in SENT_STATUSES:
        shown = invoice.number or f"Draft invoice {invoice.pk}"
        state = invoice.get_status_display().lower()
        raise Conflict(
            f"{shown} is {state}; only a sent invoice can be credited"
            + (" (edit or cancel the draft instead)." if invoice.number is None else "."),
            code="invoice_not_creditable",
        )
    if amount <= 0:
        raise Invalid("The amount must be greater than zero.", code="amount_not_positive")
    if not has_currency_precision(amount, invoice.currency):
        raise Invalid(
            f"{amount} has more decimal places than {invoice.currency} allows.",
            code="amount_precision",
        )
    if amount > invoice.amount - invoice.amount_credited:
        raise Invalid(
            f"{Money(amount, invoice.currency)} is more than can still be credited on "
            f"{invoice} ({invoice.creditable}).",
            code="amount_exceeds_creditable",
        )


def issue_credit_note(
    invoice: Invoice,
    *,
    actor: User | None,
    amount: Decimal,
    reason: str,
    now: datetime,
    settle: bool = True,
    email: bool = True,
) -> CreditNote:
    """Issue a credit note on `invoice`, locked by the caller, inside its transaction.
    `settle=False` for a caller that settles the invoice itself (cancelling; a refund
    that gives back at once what the credit frees, so nothing is announced as owed back);
    `email=False` for one whose own email carries the credit note."""
    require_atomic()
    _refuse(invoice, amount)
    lines = split_credit(remaining_lines(invoice), amount, invoice.currency)
    return _write_note(
        invoice, lines, actor=actor, reason=reason, now=now, settle=settle, email=email
    )


def basis_credit(line: LineFigures, basis: Decimal, *, mode: str, currency: str) -> LineFigures:
    """The credit of exactly `basis` of one rate's contract basis (its net when the
    invoice's contract is priced exclusive, its gross when inclusive), `basis` positive
    and at most what is left of it. All that is left mirrors the line; otherwise the tax
    is that of `basis` by the invoice's own rule (core.tax.tax_line, half up), held within
    what is left of the rate's tax and net, as in `split_credit`."""
    exclusive = mode == PriceMode.EXCLUSIVE
    left = line.net if exclusive else line.gross
    if not ZERO < basis <= left:
        raise ValueError(f"Cannot credit a basis of {basis} of {left}.")
    if basis == left:
        return line
    price_mode = PriceMode.EXCLUSIVE if exclusive else PriceMode.INCLUSIVE
    tax = tax_line(
        TaxRate(line.name, line.percentage), Money(basis, currency), mode=price_mode
    ).tax.amount
    if exclusive:
        tax = min(tax, line.tax)
        return replace(line, net=basis, tax=tax, gross=basis + tax)
    tax = min(max(tax, basis - line.net, ZERO), line.tax)
    return replace(line, gross=basis, tax=tax, net=basis - tax)


def line_rate(line: LineFigures) -> TaxRate:
    """The contract rate a line bills (the key of `taxes.invoice_bases`)."""
    return TaxRate(line.name, line.rate_percentage)


def issue_basis_credit_note(
    invoice: Invoice,
    *,
    actor: User | None,
    bases: Mapping[TaxRate, Decimal],
    reason: str,
    now: datetime,
) -> CreditNote:
    """Issue a credit note on `invoice` (locked by the caller, inside its transaction)
    taking back exactly `bases` of its contract basis per rate (see `basis_credit`): a
    contract amended below what was invoiced. Its amount is the lines' gross; refused as
    `issue_credit_note` refuses (a draft, more than is still creditable)."""
    require_atomic()
    lines = [
        basis_credit(
            line, bases[line_rate(line)], mode=invoice.price_mode, currency=invoice.currency
        )
        for line in remaining_lines(invoice)
        if bases.get(line_rate(line))
    ]
    if len(lines) != len([b for b in bases.values() if b]):
        raise ValueError(f"{invoice} does not bill every rate of {dict(bases)}.")
    _refuse(invoice, sum((line.gross for line in lines), ZERO))
    return _write_note(invoice, lines, actor=actor, reason=reason, now=now)


def _write_note(
    invoice: Invoice,
    lines: Sequence[LineFigures],
    *,
    actor: User | None,
    reason: str,
    now: datetime,
    settle: bool = True,
    email: bool = True,
) -> CreditNote:
    currency = invoice.currency
    amount = sum((line.gross for line in lines), ZERO)
    kind = (
        CreditNoteKind.FULL
        if amount == invoice.amount - invoice.amount_credited
        else CreditNoteKind.PARTIAL
    )
    note = CreditNote.objects.create(
        invoice=invoice,
        customer_id=invoice.customer_id,
        number=next_credit_note_number(timezone.localdate(now).year),
        kind=kind,
        currency=currency,
        amount=amount,
        net_amount=sum((line.net for line in lines), ZERO),
        tax_amount=sum((line.tax for line in lines), ZERO),
        reason=reason,
        issue_date=timezone.localdate(now),
        customer_name=invoice.customer_name,
        customer_email=invoice.customer_email,
        issued_at=now,
        issued_by=actor,
    )
    CreditNoteTaxLine.objects.bulk_create(
        CreditNoteTaxLine(
            credit_note=note,
            position=line.position,
            name=line.name,
            rate_percentage=line.rate_percentage,
            percentage=line.percentage,
            net_amount=line.net,
            tax_amount=line.tax,
            gross_amount=line.gross,
        )
        for line in lines
    )
    owed_before = invoice.credit_owed
    invoice.amount_credited += amount
    invoice.updated_at = now
    invoice.save(update_fields=["amount_credited", "updated_at"])
    record_event(
        invoice,
        EventKind.CREDITED,
        actor=actor,
        now=now,
        credit_note_id=note.pk,
        number=note.number,
        amount=str(amount),
        credit_kind=str(kind),
        reason=reason,
    )
    if settle and invoice.credit_owed > owed_before:
        record_event(
            invoice, EventKind.CREDIT_OWED, actor=actor, now=now, amount=invoice.owed_back.api
        )
    if settle:
        settle_invoice(invoice, now=now, actor=actor)
        # What is left to pay online changed (or nothing is left): the intent follows.
        queue_intent_amount_sync(invoice)
    if email and invoice.customer_email:
        queue_credit_note_email(note, now=now)
        note.emailed_at = now
        note.save(update_fields=["emailed_at"])
    return note


def credit_note_issue(
    *,
    actor: User | None,
    invoice_id: int,
    amount: Decimal,
    reason: str,
    now: datetime | None = None,
) -> CreditNote:
    """Issue a credit note of gross `amount` on a sent invoice (a goodwill discount, a
    line not delivered, a contract that shrank): the amount due falls by `amount`, the
    PaymentIntent follows, the customer is emailed the credit note. Refused for a draft,
    a cancelled invoice, or more than is still creditable (amount - amount_credited).
    Runs in its own transaction, or in the caller's (a change order approval)."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise Invalid("Say why the credit note is issued.", code="reason_required")
    if len(reason) > 500:
        raise Invalid("The reason must be at most 500 characters.", code="reason_too_long")
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        return issue_credit_note(invoice, actor=actor, amount=amount, reason=reason, now=now)


def credit_for_cancel(invoice: Invoice, *, actor: User, now: datetime) -> CreditNote | None:
    """Cancelling a sent invoice credits all that is still creditable, in the cancel's
    transaction, before the status becomes cancelled (its email carries the note)."""
    require_atomic()
    if invoice.status == InvoiceStatus.DRAFT or invoice.amount_credited >= invoice.amount:
        return None
    # The cancel's reason is the business's own note (the customer is never shown it);
    # the credit note, which the customer receives, says only what it does.
    return issue_credit_note(
        invoice,
        actor=actor,
        amount=invoice.amount - invoice.amount_credited,
        reason=f"Cancellation of invoice {invoice.number}",
        now=now,
        settle=False,
        email=False,
    )


def refund_record_manual(
    *,
    actor: User,
    invoice_id: int,
    amount: Decimal,
    method: str,
    paid_on: date,
    reason: str,
    credit_invoice: bool,
    now: datetime | None = None,
) -> Payment:
    """An admin records money given back by hand (a bank transfer to the customer). With
    `credit_invoice` the customer also owes less: a credit note of the same amount is
    issued and the refund points to it; without, it pays back money owed to the customer
    (an overpayment, a credited invoice) or, beyond that, makes the amount due again."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise Invalid("Say why the money is given back.", code="reason_required")
    if method not in MANUAL_METHODS:
        raise Invalid(
            f"Method must be one of {', '.join(MANUAL_METHODS)}.", code="payment_method_invalid"
        )
    if paid_on > timezone.localdate(now):
        raise Invalid("A refund cannot be made in the future.", code="received_on_future")
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        if invoice.number is None:
            raise Conflict(f"{invoice} was never sent; nothing was paid.", code="invoice_not_sent")
        if amount <= 0:
            raise Invalid("The amount must be greater than zero.", code="amount_not_positive")
        if not has_currency_precision(amount, invoice.currency):
            raise Invalid(
                f"{amount} has more decimal places than {invoice.currency} allows.",
                code="amount_precision",
            )
        if amount > invoice.amount_paid:
            raise Invalid(
                f"{Money(amount, invoice.currency)} is more than was paid on {invoice} "
                f"({invoice.received}).",
                code="refund_exceeds_payment",
            )
        note = None
        if credit_invoice:
            note = issue_credit_note(
                invoice, actor=actor, amount=amount, reason=reason, now=now, settle=False
            )
        refund = Payment.objects.create(
            invoice=invoice,
            currency=invoice.currency,
            amount=-amount,
            method=method,
            received_on=paid_on,
            recorded_by=actor,
            note=reason,
            credit_note=note,
            created_at=now,
        )
        record_event(
            invoice,
            EventKind.REFUND_RECORDED,
            actor=actor,
            now=now,
            amount=str(-amount),
            method=method,
            credit_note=note.number if note else None,
        )
        settle_invoice(invoice, now=now, actor=actor)
        queue_intent_amount_sync(invoice)
    return refund
