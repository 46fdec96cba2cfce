"""Recording and reading the last run of each background job (`core.models.Heartbeat`)."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from tranche.core.models import Heartbeat

WORKER = "worker"
TICK = "tick"
RECONCILE = "reconcile"


def heartbeat_record(*, name: str, summary: str = "", now: datetime | None = None) -> None:
    """Overwrite `name`'s row with this run. Two workers starting at once may both find
    no row: the primary key lets one insert, and the other updates."""
    now = now or timezone.now()
    values = {"seen_at": now, "summary": summary[:2000]}
    if Heartbeat.objects.filter(name=name).update(**values):
        return
    try:
        with transaction.atomic():
            Heartbeat.objects.create(name=name, **values)
    except IntegrityError:
        Heartbeat.objects.filter(name=name).update(**values)


def heartbeats() -> dict[str, Heartbeat]:
    return {row.name: row for row in Heartbeat.objects.all()}
