"""Sending a draft: it gets its number, its PaymentIntent and its payment link, and the
customer is emailed."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tranche.accounts.models import User
from tranche.billing.audit import EventKind, record_event
from tranche.billing.gateways import (
    GatewayError,
    IntentRequest,
    PaymentGateway,
    get_gateway,
)
from tranche.billing.locks import lock_invoice
from tranche.billing.models import (
    Invoice,
    InvoiceStatus,
)
from tranche.billing.numbering import next_invoice_number
from tranche.billing.rules import require_draft, require_unclaimed
from tranche.billing.services.emails import queue_invoice_email
from tranche.billing.services.intents import intent_request
from tranche.billing.tasks import sync_payment_intent as sync_payment_intent_task
from tranche.core.db import after_commit
from tranche.core.errors import Invalid, ProviderError

SEND_FIELDS = [
    "number",
    "status",
    "due_date",
    "issue_date",
    "sent_at",
    "sent_by",
    "payment_gateway",
    "provider_reference",
    "pay_token",
    "payment_link",
    "send_claimed_at",
    "updated_at",
]


def _claim_for_sending(invoice_id: int, now: datetime) -> IntentRequest:
    with transaction.atomic(durable=True):
        invoice = lock_invoice(invoice_id)
        require_draft(invoice, "sent")
        require_unclaimed(invoice, now)
        if not invoice.customer_email:
            raise Invalid(
                f"{invoice.customer_name} has no billing email, so the invoice cannot be "
                "sent. Add one to the customer, then send again.",
                code="customer_email_missing",
            )
        invoice.send_claimed_at = now
        invoice.save(update_fields=["send_claimed_at"])
        return intent_request(invoice)


def invoice_send(
    *,
    actor: User,
    invoice_id: int,
    now: datetime | None = None,
    gateway: PaymentGateway | None = None,
) -> Invoice:
    """Finalize a draft: number it, create its payment at the provider, email the customer.

    1. Claim the draft (short transaction): a concurrent send now gets 409.
    2. Create the PaymentIntent with no lock held; its idempotency key makes a retry safe.
    3. In one transaction: take the next number, mark it pending, queue the email.
    If the provider fails the claim is released: still a draft, no number, no email."""
    now = now or timezone.now()
    gateway = gateway or get_gateway()
    request = _claim_for_sending(invoice_id, now)
    try:
        intent = gateway.create_intent(request)
    except GatewayError as exc:
        with transaction.atomic(durable=True):
            invoice = lock_invoice(invoice_id)
            if invoice.send_claimed_at == now:
                invoice.send_claimed_at = None
                invoice.save(update_fields=["send_claimed_at"])
            record_event(invoice, EventKind.SEND_FAILED, actor=actor, now=now, error=str(exc))
        raise ProviderError(
            f"{exc}. The invoice was not sent and is still a draft; try sending it again "
            "in a few minutes.",
            code="payment_provider_error",
        ) from exc

    with transaction.atomic(durable=True):
        invoice = lock_invoice(invoice_id)
        if invoice.status != InvoiceStatus.DRAFT or invoice.send_claimed_at != now:
            # Our claim expired and another send finished the job meanwhile.
            require_draft(invoice, "sent")
            require_unclaimed(invoice, now)
        today = timezone.localdate(now)
        invoice.number = next_invoice_number(today.year)
        invoice.status = InvoiceStatus.PENDING
        if not invoice.due_date_fixed:
            invoice.due_date = today + timedelta(days=invoice.customer.payment_terms_days)
        invoice.issue_date = today
        invoice.sent_at = now
        invoice.sent_by = actor
        invoice.payment_gateway = gateway.name
        invoice.provider_reference = intent.id
        invoice.pay_token = secrets.token_urlsafe(32)
        invoice.payment_link = f"{settings.BASE_URL}/pay/{invoice.pay_token}"
        invoice.send_claimed_at = None
        invoice.updated_at = now
        invoice.save(update_fields=SEND_FIELDS)
        record_event(
            invoice,
            EventKind.SENT,
            actor=actor,
            now=now,
            number=invoice.number,
            gateway=gateway.name,
            provider_reference=intent.id,
        )
        queue_invoice_email(invoice, "invoice_sent", now=now)
        after_commit(lambda: sync_payment_intent_task.enqueue(invoice_id))
    return invoice
