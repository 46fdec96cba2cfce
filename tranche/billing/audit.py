"""The audit trail: every state change of an invoice writes one InvoiceEvent, in the same
transaction as the change, saying who did what and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import models

from tranche.accounts.models import User
from tranche.billing.models import Invoice, InvoiceEvent
from tranche.core.db import require_atomic


class EventKind(models.TextChoices):
    CREATED = "created", "Draft created"
    EDITED = "edited", "Draft edited"
    SEND_FAILED = "send_failed", "Sending failed"
    SENT = "sent", "Sent"
    CANCELLED = "cancelled", "Cancelled"
    PAYMENT_RECORDED = "payment_recorded", "Payment recorded"
    PAYMENT_ON_CANCELLED_INVOICE = "payment_on_cancelled_invoice", "Paid after cancelling"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    REFUND_RECORDED = "refund_recorded", "Refund recorded"
    STATUS_CHANGED = "status_changed", "Status changed"
    CREDIT_OWED = "credit_owed", "Credit owed to the customer"
    # We changed or cancelled the PaymentIntent (the amount due changed) …
    INTENT_AMOUNT_CHANGED = "intent_amount_changed", "Online amount changed"
    INTENT_CANCELLED = "intent_cancelled", "Online payment withdrawn"
    # … or the provider told us it was cancelled (Stripe spells it "canceled").
    INTENT_CANCELED_AT_PROVIDER = "intent_canceled", "Online payment cancelled at the provider"


def record_event(
    invoice: Invoice, kind: EventKind, *, actor: User | None, now: datetime, **details: Any
) -> InvoiceEvent:
    require_atomic()
    return InvoiceEvent.objects.create(
        invoice=invoice, actor=actor, kind=kind, details=details, created_at=now
    )
