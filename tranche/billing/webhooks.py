"""Stripe webhooks: verify, store the event once, then settle through billing.payments.

Within the request only the event row and the settlement are written (emails go through
the outbox), so Stripe gets its answer fast. An event that cannot be settled yet, such
as a success for an invoice whose send has not committed, stays unprocessed and is
retried by the worker; nothing is dropped."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tranche.billing.gateways.stripe import WebhookInvalid, verify_webhook
from tranche.billing.models import PaymentMethod, StripeEvent
from tranche.billing.payments import (
    NotYetSettleable,
    lock_invoice_for_intent,
    settle_intent_succeeded,
    settle_refund,
)
from tranche.billing.services import record_event
from tranche.core.errors import DomainError
from tranche.core.money import from_minor_units

logger = logging.getLogger(__name__)

# Past this, an event that still cannot be settled is left for a person to look at.
GIVE_UP_AFTER = timedelta(days=3)


class WebhookRejected(DomainError):
    status = 400
    code = "webhook_rejected"


def webhook_receive(*, payload: bytes, signature: str, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if not settings.STRIPE_WEBHOOK_SECRETS:
        raise WebhookRejected("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
    try:
        event = verify_webhook(payload, signature, settings.STRIPE_WEBHOOK_SECRETS)
    except WebhookInvalid as exc:
        raise WebhookRejected(str(exc), code="webhook_signature_invalid") from None
    try:
        with transaction.atomic():
            row = StripeEvent.objects.create(
                event_id=event["id"],
                event_type=event.get("type", ""),
                payload=event,
                received_at=now,
            )
    except IntegrityError:
        return "duplicate"
    return event_process(row, now=now)


def event_process(row: StripeEvent, *, now: datetime) -> str:
    row.attempts += 1
    try:
        row.outcome = _handle(row.payload, now)
        row.processed_at = now
    except NotYetSettleable as exc:
        row.outcome = f"waiting: {exc}"[:200]
    except DomainError as exc:
        row.outcome = f"refused: {exc.detail}"[:200]
        row.processed_at = now
        logger.warning("Stripe event %s refused: %s", row.event_id, exc.detail)
    row.save(update_fields=["attempts", "outcome", "processed_at"])
    return row.outcome


def events_retry(*, now: datetime | None = None) -> int:
    """Process again the events that were waiting; returns how many got processed."""
    now = now or timezone.now()
    done = 0
    for row in StripeEvent.objects.filter(processed_at__isnull=True).order_by("received_at")[:200]:
        if now - row.received_at > GIVE_UP_AFTER:
            row.outcome = f"gave up: {row.outcome}"[:200]
            row.processed_at = now
            row.save(update_fields=["outcome", "processed_at"])
            continue
        event_process(row, now=now)
        done += row.processed_at is not None
    return done


def _handle(event: dict[str, Any], now: datetime) -> str:
    kind = event.get("type", "")
    obj = event.get("data", {}).get("object", {})
    if kind == "payment_intent.succeeded":
        currency = str(obj["currency"]).upper()
        recorded = settle_intent_succeeded(
            intent_id=obj["id"],
            amount_received=from_minor_units(int(obj["amount_received"]), currency),
            currency=currency,
            method=PaymentMethod.STRIPE,
            now=now,
            source=f"webhook {event['id']}",
        )
        return "settled" if recorded.payment else "already settled"
    if kind == "charge.refunded":
        currency = str(obj["currency"]).upper()
        recorded = settle_refund(
            intent_id=obj["payment_intent"],
            charge_id=obj["id"],
            refunded_total=from_minor_units(int(obj["amount_refunded"]), currency),
            currency=currency,
            now=now,
        )
        return "refund recorded" if recorded.payment else "refund already recorded"
    if kind in ("payment_intent.payment_failed", "payment_intent.canceled"):
        return _audit(kind, obj, now)
    return "ignored"


def _audit(kind: str, obj: dict[str, Any], now: datetime) -> str:
    with transaction.atomic():
        invoice = lock_invoice_for_intent(obj["id"])
        error = (obj.get("last_payment_error") or {}).get("message", "")
        name = "payment_failed" if kind.endswith("payment_failed") else "intent_canceled"
        record_event(invoice, name, actor=None, now=now, message=error)
    return "recorded"
