"""The emails about invoices, queued in the outbox with the change they report: to the
customer (sent, reminder, paid, cancelled) and to the business's admins (payment
received, payment failed, the daily digest of drafts), each admin notification
switchable on the settings page.

The invoice PDF is attached at delivery: `register_attachments` (run by
`BillingConfig.ready`) teaches the outbox to render an "invoice_pdf" spec."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from tranche.accounts.business import BusinessProfile, business_profile
from tranche.accounts.models import Customer
from tranche.billing.models import CreditNote, Invoice, InvoiceStatus, Payment
from tranche.billing.pdf import credit_note_filename, credit_note_pdf, invoice_pdf
from tranche.billing.receipts import latest_receipt_payment, receipt_filename, receipt_pdf
from tranche.core.db import require_atomic
from tranche.core.money import Money
from tranche.notifications.attachments import Attachment, register_attachment
from tranche.notifications.services import (
    NewEmail,
    outbox_admins_waiting,
    outbox_enqueue,
    outbox_enqueue_admins,
    outbox_enqueue_new,
    render_email,
)

logger = logging.getLogger(__name__)

# The emails that carry the invoice itself as a PDF.
WITH_INVOICE_PDF = frozenset({"invoice_sent"})
# The daily digest goes out with the first periodic pass at or after this local hour.
DIGEST_HOUR = 8
DIGEST_LISTED = 20


def _site(path: str) -> str:
    return f"{settings.BASE_URL}{path}"


def _payments(invoice: Invoice) -> list[Payment]:
    return list(invoice.payments.filter(amount__gt=0).order_by("received_on", "pk"))


def invoice_email_context(invoice: Invoice, kind: str, **extra: object) -> dict[str, object]:
    """What the customer email `kind` about `invoice` is rendered with: the one builder of
    it, for the emails queued and for the previews staff see before sending."""
    context: dict[str, object] = {
        "invoice": invoice,
        "project": invoice.project,
        "greeting_name": invoice.customer.contact_name or invoice.customer_name,
        "sandbox": invoice.payment_gateway == "sandbox",
        "with_pdf": kind in WITH_INVOICE_PDF,
        **extra,
    }
    if kind == "invoice_paid":
        context["payments"] = _payments(invoice)
        context["with_receipt"] = True
    return context


def _attachments(invoice: Invoice, kind: str) -> list[dict[str, object]]:
    """What the email carries, made at delivery: the invoice when it is sent, the receipt
    of the payment that settled it when it is paid."""
    if kind in WITH_INVOICE_PDF:
        return [{"kind": "invoice_pdf", "invoice_id": invoice.pk}]
    if kind == "invoice_paid" and (settled_by := latest_receipt_payment(invoice)) is not None:
        return [{"kind": "receipt_pdf", "payment_id": settled_by.pk}]
    return []


def address_to_current_billing_email(invoice: Invoice, *, now: datetime) -> None:
    """Before emailing a sent invoice again (a resend, a reminder staff send now): the
    customer's billing email as it is today, when it is set and differs. An email that
    went astray is usually an address that was wrong; once the customer's record is
    fixed, the next email goes to the fixed address. Under the caller's invoice lock."""
    require_atomic()
    current = (
        Customer.objects.filter(pk=invoice.customer_id)
        .values_list("billing_email", flat=True)
        .first()
    )
    if current and current != invoice.customer_email:
        invoice.customer_email = current
        invoice.updated_at = now
        invoice.save(update_fields=["customer_email", "updated_at"])


def queue_invoice_email(
    invoice: Invoice,
    kind: str,
    *,
    now: datetime,
    step: str = "",
    credit_note: CreditNote | None = None,
    **extra: object,
) -> bool:
    """Queue one of the customer emails about `invoice`; the key makes each (kind, step)
    go out at most once per invoice. True when it was queued now, not before.
    `credit_note` (a cancel's) is named in the email and attached to it."""
    require_atomic()
    attachments = _attachments(invoice, kind)
    if credit_note is not None:
        extra["credit_note"] = credit_note
        attachments.append({"kind": "credit_note_pdf", "credit_note_id": credit_note.pk})
    queued = outbox_enqueue(
        key=f"invoice:{invoice.pk}:{kind}{':' + step if step else ''}",
        kind=kind,
        to=invoice.customer_email,
        template=kind,
        context=invoice_email_context(invoice, kind, **extra),
        now=now,
        attachments=attachments,
    )
    return queued is not None


def queue_sent_emails(invoices: list[Invoice], *, now: datetime, business: BusinessProfile) -> None:
    """The invoice_sent email of each invoice just sent, in one INSERT: the send's own
    transaction has just numbered them, so none was queued before (see
    `outbox_enqueue_new`)."""
    require_atomic()
    kind = "invoice_sent"
    outbox_enqueue_new(
        [
            NewEmail(
                key=f"invoice:{invoice.pk}:{kind}",
                kind=kind,
                to=invoice.customer_email,
                template=kind,
                context=invoice_email_context(invoice, kind),
                attachments=_attachments(invoice, kind),
            )
            for invoice in invoices
        ],
        now=now,
        business=business,
    )


