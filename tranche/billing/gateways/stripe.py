"""Stripe, through the official SDK. The only module that imports `stripe`."""

from __future__ import annotations

import logging
from typing import Any

import stripe

from tranche.billing.gateways.base import GatewayError, Intent, IntentRequest

logger = logging.getLogger(__name__)


def _describe(exc: stripe.StripeError) -> str:
    if isinstance(exc, stripe.APIConnectionError):
        return "Stripe could not be reached (connection failed or timed out)"
    if isinstance(exc, stripe.AuthenticationError):
        return "Stripe refused the API key (check STRIPE_SECRET_KEY)"
    message = getattr(exc, "user_message", None) or exc.__class__.__name__
    return f"Stripe answered with an error: {message}"


def _error(exc: stripe.StripeError) -> GatewayError:
    status = None if isinstance(exc, stripe.APIConnectionError) else exc.http_status
    return GatewayError(_describe(exc), status=status)


class StripeGateway:
    name = "stripe"

    def __init__(self, *, secret_key: str, api_base: str = "", timeout: float = 15) -> None:
        options: dict[str, Any] = {
            # The SDK retries connection failures itself, reusing the idempotency key.
            "max_network_retries": 1,
            "http_client": stripe.RequestsClient(timeout=timeout),
        }
        if api_base:
            options["base_addresses"] = {"api": api_base}
        self.client = stripe.StripeClient(secret_key, **options)

    def _intent(self, obj: Any) -> Intent:
        data = obj.to_dict()
        return Intent(
            id=data["id"],
            status=data.get("status", ""),
            amount_minor=int(data.get("amount") or 0),
            currency=str(data.get("currency", "")).upper(),
            client_secret=data.get("client_secret"),
            amount_received_minor=int(data.get("amount_received") or 0),
        )

    def create_intent(self, request: IntentRequest) -> Intent:
        params: dict[str, Any] = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            "description": request.description,
            "metadata": request.metadata,
            # Only methods that complete without leaving the pay page: a redirect would
            # bring the customer back with the client secret in the URL.
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        }
        if request.receipt_email:
            params["receipt_email"] = request.receipt_email
        try:
            created = self.client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as exc:
            logger.warning("Stripe create PaymentIntent failed: %s", exc.__class__.__name__)
            raise _error(exc) from exc
        return self._intent(created)

    def update_intent(self, intent_id: str, *, description: str, metadata: dict[str, str]) -> None:
        try:
            self.client.v1.payment_intents.update(
                intent_id, params={"description": description, "metadata": metadata}
            )
        except stripe.StripeError as exc:
            raise _error(exc) from exc

    def update_intent_amount(self, intent_id: str, *, amount_minor: int) -> Intent:
        # Stripe changes the amount of an unconfirmed PaymentIntent in place, and a
        # customer confirming it afterwards is charged the new amount.
        try:
            updated = self.client.v1.payment_intents.update(
                intent_id, params={"amount": amount_minor}
            )
        except stripe.StripeError as exc:
            logger.warning("Stripe update PaymentIntent amount failed: %s", exc.__class__.__name__)
            raise _error(exc) from exc
        return self._intent(updated)

    def cancel_intent(self, intent_id: str) -> None:
        try:
            self.client.v1.payment_intents.cancel(intent_id)
        except stripe.InvalidRequestError as exc:
            # Cancelling twice is not an error for us: the intent is cancelled either way.
            if getattr(exc, "code", None) == "payment_intent_unexpected_state":
                current = self.retrieve_intent(intent_id)
                if current.status == "canceled":
                    return
            raise _error(exc) from exc
        except stripe.StripeError as exc:
            raise _error(exc) from exc

    def retrieve_intent(self, intent_id: str) -> Intent:
        try:
            return self._intent(self.client.v1.payment_intents.retrieve(intent_id))
        except stripe.StripeError as exc:
            raise _error(exc) from exc


class WebhookInvalid(Exception):
    pass


# Stripe's own default; never 0, which would accept a replay of any old event.
WEBHOOK_TOLERANCE_SECONDS = 300


def verify_webhook(payload: bytes, signature: str, secrets: list[str]) -> dict[str, Any]:
    """The event, if `signature` was made by Stripe with one of `secrets` within the
    tolerance; raises WebhookInvalid otherwise."""
    if not signature:
        raise WebhookInvalid("The Stripe-Signature header is missing.")
    for secret in secrets:
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError:
            continue
        except ValueError:
            raise WebhookInvalid("The payload is not valid JSON.") from None
        data: dict[str, Any] = event.to_dict()
        return data
    raise WebhookInvalid("The Stripe-Signature header does not match this payload.")
