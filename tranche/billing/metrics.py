"""The business figures of /metrics, read from the database at scrape time.

Counting them in the processes that do the work would need every web and worker
process, on every machine, to share counters, and would restart from zero with them.
The tables already hold the truth: a scrape reads it (a handful of aggregate queries on
indexed columns), the same answer whichever process or machine is scraped. Figures that
only ever grow are Prometheus counters (`rate()` works on them); the others are gauges.

A webhook delivery Stripe repeats is not stored again (the event id is unique), so
duplicates are not among the webhook outcomes: only the first delivery of each event is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count, Min, Q
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tranche.billing.models import Invoice, Payment, StripeEvent
from tranche.notifications.models import OutboxEmail, OutboxStatus
from tranche.notifications.readiness import stuck_emails

# outcome label -> which stored events have it (see billing.webhooks for the outcomes).
WEBHOOK_OUTCOMES = {
    "settled": Q(outcome="settled"),
    "already_settled": Q(outcome="already settled"),
    "refund_recorded": Q(outcome="refund recorded"),
    "refund_already_recorded": Q(outcome="refund already recorded"),
    "recorded": Q(outcome="recorded"),
    "ignored": Q(outcome="ignored"),
    "refused": Q(outcome__startswith="refused"),
    "rejected": Q(outcome__startswith="rejected"),
    "gave_up": Q(outcome__startswith="gave up"),
    "waiting": Q(processed_at__isnull=True),
}


class BusinessMetrics(Collector):
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now or timezone.now()

        sent = CounterMetricFamily(
            "tranche_invoices_sent", "Invoices sent (numbered), whatever happened to them since."
        )
        sent.add_metric([], Invoice.objects.filter(sent_at__isnull=False).count())
        yield sent

        payments = CounterMetricFamily(
            "tranche_payments_settled",
            "Payments recorded (money in, refunds excluded), by method.",
            labels=["method"],
        )
        for row in Payment.objects.filter(amount__gt=0).values("method").annotate(n=Count("pk")):
            payments.add_metric([row["method"]], row["n"])
        refunds = CounterMetricFamily("tranche_refunds", "Refunds recorded.")
        refunds.add_metric([], Payment.objects.filter(amount__lt=0).count())
        yield payments
        yield refunds

        counts = StripeEvent.objects.aggregate(
            **{name: Count("pk", filter=rule) for name, rule in WEBHOOK_OUTCOMES.items()}
        )
        events = GaugeMetricFamily(
            "tranche_webhook_events",
            "Stripe events stored, by outcome (waiting: not settled yet; an event moves "
            "from waiting to its outcome, so this is a gauge).",
            labels=["outcome"],
        )
        for name in WEBHOOK_OUTCOMES:
            events.add_metric([name], counts[name] or 0)
        yield events

        by_status = dict(
            OutboxEmail.objects.values_list("status").annotate(n=Count("pk")).order_by()
        )
        outbox = GaugeMetricFamily(
            "tranche_email_outbox", "Emails in the outbox, by status.", labels=["status"]
        )
        for status in OutboxStatus.values:
            outbox.add_metric([status], by_status.get(status, 0))
        yield outbox
        depth = GaugeMetricFamily(
            "tranche_email_outbox_depth", "Emails waiting to leave (pending or being sent)."
        )
        depth.add_metric(
            [], by_status.get(OutboxStatus.PENDING, 0) + by_status.get(OutboxStatus.SENDING, 0)
        )
        yield depth
        retrying = GaugeMetricFamily(
            "tranche_email_retrying", "Emails that failed at least once and are retried."
        )
        retrying.add_metric(
            [],
            OutboxEmail.objects.filter(
                status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING], attempts__gt=0
            )
            .exclude(last_error="")
            .count(),
        )
        yield retrying
        failed = GaugeMetricFamily(
            "tranche_email_failed", "Emails given up on, waiting for a person to retry them."
        )
        failed.add_metric([], by_status.get(OutboxStatus.FAILED, 0))
        yield failed
        stuck = GaugeMetricFamily(
            "tranche_email_stuck",
            "Emails queued over an hour ago, failing and still retried (/api/ready fails).",
        )
        stuck.add_metric([], stuck_emails(now).count())
        yield stuck

        waiting = DBTaskResult.objects.filter(status=TaskResultStatus.READY).aggregate(
            n=Count("pk"), oldest=Min("enqueued_at")
        )
        queue = GaugeMetricFamily(
            "tranche_task_queue_depth", "Tasks queued and not started yet (database queue)."
        )
        queue.add_metric([], waiting["n"])
        yield queue
        age = GaugeMetricFamily(
            "tranche_task_queue_oldest_age_seconds",
            "Age of the oldest task not started yet; 0 when none waits.",
        )
        oldest = waiting["oldest"]
        age.add_metric([], max((now - oldest).total_seconds(), 0.0) if oldest else 0.0)
        yield age
        task_failures = GaugeMetricFamily(
            "tranche_tasks_failed", "Tasks that raised (kept by the database queue)."
        )
        task_failures.add_metric(
            [], DBTaskResult.objects.filter(status=TaskResultStatus.FAILED).count()
        )
        yield task_failures
