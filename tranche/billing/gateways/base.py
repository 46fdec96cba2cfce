"""What billing needs from a payment provider. Implementations: `stripe.py`, `sandbox.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class GatewayError(Exception):
    """The provider failed or could not be reached. The message is safe to show an admin.

    `status` is the HTTP status the provider answered with, or None when no answer came
    (refused, timed out, lost): then whether the operation happened is unknown."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def outcome_unknown(self) -> bool:
        """No answer, or a server error (Stripe: the result of a 500 is indeterminate)."""
        return self.status is None or self.status >= 500


# A PaymentIntent in one of these states has taken no money yet and can still change its
# amount; once processing, succeeded or canceled it cannot.
UNPAID_INTENT_STATUSES = frozenset(
    {"requires_payment_method", "requires_confirmation", "requires_action"}
)


@dataclass(frozen=True)
class IntentRequest:
    amount_minor: int
    currency: str  # ISO 4217, upper case
    description: str
    metadata: dict[str, str]
    receipt_email: str
    # The same key always yields the same PaymentIntent at the provider, so a retried
    # send (after a timeout or a lost response) cannot create a second one.
    idempotency_key: str


@dataclass(frozen=True)
class Intent:
    id: str
    status: str
    amount_minor: int
    currency: str
    # Only ever handed to the pay page; never stored, logged, or put in a URL or email.
    client_secret: str | None = None
    amount_received_minor: int = 0


class PaymentGateway(Protocol):
    name: str

    def create_intent(self, request: IntentRequest) -> Intent: ...

    def update_intent(
        self, intent_id: str, *, description: str, metadata: dict[str, str]
    ) -> None: ...

    def update_intent_amount(self, intent_id: str, *, amount_minor: int) -> Intent:
        """Charge `amount_minor` instead: only while the intent is unpaid."""
        ...

    def cancel_intent(self, intent_id: str) -> None: ...

    def retrieve_intent(self, intent_id: str) -> Intent: ...
