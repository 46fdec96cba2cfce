"""The customer emails about an invoice, queued in the outbox with the change they report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.template.loader import render_to_string

from tranche.billing.models import (
    Invoice,
)
from tranche.core.db import require_atomic
from tranche.notifications.services import outbox_enqueue, render_plain


def invoice_email_context(invoice: Invoice, **extra: object) -> dict[str, object]:
    """What the customer emails about `invoice` are rendered with: the one builder of it,
    for the emails queued and for the previews staff see before sending."""
    return {
        "invoice": invoice,
        "project": invoice.project,
        "business_name": settings.BUSINESS_NAME,
        "greeting_name": invoice.customer.contact_name or invoice.customer_name,
        "sandbox": invoice.payment_gateway == "sandbox",
        **extra,
    }


def queue_invoice_email(
    invoice: Invoice, kind: str, *, now: datetime, step: str = "", **extra: object
) -> bool:
    """Queue one of the customer emails about `invoice`; the key makes each (kind, step)
    go out at most once per invoice. True when it was queued now, not before."""
    require_atomic()
    queued = outbox_enqueue(
        key=f"invoice:{invoice.pk}:{kind}{':' + step if step else ''}",
        kind=kind,
        to=invoice.customer_email,
        template=kind,
        context=invoice_email_context(invoice, **extra),
        now=now,
    )
    return queued is not None


@dataclass(frozen=True)
class EmailPreview:
    to: str
    subject: str
    text: str
    html: str


def invoice_email_preview(invoice: Invoice, kind: str, **extra: object) -> EmailPreview:
    """The email as `queue_invoice_email` would queue it now, without queueing anything
    (rendered exactly as the outbox renders it)."""
    context = invoice_email_context(invoice, **extra)
    subject = render_plain(f"notifications/{kind}.subject.txt", context).strip()
    return EmailPreview(
        to=invoice.customer_email,
        subject=" ".join(subject.split()),
        text=render_plain(f"notifications/{kind}.txt", context),
        html=render_to_string(f"notifications/{kind}.html", context),
    )
