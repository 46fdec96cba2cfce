"""The built-in sandbox: no provider, no money. References are derived from the
idempotency key, so the sandbox is as idempotent as Stripe."""

from __future__ import annotations

import hashlib

from tranche.billing.gateways.base import Intent, IntentRequest


class SandboxGateway:
    name = "sandbox"

    def create_intent(self, request: IntentRequest) -> Intent:
        digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
        return Intent(
            id=f"sandbox_{digest}",
            status="requires_payment_method",
            amount_minor=request.amount_minor,
            currency=request.currency,
        )

    def update_intent(self, intent_id: str, *, description: str, metadata: dict[str, str]) -> None:
        return None

    def update_intent_amount(self, intent_id: str, *, amount_minor: int) -> Intent:
        return Intent(
            id=intent_id, status="requires_payment_method", amount_minor=amount_minor, currency=""
        )

    def cancel_intent(self, intent_id: str) -> None:
        return None

    def retrieve_intent(self, intent_id: str) -> Intent:
        return Intent(id=intent_id, status="requires_payment_method", amount_minor=0, currency="")
