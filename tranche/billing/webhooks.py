"""Stripe webhooks: verify, store the event once, then settle through
billing.services.payments.

Within the request only the event row and the settlement are written (emails go through
the outbox), so Stripe gets its answer fast. An event that cannot be settled yet, such
as a success for an invoice whose send has not committed, stays unprocessed and is
retried by the worker; nothing is dropped.

A signed event is still checked for shape and bounds before it is stored: Stripe never
sends an amount of 10^20 or a success without a currency, and such an event, once stored,
would fail again on every retry."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tranche.billing.audit import EventKind, record_event
from tranche.billing.gateways.stripe import WebhookInvalid, verify_webhook
from tranche.billing.models import PaymentMethod, StripeEvent
from tranche.billing.services.emails import queue_payment_failed
from tranche.billing.services.payments import (
    NotYetSettleable,
    lock_invoice_for_intent,
    settle_intent_succeeded,
    settle_refund,
)
from tranche.core.errors import DomainError
from tranche.core.money import MAX_AMOUNT, UnknownCurrency, from_minor_units, normalize_currency

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
    if not _is_json_object(payload):
        # The SDK itself fails on a body that is JSON but not an object (an array, a
        # string); whoever signed it, there is nothing in it to act on.
        raise WebhookRejected("The event is not a JSON object.", code="webhook_malformed")
    try:
        event = verify_webhook(payload, signature, settings.STRIPE_WEBHOOK_SECRETS)
    except WebhookInvalid as exc:
        raise WebhookRejected(str(exc), code="webhook_signature_invalid") from None
    problem = event_problem(event)
    if problem is not None:
        logger.warning("Signed Stripe event refused as malformed: %s", problem)
        raise WebhookRejected(
            f"The event is not one Tranche can process: {problem}.", code="webhook_malformed"
        )
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
    try:
        return event_process(row, now=now)
    except Exception:
        # Stored and left waiting: the worker retries it, and Stripe needs no 500 for it.
        logger.exception("Stripe event %s could not be processed", row.event_id)
        return row.outcome


def event_process(row: StripeEvent, *, now: datetime) -> str:
    """Settle one stored event. An unexpected error is written on the row, which stays
    waiting (retried, then given up after GIVE_UP_AFTER), and raised for the caller to log."""
    row.attempts += 1
    problem = event_problem(row.payload)
    try:
        if problem is not None:
            # Stored before events were checked: it can never settle, so it is closed.
            row.outcome = f"rejected: {problem}"[:200]
            row.processed_at = now
            logger.warning("Stripe event %s rejected: %s", row.event_id, problem)
        else:
            row.outcome = _handle(row.payload, now)
            row.processed_at = now
    except NotYetSettleable as exc:
        row.outcome = f"waiting: {exc}"[:200]
    except DomainError as exc:
        row.outcome = f"refused: {exc.detail}"[:200]
        row.processed_at = now
        logger.warning("Stripe event %s refused: %s", row.event_id, exc.detail)
    except Exception as exc:
        row.outcome = f"waiting: error {type(exc).__name__}"[:200]
        row.save(update_fields=["attempts", "outcome"])
        raise
    row.save(update_fields=["attempts", "outcome", "processed_at"])
    return row.outcome


@dataclass(frozen=True)
class RetryReport:
    processed: int  # closed by this pass: settled, refused or rejected
    failed: int  # raised an unexpected error, logged; still waiting


def events_retry(*, now: datetime | None = None) -> RetryReport:
    """Process again the events that were waiting. Each is isolated: one that raises is
    logged and counted, and the events behind it are still processed."""
    now = now or timezone.now()
    done = failed = 0
    waiting = StripeEvent.objects.filter(processed_at__isnull=True).order_by("received_at")
    for row in list(waiting[:200]):
        try:
            if now - row.received_at > GIVE_UP_AFTER:
                row.outcome = f"gave up: {row.outcome}"[:200]
                row.processed_at = now
                row.save(update_fields=["outcome", "processed_at"])
                continue
            event_process(row, now=now)
            done += row.processed_at is not None
        except Exception:
            logger.exception("Stripe event %s could not be processed", row.event_id)
            failed += 1
    return RetryReport(processed=done, failed=failed)


# --- the shape of an event ----------------------------------------------------------------

_ID_MAX = 255  # StripeEvent.event_id and Invoice.provider_reference hold this much


def _is_json_object(payload: bytes) -> bool:
    try:
        return isinstance(json.loads(payload), dict)
    except ValueError:
        return True  # not JSON at all: the signature check reports it
    except RecursionError:
        return False  # nested deeper than any event; the SDK's own parse would crash


def _text(value: object, name: str, limit: int = _ID_MAX) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"{name} is missing or not text"
    if len(value) > limit:
        return f"{name} is longer than {limit} characters"
    return None


def _amount(obj: dict[str, Any], name: str, currency: str, *, positive: bool) -> str | None:
    value = obj.get(name)
    # bool is an int in Python; Stripe sends amounts as whole minor units.
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{name} is missing or not a whole number"
    if value < 0 or (positive and value == 0):
        return f"{name} must be {'greater than zero' if positive else 'zero or more'}"
    if from_minor_units(value, currency) > MAX_AMOUNT:
        return f"{name} is larger than any amount Tranche records"
    return None


def _currency(obj: dict[str, Any]) -> tuple[str, str | None]:
    value = obj.get("currency")
    if not isinstance(value, str):
        return "", "currency is missing or not text"
    try:
        return normalize_currency(value), None
    except UnknownCurrency:
        return "", "currency is not an ISO 4217 code"


def event_problem(event: object) -> str | None:
    """Why `event` cannot be acted on, or None when its shape and amounts are sound.
    Only the fields Tranche reads are checked; event types it ignores need just an id."""
    if not isinstance(event, dict):
        return "the event is not a JSON object"
    problem = _text(event.get("id"), "id") or _text(event.get("type"), "type", 100)
    if problem:
        return problem
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return "data.object is missing or not an object"
    kind = event["type"]
    if kind not in _HANDLED:
        return None
    problem = _text(obj.get("id"), "data.object.id")
    if problem:
        return problem
    if kind == "payment_intent.succeeded":
        currency, problem = _currency(obj)
        return problem or _amount(obj, "amount_received", currency, positive=True)
    if kind == "charge.refunded":
        currency, problem = _currency(obj)
        return (
            problem
            or _text(obj.get("payment_intent"), "payment_intent")
            or _amount(obj, "amount_refunded", currency, positive=False)
        )
    error = obj.get("last_payment_error")
    if error is not None and not (
        isinstance(error, dict) and isinstance(error.get("message", ""), str)
    ):
        return "last_payment_error is not an object with a text message"
    return None


_HANDLED = frozenset(
    {
        "payment_intent.succeeded",
        "charge.refunded",
        "payment_intent.payment_failed",
        "payment_intent.canceled",
    }
)


def _handle(event: dict[str, Any], now: datetime) -> str:
    """`event` passed `event_problem`: the fields read here are present and sound."""
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
        name = (
            EventKind.PAYMENT_FAILED
            if kind.endswith("payment_failed")
            else EventKind.INTENT_CANCELED_AT_PROVIDER
        )
        event = record_event(invoice, name, actor=None, now=now, message=error)
        if name == EventKind.PAYMENT_FAILED:
            queue_payment_failed(
                invoice,
                now=now,
                reason=error or "The payment provider gave no reason.",
                event_id=event.pk,
            )
    return "recorded"


# --- retried by a person (the operations admin) -------------------------------------------

GAVE_UP = "gave up: "  # the prefix `events_retry` writes on an event it stops retrying


@dataclass(frozen=True)
class ManualRetryReport:
    processed: int  # settled (or refused, rejected) by this retry
    waiting: int  # still cannot be settled: a waiting event waits on, a given-up one stays so
    skipped: int  # already processed; Tranche acted on it once and does not again


def stripe_events_retry(
    *, event_ids: Iterable[int], now: datetime | None = None
) -> ManualRetryReport:
    """Process the selected events again now, through the same path as the webhook: the
    ones still waiting and the ones the worker gave up on (their invoice may be fixed
    since). Each is isolated: one that raises is logged, counted as waiting, and the
    others are still processed."""
    now = now or timezone.now()
    processed = waiting = skipped = 0
    rows = StripeEvent.objects.filter(pk__in=list(event_ids)).order_by("received_at", "pk")
    for row in rows:
        given_up = row.processed_at is not None and row.outcome.startswith(GAVE_UP)
        if row.processed_at is not None and not given_up:
            skipped += 1
            continue
        row.processed_at = None
        try:
            event_process(row, now=now)
        except Exception:
            logger.exception("Stripe event %s could not be processed", row.event_id)
        if row.processed_at is not None:
            processed += 1
            continue
        waiting += 1
        if given_up:
            # Still unsettleable: back in the worker's queue, it would only be given up
            # again at the next pass. It stays given up, with this attempt's reason.
            StripeEvent.objects.filter(pk=row.pk).update(
                outcome=f"{GAVE_UP}{row.outcome}"[:200], processed_at=now
            )
    return ManualRetryReport(processed=processed, waiting=waiting, skipped=skipped)
