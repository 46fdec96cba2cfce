"""The invoice rules every billing service applies, written once."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from tranche.billing.models import OPEN_STATUSES, Invoice, InvoiceStatus
from tranche.core.errors import Conflict, Invalid
from tranche.projects.models import Milestone

# Longer than the provider call can take (timeout and one retry): a claim older than this
# was left by a process that died mid-send, and the invoice may be sent again.
SEND_CLAIM_TIMEOUT = timedelta(minutes=2)


def status_for(invoice: Invoice, today: date) -> str:
    """What a sent invoice's facts make it: credited once credit notes took its whole
    amount back (never "paid", whatever was paid: that money is owed back), paid once
    nothing is due, overdue once its due date has passed with money due, else pending or
    partially paid. The one rule for 'overdue', used when money or credit moves and by
    the periodic pass."""
    if invoice.amount_credited >= invoice.amount:
        return InvoiceStatus.CREDITED
    if invoice.amount_paid + invoice.amount_credited >= invoice.amount:
        return InvoiceStatus.PAID
    if invoice.due_date < today:
        return InvoiceStatus.OVERDUE
    return InvoiceStatus.PARTIALLY_PAID if invoice.amount_paid > 0 else InvoiceStatus.PENDING


def require_draft(invoice: Invoice, action: str) -> None:
    if invoice.status != InvoiceStatus.DRAFT:
        shown = invoice.number or f"Invoice {invoice.pk}"
        raise Conflict(
            f"{shown} is {invoice.status.replace('_', ' ')}; only a draft can be {action}.",
            code="invoice_not_draft",
        )


def require_unclaimed(invoice: Invoice, now: datetime) -> None:
    if invoice.send_claimed_at and now - invoice.send_claimed_at < SEND_CLAIM_TIMEOUT:
        raise Conflict(
            f"Invoice {invoice.pk} is being sent right now; wait a moment and reload it.",
            code="invoice_send_in_progress",
        )


def reopen_refusal(invoice: Invoice | None) -> Conflict | None:
    """Why a completed milestone whose live invoice is `invoice` cannot be reopened, or
    None: a draft is cancelled with the reopen, a sent invoice must be cancelled first.
    The service raises it; the project page shows its sentence beside a disabled button."""
    if invoice is not None and invoice.amount_paid > 0:
        return Conflict(
            f"Invoice {invoice.number} for this milestone has payments, so the milestone "
            "cannot be reopened: refund the payments, cancel the invoice, then reopen it.",
            code="invoice_already_sent",
        )
    if invoice is not None and invoice.status != InvoiceStatus.DRAFT:
        return Conflict(
            f"Invoice {invoice.number} was already sent for this milestone. Cancel the "
            "invoice first, then reopen the milestone.",
            code="invoice_already_sent",
        )
    return None


def complete_refusal(milestone: Milestone, amount: Decimal) -> Invalid | None:
    """Why completing a billable milestone that bills `amount` would be refused, or None."""
    if milestone.is_billable and amount <= 0:
        return Invalid(
            f"Milestone '{milestone.title}' bills nothing (its amount is zero); make it "
            "non-billable or change its percentage before completing it.",
            code="milestone_amount_zero",
        )
    return None


def require_open_with_email(invoice: Invoice, *, action: str, refused: str) -> None:
    """An email about a sent invoice (a resend, a reminder) needs an invoice that still
    asks for money and an address to send it to. `action` finishes "only a sent invoice
    with an amount due can be …"; `refused` says what cannot happen without an address."""
    if invoice.status not in OPEN_STATUSES or invoice.amount_due <= 0:
        raise Conflict(
            f"{invoice} is {invoice.status.replace('_', ' ')}; only a sent invoice with an "
            f"amount due can be {action}.",
            code="invoice_not_open",
        )
    if not invoice.customer_email:
        raise Invalid(
            f"{invoice.customer_name} has no billing email, so {refused}. Add one to the "
            "customer, then try again.",
            code="customer_email_missing",
        )
