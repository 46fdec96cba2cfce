"""The audit trail: every state change of an invoice writes one InvoiceEvent, in the same
transaction as the change, saying who did what and when. The kinds are `EventKind`
(defined beside the model, whose field takes them as its choices)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tranche.accounts.models import User
from tranche.billing.models import EventKind, Invoice, InvoiceEvent
from tranche.core.db import require_atomic

__all__ = ["EventKind", "record_event", "record_events"]


def record_event(
    invoice: Invoice, kind: EventKind, *, actor: User | None, now: datetime, **details: Any
) -> InvoiceEvent:
    require_atomic()
    return InvoiceEvent.objects.create(
        invoice=invoice, actor=actor, kind=kind, details=details, created_at=now
    )


def record_events(
    changes: list[tuple[Invoice, dict[str, Any]]],
    kind: EventKind,
    *,
    actor: User | None,
    now: datetime,
) -> list[InvoiceEvent]:
    """One event of `kind` per invoice (with its details), for a change made to many
    invoices at once in one transaction: one INSERT, still one event per state change."""
    require_atomic()
    return InvoiceEvent.objects.bulk_create(
        InvoiceEvent(invoice=invoice, actor=actor, kind=kind, details=details, created_at=now)
        for invoice, details in changes
    )
