"""Stripe webhook events as Stripe sends them, signed the way Stripe signs them."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

WEBHOOK_SECRET = "whsec_test_tranche"


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> str:
    return json.dumps(
        {
            "id": event_id or f"evt_{secrets.token_hex(8)}",
            "object": "event",
            "type": kind,
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
    )


def intent_succeeded(intent_id: str, amount_minor: int, currency: str = "usd", **kw: Any) -> str:
    return event(
        "payment_intent.succeeded",
        {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount_minor,
            "amount_received": amount_minor,
            # Stripe's PaymentIntent object carries it in webhooks too.
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "currency": currency,
            "status": "succeeded",
        },
        **kw,
    )


def intent_failed(intent_id: str, message: str = "Your card was declined.", **kw: Any) -> str:
    return event(
        "payment_intent.payment_failed",
        {
            "id": intent_id,
            "object": "payment_intent",
            "status": "requires_payment_method",
            "last_payment_error": {"message": message},
        },
        **kw,
    )


def charge_refunded(
    intent_id: str,
    amount_refunded_minor: int,
    charge_id: str = "ch_1",
    currency: str = "usd",
    **kw: Any,
) -> str:
    return event(
        "charge.refunded",
        {
            "id": charge_id,
            "object": "charge",
            "payment_intent": intent_id,
            "amount_refunded": amount_refunded_minor,
            "currency": currency,
            "refunded": True,
        },
        **kw,
    )
