from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from tranche.billing.reminders import invoices_tick
from tranche.billing.webhooks import events_retry
from tranche.notifications.services import outbox_deliver_due


def run_periodic(*, now: datetime | None = None) -> str:
    """What `tranche tick` and the worker do every TICK_MINUTES; returns a summary."""
    now = now or timezone.now()
    report = invoices_tick(now=now)
    settled = events_retry(now=now)
    delivered = outbox_deliver_due(now=now)
    return (
        f"tick: {report.marked_overdue} marked overdue, {report.reminders_queued} reminder(s) "
        f"queued, {settled} waiting webhook event(s) settled, {delivered} email(s) delivered"
    )
