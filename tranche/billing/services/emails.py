"""The customer emails about an invoice, queued in the outbox with the change they report."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from tranche.billing.models import (
    Invoice,
)
from tranche.core.db import require_atomic
from tranche.notifications.services import outbox_enqueue


def queue_invoice_email(
    invoice: Invoice, kind: str, *, now: datetime, step: str = "", **extra: object
) -> bool:
    """Queue one of the customer emails about `invoice`; the key makes each (kind, step)
    go out at most once per invoice. True when it was queued now, not before."""
    require_atomic()
    project = invoice.project
    queued = outbox_enqueue(
        key=f"invoice:{invoice.pk}:{kind}{':' + step if step else ''}",
        kind=kind,
        to=invoice.customer_email,
        template=kind,
        context={
            "invoice": invoice,
            "project": project,
            "business_name": settings.BUSINESS_NAME,
            "greeting_name": invoice.customer.contact_name or invoice.customer_name,
            "sandbox": invoice.payment_gateway == "sandbox",
            **extra,
        },
        now=now,
    )
    return queued is not None
