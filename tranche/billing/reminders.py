"""The periodic pass over sent invoices: mark the overdue ones and remind customers.

Safe to run as often as you like: each invoice is re-checked under its row lock, and a
reminder step's outbox key (invoice, step) lets it out at most once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tranche.billing.models import OPEN_STATUSES, Invoice, InvoiceStatus
from tranche.billing.services import lock_invoice, queue_invoice_email, record_event


@dataclass(frozen=True)
class TickReport:
    marked_overdue: int
    reminders_queued: int


def _step_due(invoice: Invoice, today: date) -> int | None:
    """The latest reminder step whose day has come, if it should go out today.

    A step is never sent on the day the invoice was sent, nor when its day came before
    the invoice was sent; a step missed (the tick did not run) is replaced by the next."""
    sent_day = timezone.localdate(invoice.sent_at) if invoice.sent_at else today
    if today <= sent_day:
        return None
    reached = [d for d in settings.REMINDER_DAYS if invoice.due_date + timedelta(days=d) <= today]
    if not reached:
        return None
    step = reached[-1]
    return step if invoice.due_date + timedelta(days=step) > sent_day else None


def _describe(step: int) -> str:
    if step < 0:
        return f"is due in {-step} day{'s' if step != -1 else ''}"
    if step == 0:
        return "is due today"
    return f"is {step} day{'s' if step != 1 else ''} overdue"


def invoices_tick(*, now: datetime | None = None) -> TickReport:
    now = now or timezone.now()
    today = timezone.localdate(now)
    overdue = 0
    for invoice_id in Invoice.objects.filter(
        status__in=[InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID], due_date__lt=today
    ).values_list("pk", flat=True):
        with transaction.atomic():
            invoice = lock_invoice(invoice_id)
            if (
                invoice.status in (InvoiceStatus.PENDING, InvoiceStatus.PARTIALLY_PAID)
                and invoice.due_date < today
                and invoice.amount_due > 0
            ):
                before = invoice.status
                invoice.status = InvoiceStatus.OVERDUE
                invoice.updated_at = now
                invoice.save(update_fields=["status", "updated_at"])
                record_event(
                    invoice, "status_changed", actor=None, now=now, old=before, new=invoice.status
                )
                overdue += 1

    queued = 0
    candidates = Invoice.objects.filter(status__in=OPEN_STATUSES).select_related("project")
    for candidate in candidates:
        if _step_due(candidate, today) is None:
            continue
        with transaction.atomic():
            invoice = lock_invoice(candidate.pk)
            step = _step_due(invoice, today)
            if invoice.status not in OPEN_STATUSES or invoice.amount_due <= 0 or step is None:
                continue
            queue_invoice_email(
                invoice, "invoice_reminder", now=now, step=str(step), when=_describe(step)
            )
            queued += 1
    return TickReport(marked_overdue=overdue, reminders_queued=queued)
