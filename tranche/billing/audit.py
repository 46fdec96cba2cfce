"""The audit trail: every state change of an invoice writes one InvoiceEvent, in the same
transaction as the change, saying who did what and when. The kinds are `EventKind`
(defined beside the model, whose field takes them as its choices)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tranche.accounts.models import User
from tranche.billing.models import EventKind, Invoice, InvoiceEvent
from tranche.core.db import require_atomic

__all__ = ["EventKind", "record_event"]


def record_event(
    invoice: Invoice, kind: EventKind, *, actor: User | None, now: datetime, **details: Any
) -> InvoiceEvent:
    require_atomic()
    return InvoiceEvent.objects.create(
        invoice=invoice, actor=actor, kind=kind, details=details, created_at=now
    )
