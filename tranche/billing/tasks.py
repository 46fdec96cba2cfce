from __future__ import annotations

import logging

from django_tasks import task

from tranche.billing.gateways import GatewayError
from tranche.billing.services.intents import invoice_sync_intent, invoice_sync_intent_amount
from tranche.core.errors import ProviderError
from tranche.core.requestid import request_id_scope

logger = logging.getLogger(__name__)


# `request_id` (each task's): the request that queued it, for its log lines.


@task()
def sync_payment_intent(invoice_id: int, request_id: str = "") -> None:
    with request_id_scope(request_id):
        try:
            invoice_sync_intent(invoice_id=invoice_id)
        except (GatewayError, ProviderError) as exc:
            # Cosmetic for the provider's dashboard; payment matching uses invoice_id.
            logger.warning("Could not add the invoice number to its PaymentIntent: %s", exc)


@task()
def sync_intent_amount(invoice_id: int, request_id: str = "") -> None:
    with request_id_scope(request_id):
        try:
            invoice_sync_intent_amount(invoice_id=invoice_id)
        except (GatewayError, ProviderError) as exc:
            # The pay page checks the amount again before handing the intent out and tries
            # the update itself, so a failure here cannot make anyone pay the wrong amount.
            logger.warning(
                "Could not bring invoice %s's PaymentIntent to the amount due: %s",
                invoice_id,
                exc,
            )
