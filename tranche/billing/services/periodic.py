"""The periodic pass: overdue marking and reminders, waiting webhook events,
PaymentIntents left out of step, the admins' daily drafts digest, the email sweep. Each
step isolates its items, and a step that fails as a whole (its query raised) does not
keep the next ones from running: the pass never raises for one bad item."""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from tranche.billing.services.emails import drafts_digest_queue
from tranche.billing.services.intents import ResyncReport, intents_resync
from tranche.billing.services.reminders import TickReport, invoices_tick
from tranche.billing.services.retention import RetentionReport, data_retention_purge
from tranche.billing.webhooks import RetryReport, events_retry
from tranche.notifications.delivery import DeliveryReport, outbox_deliver_due_report

logger = logging.getLogger(__name__)


def run_periodic(*, now: datetime | None = None) -> str:
    """What `tranche tick` and the worker do every TICK_MINUTES; returns a summary."""
    now = now or timezone.now()
    try:
        report = invoices_tick(now=now)
    except Exception:
        logger.exception("The overdue and reminder step failed")
        report = TickReport(marked_overdue=0, reminders_queued=0, failed=1)
    try:
        retried = events_retry(now=now)
    except Exception:
        logger.exception("The webhook retry step failed")
        retried = RetryReport(processed=0, failed=1)
    try:
        resynced = intents_resync(now=now)
    except Exception:
        logger.exception("The PaymentIntent re-sync step failed")
        resynced = ResyncReport(synced=0, failed=1)
    digests = digest_failed = 0
    try:
        digests = drafts_digest_queue(now=now)
    except Exception:
        logger.exception("The daily drafts digest step failed")
        digest_failed = 1
    try:
        delivered = outbox_deliver_due_report(now=now)
    except Exception:
        logger.exception("The email sweep failed")
        delivered = DeliveryReport(sent=0, failed=1)
    try:
        purged = data_retention_purge(now=now)
    except Exception:
        logger.exception("The data retention step failed")
        purged = RetentionReport(stripe_payloads=0, email_bodies=0, failed=1)
    failed = report.failed + retried.failed + resynced.failed + delivered.failed + digest_failed
    failed += purged.failed
    retention = (
        f"{purged.stripe_payloads} Stripe payload(s) and {purged.email_bodies} email "
        "body(ies) past retention blanked, "
        if purged.stripe_payloads or purged.email_bodies
        else ""
    )
    return (
        f"tick: {report.marked_overdue} marked overdue, {report.reminders_queued} reminder(s) "
        f"queued, {retried.processed} waiting webhook event(s) processed, {resynced.synced} "
        f"PaymentIntent(s) brought in step, "
        f"{f'{digests} drafts digest(s) queued, ' if digests else ''}"
        f"{delivered.sent} email(s) delivered, "
        f"{retention}{failed} failure(s)"
    )
