"""Ask the provider about unpaid sent invoices, so a missed webhook cannot leave an
invoice unpaid forever. Safe to run at any time: it settles through the same path as
the webhook, which records each PaymentIntent once."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import F
from django.utils import timezone

from tranche.billing.gateways import GatewayError, gateway_for
from tranche.billing.models import OPEN_STATUSES, Invoice, PaymentMethod
from tranche.billing.services.payments import NotYetSettleable, settle_intent_succeeded
from tranche.core.errors import DomainError
from tranche.core.heartbeat import RECONCILE, heartbeat_record
from tranche.core.money import Money, from_minor_units

# Younger invoices are left to their webhooks, which normally arrive within seconds.
MIN_AGE = timedelta(hours=1)


def reconcile_payments(*, now: datetime | None = None) -> tuple[int, list[str]]:
    """Returns how many invoices were checked and a line for each change or problem.
    Each invoice is asked about at the gateway it was sent with."""
    now = now or timezone.now()
    candidates = Invoice.objects.filter(
        status__in=OPEN_STATUSES,
        payment_gateway=PaymentMethod.STRIPE,
        provider_reference__isnull=False,
        sent_at__lt=now - MIN_AGE,
    ).exclude(payments__provider_reference=F("provider_reference"))
    lines: list[str] = []
    checked = 0
    for invoice in candidates.order_by("pk"):
        assert invoice.provider_reference
        checked += 1
        try:
            intent = gateway_for(invoice.payment_gateway).retrieve_intent(
                invoice.provider_reference
            )
        except (GatewayError, DomainError) as exc:
            lines.append(f"{invoice.number}: could not ask the provider ({exc})")
            continue
        if intent.status != "succeeded":
            continue
        amount = from_minor_units(intent.amount_received_minor, intent.currency)
        try:
            recorded = settle_intent_succeeded(
                intent_id=intent.id,
                amount_received=amount,
                currency=intent.currency,
                method=PaymentMethod.STRIPE,
                now=now,
                source="reconcile",
            )
        except (NotYetSettleable, DomainError) as exc:
            lines.append(f"{invoice.number}: not settled ({exc})")
            continue
        if recorded.payment is not None:
            lines.append(
                f"{invoice.number}: recorded {Money(amount, intent.currency)} "
                f"paid through {intent.id}; the invoice is now {recorded.invoice.status}"
            )
    # The Operations page shows when it last ran and what it found.
    heartbeat_record(
        name=RECONCILE,
        summary=f"{checked} invoice(s) checked, {len(lines)} change(s) or problem(s)",
        now=now,
    )
    return checked, lines