def queue_credit_note_email(note: CreditNote, *, now: datetime) -> bool:
    """Email the customer a credit note, its PDF attached; once per credit note."""
    require_atomic()
    invoice = note.invoice
    queued = outbox_enqueue(
        key=f"credit_note:{note.pk}:issued",
        kind="credit_note_issued",
        to=note.customer_email,
        template="credit_note_issued",
        context=invoice_email_context(invoice, "credit_note_issued", credit_note=note),
        now=now,
        attachments=[{"kind": "credit_note_pdf", "credit_note_id": note.pk}],
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
    rendered = render_email(kind, invoice_email_context(invoice, kind, **extra))
    return EmailPreview(
        to=invoice.customer_email, subject=rendered.subject, text=rendered.text, html=rendered.html
    )


# --- to the admins ---------------------------------------------------------------------


def queue_payment_received(
    invoice: Invoice, payment: Payment, *, now: datetime, actor_id: int | None = None
) -> int:
    """Tell the admins money came in (unless switched off). The admin who recorded it by
    hand is not told about their own entry."""
    require_atomic()
    if not business_profile().notify_payment_received:
        return 0
    return outbox_enqueue_admins(
        key=f"admin:payment_received:{payment.pk}",
        kind="admin_payment_received",
        template="admin_payment_received",
        context={
            "invoice": invoice,
            "project": invoice.project,
            "payment": payment,
            "invoice_url": _site(f"/projects/{invoice.project_id}/"),
        },
        now=now,
        exclude_user_id=actor_id,
    )


def queue_payment_failed(invoice: Invoice, *, now: datetime, reason: str, event_id: int) -> int:
    """Tell the admins a customer's payment failed (unless switched off); `event_id` is the
    audit event that recorded it, so each failure is told once."""
    require_atomic()
    if not business_profile().notify_payment_failed:
        return 0
    return outbox_enqueue_admins(
        key=f"admin:payment_failed:{event_id}",
        kind="admin_payment_failed",
        template="admin_payment_failed",
        context={
            "invoice": invoice,
            "project": invoice.project,
            "reason": reason,
            "invoice_url": _site(f"/projects/{invoice.project_id}/"),
        },
        now=now,
    )


def drafts_digest_queue(*, now: datetime | None = None) -> int:
    """The daily digest of drafts waiting for review, to every active admin: at most once
    a day each (the outbox key holds the day), only when there are drafts, only from
    DIGEST_HOUR local time, and not when switched off. Returns how many were queued."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.time() < time(DIGEST_HOUR) or not business_profile().notify_daily_digest:
        return 0
    key = f"admin:drafts_digest:{local.date().isoformat()}"
    # Every pass after DIGEST_HOUR would otherwise add up all drafts and render the
    # digest for each admin, only for the outbox key to refuse it.
    if not outbox_admins_waiting(key=key):
        return 0
    drafts = Invoice.objects.filter(status=InvoiceStatus.DRAFT)
    totals = list(
        drafts.values("currency")
        .annotate(count=Count("pk"), amount=Sum("amount"))
        .order_by("currency")
    )
    if not totals:
        return 0
    listed = list(drafts.select_related("project").order_by("created_at", "pk")[:DIGEST_LISTED])
    count = sum(t["count"] for t in totals)
    with transaction.atomic():
        return outbox_enqueue_admins(
            key=key,
            kind="admin_drafts_digest",
            template="admin_drafts_digest",
            context={
                "count": count,
                "totals": [
                    {
                        "currency": t["currency"],
                        "count": t["count"],
                        "label": f"{t['count']} draft{'s' if t['count'] != 1 else ''} in "
                        f"{t['currency']}",
                        "amount": Money(t["amount"], t["currency"]),
                    }
                    for t in totals
                ],
                "drafts": listed,
                "more": max(count - len(listed), 0),
                "review_url": _site("/financials/?status=draft"),
                "today": local.date(),
            },
            now=now,
        )


# --- attachments rendered at delivery ------------------------------------------------------


def invoice_pdf_attachment(spec: Mapping[str, Any]) -> Attachment:
    invoice = Invoice.objects.select_related("project", "customer", "milestone").get(
        pk=int(spec["invoice_id"])
    )
    name = f"{invoice.number}.pdf" if invoice.number else f"draft-invoice-{invoice.pk}.pdf"
    return Attachment(name, invoice_pdf(invoice), "application/pdf")


def receipt_pdf_attachment(spec: Mapping[str, Any]) -> Attachment:
    payment = Payment.objects.select_related(
        "invoice", "invoice__project", "invoice__customer"
    ).get(pk=int(spec["payment_id"]))
    return Attachment(receipt_filename(payment), receipt_pdf(payment), "application/pdf")


def credit_note_pdf_attachment(spec: Mapping[str, Any]) -> Attachment:
    note = CreditNote.objects.select_related("invoice", "invoice__project", "customer").get(
        pk=int(spec["credit_note_id"])
    )
    return Attachment(credit_note_filename(note), credit_note_pdf(note), "application/pdf")


def register_attachments() -> None:
    register_attachment("credit_note_pdf", credit_note_pdf_attachment)
    register_attachment("invoice_pdf", invoice_pdf_attachment)
    register_attachment("receipt_pdf", receipt_pdf_attachment)
