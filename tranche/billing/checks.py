"""`tranche check --deploy`: how this installation takes payments. Stripe needs three
values that only work together (the secret key, the publishable key of the same mode for
the pay page, the webhook signing secret); without a secret key, the sandbox must have been
chosen on purpose (PAYMENTS_SANDBOX=1), since it moves no money (billing/gateways)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register


def _mode(key: str) -> str:
    """`test` or `live` from a Stripe key's prefix (sk_test_…, pk_live_…, rk_…)."""
    parts = key.split("_")
    return parts[1] if len(parts) > 2 and parts[1] in ("test", "live") else ""


@register(Tags.security, deploy=True)
def check_payments(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not settings.STRIPE_SECRET_KEY:
        if settings.PAYMENTS_SANDBOX:
            return [
                Warning(
                    "Payments use the sandbox (PAYMENTS_SANDBOX=1): the pay page takes test "
                    "cards and no money moves.",
                    hint="Fine for a trial. To take payments, set STRIPE_SECRET_KEY, "
                    "STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET and remove "
                    "PAYMENTS_SANDBOX.",
                    id="tranche.W201",
                )
            ]
        return [
            Error(
                "Payments are not configured: sending an invoice would fail.",
                hint="Set STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY and STRIPE_WEBHOOK_SECRET, "
                "or PAYMENTS_SANDBOX=1 to run on the sandbox, which moves no money.",
                id="tranche.E201",
            )
        ]
    messages: list[CheckMessage] = []
    if settings.PAYMENTS_SANDBOX:
        messages.append(
            Warning(
                "PAYMENTS_SANDBOX=1 has no effect beside STRIPE_SECRET_KEY: Stripe is used.",
                hint="Remove PAYMENTS_SANDBOX from the environment file.",
                id="tranche.W202",
            )
        )
    if not settings.STRIPE_PUBLISHABLE_KEY:
        messages.append(
            Error(
                "STRIPE_SECRET_KEY is set but STRIPE_PUBLISHABLE_KEY is not: the pay page "
                "cannot show Stripe's card form.",
                hint="Copy the publishable key (pk_…) from Stripe's dashboard, Developers → "
                "API keys.",
                id="tranche.E202",
            )
        )
    elif _mode(settings.STRIPE_PUBLISHABLE_KEY) != _mode(settings.STRIPE_SECRET_KEY):
        messages.append(
            Error(
                "STRIPE_SECRET_KEY and STRIPE_PUBLISHABLE_KEY are of different modes (test "
                "and live): the pay page could not confirm any payment.",
                hint="Take both keys from the same mode of Stripe's dashboard.",
                id="tranche.E203",
            )
        )
    if not settings.STRIPE_WEBHOOK_SECRETS:
        messages.append(
            Error(
                "STRIPE_WEBHOOK_SECRET is not set: every webhook would be refused, so payments "
                "and refunds would be recorded only by `tranche reconcile`.",
                hint="Add the endpoint https://<your host>/api/webhooks/stripe in Stripe's "
                "dashboard (docs/deploy.md lists its events) and set its signing secret "
                "(whsec_…).",
                id="tranche.E204",
            )
        )
    if _mode(settings.STRIPE_SECRET_KEY) == "test":
        messages.append(
            Warning(
                "STRIPE_SECRET_KEY is a test-mode key: payments are Stripe's test payments.",
                hint="Use the live keys (sk_live_…, pk_live_…) and the live endpoint's "
                "signing secret to take real payments.",
                id="tranche.W203",
            )
        )
    if settings.STRIPE_API_BASE:
        messages.append(
            Warning(
                f"STRIPE_API_BASE is {settings.STRIPE_API_BASE}: payments go to that server, "
                "not to Stripe.",
                hint="Remove STRIPE_API_BASE outside testing.",
                id="tranche.W204",
            )
        )
    return messages
