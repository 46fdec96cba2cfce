"""The invoice's PaymentIntent at its provider: what it is created with, and keeping it
in step with the invoice (its number after sending, its amount when the amount due
changes). Run by tasks after commit, and by the pay page before it hands an intent out."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tranche.billing.audit import EventKind, record_event
from tranche.billing.gateways import (
    Intent,
    IntentRequest,
    gateway_for,
)
from tranche.billing.gateways.base import UNPAID_INTENT_STATUSES
from tranche.billing.models import (
    OPEN_STATUSES,
    SENT_STATUSES,
    Invoice,
    PaymentMethod,
)
from tranche.core.money import (
    Money,
    to_minor_units,
)

logger = logging.getLogger(__name__)


def intent_request(invoice: Invoice, *, attempt: int = 0) -> IntentRequest:
    """What sending `invoice` asks the provider to create.

    The idempotency key names this installation, the invoice and a fingerprint of all
    that is sent: a retry of the same send (after a timeout or a lost answer) gets the
    same PaymentIntent back, and a send with anything changed (the amount, the
    description, the email) gets a key of its own, since Stripe refuses a key reused
    with other parameters. `attempt` counts the earlier sends the provider answered with
    an error: Stripe keeps that answer for the key, so the next send needs a fresh one."""
    site = urlsplit(settings.BASE_URL).netloc
    minor = to_minor_units(invoice.amount, invoice.currency)
    project = invoice.project
    description = f"{project.name}: {invoice.description}"
    metadata = {
        "invoice_id": str(invoice.pk),
        "project_id": str(invoice.project_id),
        "customer_id": str(invoice.customer_id),
    }
    receipt_email = invoice.customer_email
    sent = [minor, invoice.currency, description, metadata, receipt_email, attempt]
    fingerprint = hashlib.sha256(json.dumps(sent, sort_keys=True).encode()).hexdigest()[:16]
    return IntentRequest(
        amount_minor=minor,
        currency=invoice.currency,
        description=description,
        metadata=metadata,
        receipt_email=receipt_email,
        idempotency_key=(
            f"tranche:{site}:invoice:{invoice.pk}:send:{minor}{invoice.currency}:{fingerprint}"
        ),
    )


def invoice_sync_intent(*, invoice_id: int) -> None:
    """Give the provider's PaymentIntent the invoice number, known only after sending."""
    # Durable: a provider call follows, and must never run inside someone's transaction.
    with transaction.atomic(durable=True):
        invoice = Invoice.objects.select_related("project").get(pk=invoice_id)
    if not invoice.provider_reference or not invoice.number:
        return
    gateway = gateway_for(invoice.payment_gateway)
    request = intent_request(invoice)
    gateway.update_intent(
        invoice.provider_reference,
        description=f"{invoice.number} · {request.description}",
        metadata={**request.metadata, "invoice_number": invoice.number},
    )


def _mark_in_step(invoice: Invoice) -> None:
    """The intent now charges what `invoice` (as read) asks for. Only if nothing moved
    since that read: a payment recorded meanwhile keeps the flag for the next sync."""
    Invoice.objects.filter(
        pk=invoice.pk,
        status=invoice.status,
        amount_paid=invoice.amount_paid,
        intent_out_of_step=True,
    ).update(intent_out_of_step=False)


@dataclass(frozen=True)
class ResyncReport:
    synced: int
    failed: int


def intents_resync(*, now: datetime, limit: int = 200) -> ResyncReport:
    """The periodic pass's retry of intents left out of step (the provider failed when
    the amount due changed). Each invoice on its own: one failure is logged and counted."""
    synced = failed = 0
    waiting = Invoice.objects.filter(intent_out_of_step=True).order_by("pk")
    for invoice_id in list(waiting.values_list("pk", flat=True)[:limit]):
        try:
            invoice_sync_intent_amount(invoice_id=invoice_id, now=now)
        except Exception:
            logger.exception("Could not bring invoice %s's PaymentIntent in step", invoice_id)
            failed += 1
        else:
            synced += 1
    return ResyncReport(synced=synced, failed=failed)


# Each round reads the invoice afresh; more than one is needed only when payments land
# while the provider is being called, and a few are enough to catch up with any of them.
INTENT_SYNC_ROUNDS = 3


def invoice_sync_intent_amount(*, invoice_id: int, now: datetime | None = None) -> Intent | None:
    """Make the invoice's PaymentIntent charge exactly the amount due now: change its
    amount while it is unpaid, or cancel it once the invoice asks for nothing more (paid
    by transfer). Returns the intent as it now stands at the provider, or None when the
    invoice has none to hand out (none, sandbox, cancelled here).

    No row lock is held while the provider answers; the invoice is read again after
    each change instead, so a payment recorded meanwhile (or a stale task running after
    a newer one) ends with the amount due now, not the amount due when it started.
    Raises GatewayError or ProviderError when the provider cannot be asked or refuses."""
    now = now or timezone.now()
    intent: Intent | None = None
    for _ in range(INTENT_SYNC_ROUNDS):
        # Durable: provider calls follow, and must never run inside someone's transaction.
        with transaction.atomic(durable=True):
            invoice = Invoice.objects.get(pk=invoice_id)
        reference = invoice.provider_reference
        # The sandbox charges the amount due at the moment of paying: no intent to change.
        if (
            not reference
            or invoice.payment_gateway == PaymentMethod.SANDBOX
            or invoice.status not in SENT_STATUSES
        ):
            _mark_in_step(invoice)
            return None
        gateway = gateway_for(invoice.payment_gateway)
        intent = gateway.retrieve_intent(reference)
        if intent.status not in UNPAID_INTENT_STATUSES:
            _mark_in_step(invoice)
            return intent  # processing, succeeded or canceled: its amount is history
        if invoice.status not in OPEN_STATUSES or invoice.amount_due <= 0:
            gateway.cancel_intent(reference)
            with transaction.atomic(durable=True):
                record_event(
                    invoice,
                    EventKind.INTENT_CANCELLED,
                    actor=None,
                    now=now,
                    provider_reference=reference,
                    reason="The invoice was settled another way; nothing is left to pay online.",
                )
                _mark_in_step(invoice)
            return None
        due = to_minor_units(invoice.amount_due, invoice.currency)
        if intent.amount_minor == due:
            _mark_in_step(invoice)
            return intent
        before = intent.amount_minor
        intent = gateway.update_intent_amount(reference, amount_minor=due)
        with transaction.atomic(durable=True):
            record_event(
                invoice,
                EventKind.INTENT_AMOUNT_CHANGED,
                actor=None,
                now=now,
                provider_reference=reference,
                old=Money.from_minor(before, invoice.currency).api,
                new=invoice.due.api,
            )
    return intent
