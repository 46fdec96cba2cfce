"""Money in and out of invoices: one settlement path for the pay page, Stripe webhooks,
reconciliation and payments recorded by hand.

`amount_paid` is always recomputed from the Payment rows under the invoice's row lock,
and the status follows from it, so the same facts give the same status whatever order
they arrive in; only a refund lowers what was paid. Money received beyond the amount
(a customer who paid twice) is never a negative amount due: it is the invoice's
`credit_owed`, flagged with an event.

Provider identities (PaymentIntent ids, refund keys) and the references an admin types
for money received by hand live in separate columns: only the first are unique, so no
manual entry can stand in for, or block, a provider's payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from tranche.accounts.models import User
from tranche.billing.audit import EventKind, record_event
from tranche.billing.gateways import (
    sandbox_allowed,
)
from tranche.billing.locks import lock_invoice
from tranche.billing.models import (
    MANUAL_METHODS,
    OPEN_STATUSES,
    SENT_STATUSES,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentMethod,
)
from tranche.billing.rules import status_for
from tranche.billing.services.emails import (
    queue_invoice_email,
    queue_payment_failed,
    queue_payment_received,
)
from tranche.billing.tasks import sync_intent_amount as sync_intent_amount_task
from tranche.core.db import after_commit, require_atomic
from tranche.core.errors import Conflict, DomainError, Invalid
from tranche.core.money import (
    ZERO,
    Money,
    has_currency_precision,
)
from tranche.core.requestid import current_request_id


class NotYetSettleable(Exception):
    """The event refers to something not visible yet (an invoice whose send has not
    committed, a refund of a payment not recorded yet): try again later."""


def settle_invoice(invoice: Invoice, *, now: datetime, actor: User | None) -> None:
    """Recompute what was paid and move the status (after a payment, a refund or a
    credit note); the receipt goes out once."""
    require_atomic()
    paid = invoice.payments.aggregate(total=Sum("amount"))["total"]
    credit_before = invoice.credit_owed
    invoice.amount_paid = Decimal(paid or ZERO).quantize(Decimal("0.001"))
    if invoice.credit_owed > credit_before:
        # Someone has to give this money back: say so where staff look, once per increase.
        record_event(
            invoice,
            EventKind.CREDIT_OWED,
            actor=actor,
            now=now,
            amount=invoice.owed_back.api,
        )
    if invoice.status == InvoiceStatus.CANCELLED:
        invoice.updated_at = now
        invoice.save(update_fields=["amount_paid", "updated_at"])
        return
    before = invoice.status
    invoice.status = status_for(invoice, timezone.localdate(now))
    if invoice.status == InvoiceStatus.PAID:
        invoice.paid_at = invoice.paid_at or now
    else:
        invoice.paid_at = None
    invoice.updated_at = now
    invoice.save(update_fields=["amount_paid", "status", "paid_at", "updated_at"])
    if invoice.status != before:
        record_event(
            invoice, EventKind.STATUS_CHANGED, actor=actor, now=now, old=before, new=invoice.status
        )
    if invoice.status == InvoiceStatus.PAID:
        queue_invoice_email(invoice, "invoice_paid", now=now)


@dataclass(frozen=True)
class Recorded:
    payment: Payment | None  # None when this provider reference was recorded before
    invoice: Invoice


def _insert_payment(invoice: Invoice, **fields: object) -> Payment | None:
    require_atomic()  # the payment commits with the settlement that counts it
    try:
        with transaction.atomic():
            return Payment.objects.create(invoice=invoice, currency=invoice.currency, **fields)
    except IntegrityError:
        return None


def payment_record_manual(
    *,
    actor: User,
    invoice_id: int,
    amount: Decimal,
    method: str,
    received_on: date,
    reference: str = "",
    note: str = "",
    now: datetime | None = None,
) -> Recorded:
    """An admin records money received outside Stripe (a bank transfer, cash, a check)."""
    now = now or timezone.now()
    if method not in MANUAL_METHODS:
        raise Invalid(
            f"Method must be one of {', '.join(MANUAL_METHODS)}.", code="payment_method_invalid"
        )
    if received_on > timezone.localdate(now):
        raise Invalid("A payment cannot be received in the future.", code="received_on_future")
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        if invoice.status not in SENT_STATUSES or invoice.status in (
            InvoiceStatus.PAID,
            InvoiceStatus.CREDITED,
        ):
            raise Conflict(
                f"{invoice} is {invoice.status.replace('_', ' ')}; only a sent invoice with an "
                "amount due can take payments.",
                code="invoice_not_payable",
            )
        if amount <= 0:
            raise Invalid("The amount must be greater than zero.", code="amount_not_positive")
        if not has_currency_precision(amount, invoice.currency):
            raise Invalid(
                f"{amount} has more decimal places than {invoice.currency} allows.",
                code="amount_precision",
            )
        if amount > invoice.amount_due:
            raise Invalid(
                f"{Money(amount, invoice.currency)} is more than the amount due ({invoice.due}).",
                code="amount_exceeds_due",
            )
        reference = reference.strip()
        # The same reference twice on one invoice is a double entry. Checked under the
        # invoice's row lock, so two admins cannot both pass it; across invoices it is
        # allowed (one transfer may pay several invoices).
        if reference and invoice.payments.filter(reference=reference).exists():
            raise Conflict(
                f"A payment with reference {reference!r} is already recorded on {invoice}.",
                code="payment_reference_taken",
            )
        payment = Payment.objects.create(
            invoice=invoice,
            currency=invoice.currency,
            amount=amount,
            method=method,
            reference=reference,
            received_on=received_on,
            recorded_by=actor,
            note=note.strip(),
            created_at=now,
        )
        record_event(
            invoice,
            EventKind.PAYMENT_RECORDED,
            actor=actor,
            now=now,
            amount=str(amount),
            method=method,
        )
        settle_invoice(invoice, now=now, actor=actor)
        queue_payment_received(invoice, payment, now=now, actor_id=actor.pk)
        # What is left to pay online changed (or nothing is left): the intent follows.
        queue_intent_amount_sync(invoice)
    return Recorded(payment, invoice)


def lock_invoice_for_intent(intent_id: str | None) -> Invoice:
    # Drafts and manual-only invoices have provider_reference NULL, and the ORM turns
    # `= None` into IS NULL: an event without an intent id must match nothing.
    if not intent_id or not isinstance(intent_id, str):
        raise Invalid("The event names no PaymentIntent.", code="intent_id_missing")
    found = (
        Invoice.objects.filter(provider_reference=intent_id).values_list("pk", flat=True).first()
    )
    if found is None:
        raise NotYetSettleable(f"No sent invoice has PaymentIntent {intent_id} yet.")
    return lock_invoice(found)


def settle_intent_succeeded(
    *,
    intent_id: str,
    amount_received: Decimal,
    currency: str,
    method: str,
    now: datetime | None = None,
    actor: User | None = None,
    source: str,
) -> Recorded:
    """A PaymentIntent succeeded: record `amount_received` once for its invoice."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = lock_invoice_for_intent(intent_id)
        if currency.upper() != invoice.currency:
            raise Invalid(
                f"Payment in {currency.upper()} for an invoice in {invoice.currency}.",
                code="currency_mismatch",
            )
        payment = _insert_payment(
            invoice,
            amount=amount_received,
            method=method,
            provider_reference=intent_id,
            received_on=timezone.localdate(now),
            recorded_by=actor,
            note=f"via {source}",
            created_at=now,
        )
        if payment is not None:
            kind = (
                EventKind.PAYMENT_ON_CANCELLED_INVOICE
                if invoice.status == InvoiceStatus.CANCELLED
                else EventKind.PAYMENT_RECORDED
            )
            record_event(
                invoice,
                kind,
                actor=actor,
                now=now,
                amount=str(amount_received),
                method=method,
                source=source,
            )
            settle_invoice(invoice, now=now, actor=actor)
            queue_payment_received(invoice, payment, now=now, actor_id=actor.pk if actor else None)
    return Recorded(payment, invoice)


