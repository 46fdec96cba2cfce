"""The periodic pass: overdue marking and reminders, waiting webhook events,
PaymentIntents left out of step, the admins' daily drafts digest, the email sweep. Each
step isolates its items, and a step that fails as a whole (its query raised) does not
keep the next ones from running: the pass never raises for one bad item.

However many workers run (`tranche worker` on several machines), the pass runs once per
interval: each worker asks `periodic_pass_claim` every turn, and only the one that claims
the interval runs it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.cache import caches
from django.db import connection, transaction
from django.utils import timezone

from tranche.billing.services.emails import drafts_digest_queue
from tranche.billing.services.intents import ResyncReport, intents_resync
from tranche.billing.services.reminders import TickReport, invoices_tick
from tranche.billing.services.retention import RetentionReport, data_retention_purge
from tranche.billing.webhooks import RetryReport, events_retry
from tranche.notifications.delivery import DeliveryReport, outbox_deliver_due_report

logger = logging.getLogger(__name__)


# When the last pass was claimed, in the database cache every worker shares (as the rate
# limits are). Were the row culled or the cache cleared, one pass would run early: every
# step is idempotent (a reminder step is sent once, an event settles once), so that costs
# queries, never a second email or payment.
LAST_PASS_KEY = "tranche:periodic-pass:claimed-at"
# The transaction-scoped advisory lock (PostgreSQL) the claims take: any fixed number.
# Transaction-scoped, so it works behind PgBouncer in transaction mode.
PASS_LOCK_ID = 7_204_613_001


def periodic_pass_claim(*, interval: timedelta, now: datetime | None = None) -> bool:
    """Whether this worker runs the periodic pass now: true for the first claim once
    `interval` has passed since the last one, false for every other worker.

    The check and the new time are one transaction that no two workers run at once: on
    PostgreSQL behind an advisory lock (a worker that finds it taken does not wait: the
    holder is claiming this very pass), on SQLite behind the write lock every transaction
    takes at its start (`transaction_mode` IMMEDIATE). A worker that claims the pass and
    dies before it ends leaves the interval without one; the next interval's runs."""
    now = now or timezone.now()
    cache = caches["default"]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PASS_LOCK_ID])
                row = cursor.fetchone()
            if not (row and row[0]):
                return False
        last = cache.get(LAST_PASS_KEY)
        if last is not None and now - last < interval:
            return False
        cache.set(LAST_PASS_KEY, now, timeout=None)
    return True


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
