"""The periodic pass's data-retention step (settings RETENTION_*_DAYS, docs/operations.md):
Stripe event payloads and sent emails' bodies past their retention are blanked, a bounded
batch per pass. Nothing financial is ever touched: invoices, credit notes, payments and
their audit trail are the business's books and are kept whatever the settings say."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from tranche.billing.models import StripeEvent
from tranche.billing.webhooks import GAVE_UP
from tranche.notifications.retention import outbox_bodies_purge

logger = logging.getLogger(__name__)

# Rows blanked per rule and pass: one short UPDATE each, so a first pass over years of
# history holds no lock for long; the backlog goes TICK_MINUTES by TICK_MINUTES.
BATCH = 500


@dataclass(frozen=True)
class RetentionReport:
    stripe_payloads: int
    email_bodies: int
    failed: int


def stripe_payloads_purge(*, received_before: datetime, limit: int) -> int:
    """Blank the payloads of at most `limit` events received before `received_before`.
    The row stays (its unique event id is what makes a redelivery a duplicate), with its
    type, times and outcome. An event still waiting keeps its payload, as does one the
    worker gave up on: an admin may still retry it, and it needs its payload for that."""
    old = (
        StripeEvent.objects.filter(processed_at__isnull=False, received_at__lt=received_before)
        .exclude(outcome__startswith=GAVE_UP)
        .exclude(payload={})
    )
    ids = list(old.order_by("received_at", "pk").values_list("pk", flat=True)[:limit])
    if not ids:
        return 0
    # Checked again in the UPDATE: an event retried meanwhile is left alone.
    return old.filter(pk__in=ids).update(payload={})


def data_retention_purge(*, now: datetime, limit: int = BATCH) -> RetentionReport:
    """One batch of each rule whose retention is set (0: kept for ever). A rule that
    fails is logged and counted; the other still runs."""
    payloads = bodies = failed = 0
    if days := settings.RETENTION_STRIPE_EVENT_DAYS:
        try:
            payloads = stripe_payloads_purge(
                received_before=now - timedelta(days=days), limit=limit
            )
        except Exception:
            logger.exception("Purging old Stripe event payloads failed")
            failed += 1
    if days := settings.RETENTION_EMAIL_BODY_DAYS:
        try:
            bodies = outbox_bodies_purge(sent_before=now - timedelta(days=days), limit=limit)
        except Exception:
            logger.exception("Purging old email bodies failed")
            failed += 1
    return RetentionReport(stripe_payloads=payloads, email_bodies=bodies, failed=failed)