def settle_refund(
    *,
    intent_id: str,
    charge_id: str,
    refunded_total: Decimal,
    currency: str,
    now: datetime | None = None,
) -> Recorded:
    """A charge's refunds now total `refunded_total` (cumulative, as Stripe reports it):
    record the part not recorded yet as a negative payment."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = lock_invoice_for_intent(intent_id)
        received = invoice.payments.filter(provider_reference=intent_id).first()
        if received is None:
            raise NotYetSettleable(f"The payment of {intent_id} is not recorded yet.")
        if currency.upper() != invoice.currency:
            raise Invalid("Refund currency differs from the invoice's.", code="currency_mismatch")
        prefix = f"refund:{charge_id}:"
        already = _refunded(invoice, prefix)
        delta = refunded_total - already
        # No charge can give back more than the intent took, however the event adds up.
        if delta > 0 and _refunded(invoice, "refund:") + delta > received.amount:
            raise Invalid(
                f"A refund of {Money(refunded_total, invoice.currency)} on {charge_id} would "
                f"give back more than {intent_id} received ({received.money}).",
                code="refund_exceeds_payment",
            )
        payment = None
        if delta > 0:
            payment = _insert_payment(
                invoice,
                amount=-delta,
                method=invoice.payment_gateway or "stripe",
                provider_reference=f"{prefix}{refunded_total}",
                received_on=timezone.localdate(now),
                note="refund",
                created_at=now,
            )
        if payment is not None:
            # Stripe cannot say whether the customer now owes less. A refund of money we
            # owed back (an overpayment, or what a credit note took off a paid invoice)
            # belongs to the credit note that made it owed; any other refund makes the
            # amount due again, and staff issue a credit note if the customer owes less.
            note = invoice.credit_notes.order_by("-id").first()
            if note is not None and invoice.credit_owed >= delta:
                payment.credit_note = note
                payment.save(update_fields=["credit_note"])
            record_event(
                invoice,
                EventKind.REFUND_RECORDED,
                actor=None,
                now=now,
                amount=str(-delta),
                credit_note=payment.credit_note.number if payment.credit_note else None,
            )
            settle_invoice(invoice, now=now, actor=None)
            queue_intent_amount_sync(invoice)
    return Recorded(payment, invoice)


def _refunded(invoice: Invoice, prefix: str) -> Decimal:
    """What the refunds recorded under `prefix` gave back, as a positive amount."""
    rows = invoice.payments.filter(provider_reference__startswith=prefix)
    return -(rows.aggregate(total=Sum("amount"))["total"] or ZERO)


def queue_intent_amount_sync(invoice: Invoice) -> None:
    """Once the current transaction commits, bring the invoice's PaymentIntent to the
    amount due then (see invoice_sync_intent_amount). Called wherever the amount due
    changes other than through the intent itself: a payment recorded by hand, a refund."""
    require_atomic()
    if invoice.provider_reference and invoice.payment_gateway == PaymentMethod.STRIPE:
        invoice.intent_out_of_step = True
        invoice.save(update_fields=["intent_out_of_step"])
        invoice_id = invoice.pk
        after_commit(
            lambda: sync_intent_amount_task.enqueue(invoice_id, request_id=current_request_id())
        )


SANDBOX_CARD_PAYS = "4242424242424242"


SANDBOX_OFF = (
    "This invoice was issued in test mode (the sandbox), which is switched off now, so it "
    "cannot be paid online. Please contact us to pay it."
)


SANDBOX_CARD_DECLINED = "4000000000000002"


class PaymentDeclined(DomainError):
    status = 402
    code = "card_declined"


def sandbox_pay(*, invoice_id: int, card_number: str, now: datetime | None = None) -> Recorded:
    """The sandbox's pay page: the test card pays what is due, the decline card fails.
    Only while the sandbox is allowed now: an invoice sent from the sandbox stays unpaid
    by test cards once the installation takes real money."""
    now = now or timezone.now()
    digits = "".join(ch for ch in card_number if ch.isdigit())
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        if invoice.payment_gateway != PaymentMethod.SANDBOX or not invoice.provider_reference:
            raise Conflict("This invoice is not paid through the sandbox.", code="not_sandbox")
        if not sandbox_allowed():
            raise Conflict(SANDBOX_OFF, code="sandbox_disabled")
        if invoice.status not in OPEN_STATUSES or invoice.amount_due <= 0:
            raise Conflict(
                f"{invoice} is {invoice.get_status_display().lower()}; there is nothing to pay.",
                code="invoice_not_payable",
            )
        if digits == SANDBOX_CARD_DECLINED:
            failed = record_event(
                invoice,
                EventKind.PAYMENT_FAILED,
                actor=None,
                now=now,
                message="Sandbox card declined",
            )
            queue_payment_failed(
                invoice, now=now, reason="Sandbox card declined", event_id=failed.pk
            )
        elif digits == SANDBOX_CARD_PAYS:
            return settle_intent_succeeded(
                intent_id=invoice.provider_reference,
                amount_received=invoice.amount_due,
                currency=invoice.currency,
                method=PaymentMethod.SANDBOX,
                now=now,
                source="sandbox pay page",
            )
        else:
            raise Invalid(
                "In the sandbox, pay with the test card 4242 4242 4242 4242 (or see a decline "
                "with 4000 0000 0000 0002).",
                code="sandbox_card_unknown",
            )
    raise PaymentDeclined("Your card was declined. No money was taken; try another card.")
