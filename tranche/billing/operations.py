"""Reads for the Operations page (admins): what the background work left for a person —
emails that failed or wait, Stripe events waiting or given up — and when each background
job last ran."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, IntegerField, Q, When

from tranche.billing.models import StripeEvent
from tranche.billing.webhooks import GAVE_UP
from tranche.core.heartbeat import RECONCILE, TICK, WORKER, heartbeats
from tranche.core.models import Heartbeat
from tranche.notifications.models import OutboxEmail, OutboxStatus

SHOWN = 100  # rows of each list; the operations admin (/admin/) pages through the rest


@dataclass(frozen=True)
class Overview:
    worker: Heartbeat | None
    worker_late: bool  # not seen within READY_WORKER_MINUTES (or never)
    late_minutes: int
    tick: Heartbeat | None
    reconcile: Heartbeat | None
    emails: list[OutboxEmail]
    emails_total: int
    events: list[StripeEvent]
    events_total: int


def operations_overview(*, now: datetime) -> Overview:
    beats = heartbeats()
    worker = beats.get(WORKER)
    minutes = settings.READY_WORKER_MINUTES or 5
    emails = (
        OutboxEmail.objects.filter(
            status__in=[OutboxStatus.FAILED, OutboxStatus.PENDING, OutboxStatus.SENDING]
        )
        # The bodies are large and carry the pay link: the page never needs them.
        .defer("body_text", "body_html", "attachments")
        # Failed first (they wait for a person), then the ones retrying, oldest first.
        .annotate(
            rank=Case(
                When(status=OutboxStatus.FAILED, then=0), default=1, output_field=IntegerField()
            )
        )
        .order_by("rank", "created_at", "pk")
    )
    events = (
        StripeEvent.objects.filter(Q(processed_at__isnull=True) | Q(outcome__startswith=GAVE_UP))
        .defer("payload")
        .order_by("received_at", "pk")
    )
    return Overview(
        worker=worker,
        worker_late=worker is None or now - worker.seen_at > timedelta(minutes=minutes),
        late_minutes=minutes,
        tick=beats.get(TICK),
        reconcile=beats.get(RECONCILE),
        emails=list(emails[:SHOWN]),
        emails_total=emails.count(),
        events=list(events[:SHOWN]),
        events_total=events.count(),
    )
