"""Which payment gateway to use.

New invoices are sent through the gateway configured now (`get_gateway`): Stripe when
STRIPE_SECRET_KEY is set, else the sandbox when it is allowed. An invoice already sent
is always handled by the gateway it was sent with (`gateway_for(invoice.payment_gateway)`),
whatever the settings say today: its PaymentIntent lives there and nowhere else."""

from __future__ import annotations

from django.conf import settings

from tranche.billing.gateways.base import GatewayError, Intent, IntentRequest, PaymentGateway
from tranche.core.errors import ProviderError

__all__ = [
    "GatewayError",
    "Intent",
    "IntentRequest",
    "PaymentGateway",
    "gateway_for",
    "get_gateway",
    "sandbox_allowed",
]

SANDBOX = "sandbox"
STRIPE = "stripe"


def sandbox_allowed() -> bool:
    """Whether the sandbox may take (pretend) payments now. Never beside a real Stripe
    account: an installation that takes real money must not mark invoices paid for a
    test card, not even invoices sent back when it was a sandbox."""
    return not settings.STRIPE_SECRET_KEY and bool(settings.DEBUG or settings.PAYMENTS_SANDBOX)


def _stripe() -> PaymentGateway:
    from tranche.billing.gateways.stripe import StripeGateway

    return StripeGateway(
        secret_key=settings.STRIPE_SECRET_KEY,
        api_base=settings.STRIPE_API_BASE,
        timeout=settings.STRIPE_TIMEOUT_SECONDS,
    )


def _sandbox() -> PaymentGateway:
    from tranche.billing.gateways.sandbox import SandboxGateway

    return SandboxGateway()


def get_gateway() -> PaymentGateway:
    """The gateway new invoices are sent through."""
    if settings.STRIPE_SECRET_KEY:
        return _stripe()
    if sandbox_allowed():
        return _sandbox()
    raise ProviderError(
        "Payments are not configured: set STRIPE_SECRET_KEY, or PAYMENTS_SANDBOX=1 to use "
        "the sandbox, which moves no real money.",
        code="payment_provider_unconfigured",
    )


def gateway_for(name: str) -> PaymentGateway:
    """The gateway an invoice was sent with (its `payment_gateway`), to retrieve, update or
    cancel its PaymentIntent. The sandbox keeps no state and moves no money, so it answers
    even when it may no longer take payments (see `sandbox_allowed`)."""
    if name == SANDBOX:
        return _sandbox()
    if name == STRIPE:
        if not settings.STRIPE_SECRET_KEY:
            raise ProviderError(
                "This invoice was sent through Stripe, but Stripe is not configured now "
                "(STRIPE_SECRET_KEY is not set), so its payment cannot be reached. Nothing "
                "was changed.",
                code="payment_provider_unconfigured",
            )
        return _stripe()
    raise ProviderError(
        f"This invoice has no payment at a provider (gateway {name!r}).",
        code="payment_provider_unknown",
    )
