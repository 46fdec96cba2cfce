"""The one way an invoice becomes cancelled, whichever path asked for it (an admin's
cancel, a milestone reopened, a retainage release made obsolete)."""

from __future__ import annotations

from datetime import datetime

from tranche.accounts.models import User
from tranche.billing.audit import EventKind, record_event
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.core.db import require_atomic


def mark_cancelled(invoice: Invoice, *, actor: User | None, reason: str, now: datetime) -> None:
    """The one way an invoice becomes cancelled, whichever path asked for it."""
    require_atomic()
    invoice.status = InvoiceStatus.CANCELLED
    invoice.cancelled_at = now
    invoice.cancelled_by = actor
    invoice.cancel_reason = reason
    invoice.updated_at = now
    invoice.save(
        update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason", "updated_at"]
    )
    record_event(invoice, EventKind.CANCELLED, actor=actor, now=now, reason=reason)
