"""The payment gateway in use: Stripe when STRIPE_SECRET_KEY is set, else the sandbox."""

from __future__ import annotations

from django.conf import settings

from tranche.billing.gateways.base import GatewayError, Intent, IntentRequest, PaymentGateway
from tranche.core.errors import ProviderError

__all__ = ["GatewayError", "Intent", "IntentRequest", "PaymentGateway", "get_gateway"]


def get_gateway() -> PaymentGateway:
    if settings.STRIPE_SECRET_KEY:
        from tranche.billing.gateways.stripe import StripeGateway

        return StripeGateway(
            secret_key=settings.STRIPE_SECRET_KEY,
            api_base=settings.STRIPE_API_BASE,
            timeout=settings.STRIPE_TIMEOUT_SECONDS,
        )
    if settings.DEBUG or settings.PAYMENTS_SANDBOX:
        from tranche.billing.gateways.sandbox import SandboxGateway

        return SandboxGateway()
    raise ProviderError(
        "Payments are not configured: set STRIPE_SECRET_KEY, or PAYMENTS_SANDBOX=1 to use "
        "the sandbox, which moves no real money.",
        code="payment_provider_unconfigured",
    )
