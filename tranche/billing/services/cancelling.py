"""Cancelling an invoice: a draft, or a sent invoice nobody paid (it keeps its number and
a credit note takes back all that was still creditable, in the same transaction)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from tranche.accounts.models import User
from tranche.billing.gateways import (
    GatewayError,
    gateway_for,
)
from tranche.billing.locks import lock_invoice, lock_project_and_invoice
from tranche.billing.models import (
    Invoice,
    InvoiceStatus,
    InvoiceType,
)
from tranche.billing.rules import reopen_refusal, require_unclaimed
from tranche.billing.services.cancelled import mark_cancelled as _mark_cancelled
from tranche.billing.services.crediting import credit_for_cancel
from tranche.billing.services.emails import queue_invoice_email
from tranche.billing.services.retainage import resettle_releases, retainage_cancel_refusal
from tranche.core.db import require_atomic
from tranche.core.errors import Conflict, Invalid, ProviderError


def invoice_cancel(
    *,
    actor: User,
    invoice_id: int,
    reason: str,
    now: datetime | None = None,
) -> Invoice:
    """Cancel a draft, or a sent invoice with no payments (it keeps its number). Its
    PaymentIntent is cancelled at the gateway the invoice was sent with, whatever is
    configured for new invoices today."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise Invalid("Say why the invoice is cancelled.", code="reason_required")

    def check(invoice: Invoice) -> None:
        if invoice.status == InvoiceStatus.CANCELLED:
            raise Conflict(f"{invoice} is already cancelled.", code="invoice_already_cancelled")
        if invoice.amount_paid != 0 or invoice.status in (
            InvoiceStatus.PAID,
            InvoiceStatus.PARTIALLY_PAID,
        ):
            raise Conflict(
                f"{invoice} has payments and cannot be cancelled; refund them first.",
                code="invoice_has_payments",
            )
        require_unclaimed(invoice, now)
        if refusal := retainage_cancel_refusal(invoice):
            raise refusal

    with transaction.atomic(durable=True):
        invoice = lock_invoice(invoice_id)
        check(invoice)
        intent_id = invoice.provider_reference
        gateway_name = invoice.payment_gateway
    if intent_id:
        # Stop the customer paying it before we say it is cancelled; no lock is held while
        # the provider answers, so the state is checked again below.
        gateway = gateway_for(gateway_name)
        try:
            gateway.cancel_intent(intent_id)
        except GatewayError as exc:
            raise ProviderError(
                f"{exc}. The invoice was not cancelled; try again in a few minutes.",
                code="payment_provider_error",
            ) from exc
    with transaction.atomic(durable=True):
        project, invoice = lock_project_and_invoice(invoice_id)
        check(invoice)
        was_sent = invoice.status != InvoiceStatus.DRAFT
        # A sent invoice is never changed, only corrected: the credit note is what
        # cancels it in the books (its contract share is then free to be billed again).
        note = credit_for_cancel(invoice, actor=actor, now=now)
        _mark_cancelled(invoice, actor=actor, reason=reason, now=now)
        if was_sent:
            queue_invoice_email(invoice, "invoice_cancelled", now=now, credit_note=note)
            if note is not None and invoice.customer_email:
                note.emailed_at = now
                note.save(update_fields=["emailed_at"])
        if invoice.invoice_type == InvoiceType.MILESTONE and invoice.retainage_amount > 0:
            # What it withheld is no longer held: a draft release re-bills the rest.
            resettle_releases(
                actor=actor, project=project, now=now, reason="Retainage changed", remake=True
            )
    return invoice


def invoice_cancel_draft_for_reopen(*, actor: User, invoice: Invoice, now: datetime) -> None:
    """Milestone reopening, inside its transaction (the project already locked): the draft
    goes; a sent invoice stays."""
    require_atomic()
    invoice = lock_invoice(invoice.pk)
    if refusal := reopen_refusal(invoice):
        raise refusal
    require_unclaimed(invoice, now)
    _mark_cancelled(invoice, actor=actor, reason="Milestone reopened", now=now)
