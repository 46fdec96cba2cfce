"""Every state change of invoices: draft creation, edits, sending, cancelling.

Each change locks the invoice row, re-checks its status under the lock, writes an
InvoiceEvent in the same transaction, and queues emails in the outbox so they leave only
after commit. Calls to the payment provider are made with no row lock held."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tranche.accounts.models import User
from tranche.billing.gateways import (
    GatewayError,
    Intent,
    IntentRequest,
    PaymentGateway,
    gateway_for,
    get_gateway,
)
from tranche.billing.gateways.base import UNPAID_INTENT_STATUSES
from tranche.billing.models import (
    OPEN_STATUSES,
    SENT_STATUSES,
    Invoice,
    InvoiceEvent,
    InvoiceStatus,
    InvoiceType,
    PaymentMethod,
)
from tranche.billing.numbering import next_invoice_number
from tranche.core.db import after_commit, lock_one
from tranche.core.errors import Conflict, Invalid, ProviderError
from tranche.core.money import (
    ZERO,
    format_amount,
    format_for_people,
    from_minor_units,
    has_currency_precision,
    to_minor_units,
)
from tranche.notifications.services import outbox_enqueue
from tranche.projects.models import Milestone, Project

# Longer than the provider call can take (timeout and one retry): a claim older than this
# was left by a process that died mid-send, and the invoice may be sent again.
SEND_CLAIM_TIMEOUT = timedelta(minutes=2)
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


def record_event(
    invoice: Invoice, kind: str, *, actor: User | None, now: datetime, **details: Any
) -> None:
    InvoiceEvent.objects.create(
        invoice=invoice, actor=actor, kind=kind, details=details, created_at=now
    )


def lock_invoice(invoice_id: int) -> Invoice:
    return lock_one(Invoice, invoice_id, not_found=f"Invoice {invoice_id} does not exist.")


def _require_draft(invoice: Invoice, action: str) -> None:
    if invoice.status != InvoiceStatus.DRAFT:
        shown = invoice.number or f"Invoice {invoice.pk}"
        raise Conflict(
            f"{shown} is {invoice.status.replace('_', ' ')}; only a draft can be {action}.",
            code="invoice_not_draft",
        )


def _require_unclaimed(invoice: Invoice, now: datetime) -> None:
    if invoice.send_claimed_at and now - invoice.send_claimed_at < SEND_CLAIM_TIMEOUT:
        raise Conflict(
            f"Invoice {invoice.pk} is being sent right now; wait a moment and reload it.",
            code="invoice_send_in_progress",
        )


def unbilled_amount(project: Project, *, excluding: Invoice | None = None) -> Decimal:
    """What the contract still allows to be invoiced: the total less every live invoice
    (drafts included)."""
    live = project.invoices.exclude(status=InvoiceStatus.CANCELLED)
    if excluding is not None:
        live = live.exclude(pk=excluding.pk)
    return project.contract_total - sum(live.values_list("amount", flat=True), ZERO)


def invoice_create_for_milestone(
    *, actor: User, project: Project, milestone: Milestone, amount: Decimal, now: datetime
) -> Invoice | None:
    """The draft invoice of a just-completed billable milestone. Called by milestone
    completion inside its transaction, with the milestone row locked.

    Returns None when the milestone already has a live invoice (the database's partial
    unique index decides, so a concurrent completion cannot make a second one)."""
    if project.origin_quote_id is None:
        raise Invalid(
            f"Project {project.pk} has no originating quote, so there is nothing to bill "
            "this milestone against.",
            code="project_without_quote",
        )
    if amount <= 0:
        raise Invalid(
            f"Milestone {milestone.title!r} bills nothing (its amount is zero); make it "
            "non-billable or change its percentage before completing it.",
            code="milestone_amount_zero",
        )
    if amount > unbilled_amount(project):
        raise Invalid(
            f"Billing {milestone.title!r} would invoice more than the contract total; "
            "lower or cancel another invoice of this project first.",
            code="contract_overbilled",
        )
    customer = project.customer
    today = timezone.localdate(now)
    try:
        with transaction.atomic():
            invoice = Invoice.objects.create(
                project=project,
                quote_id=project.origin_quote_id,
                milestone=milestone,
                customer=customer,
                invoice_type=InvoiceType.MILESTONE,
                currency=project.currency,
                amount=amount,
                description=f"Payment for completed milestone: {milestone.title}",
                issue_date=today,
                due_date=today + timedelta(days=customer.payment_terms_days),
                customer_name=customer.name,
                customer_email=customer.billing_email,
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
    except IntegrityError:
        return None
    record_event(
        invoice, "created", actor=actor, now=now, milestone_id=milestone.pk, amount=str(amount)
    )
    return invoice


def invoice_update_draft(
    *,
    actor: User,
    invoice_id: int,
    amount: Decimal | None = None,
    description: str | None = None,
    due_date: date | None = None,
    now: datetime | None = None,
) -> Invoice:
    now = now or timezone.now()
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        _require_draft(invoice, "edited")
        _require_unclaimed(invoice, now)
        changes: dict[str, str] = {}
        if amount is not None:
            if amount <= 0:
                raise Invalid("The amount must be greater than zero.", code="amount_not_positive")
            if not has_currency_precision(amount, invoice.currency):
                raise Invalid(
                    f"{amount} has more decimal places than {invoice.currency} allows.",
                    code="amount_precision",
                )
            # Lock the project too, so two drafts edited at once cannot together exceed it.
            project = lock_one(Project, invoice.project_id, not_found="Project is gone.")
            available = unbilled_amount(project, excluding=invoice)
            if amount > available:
                raise Invalid(
                    f"{format_for_people(amount, invoice.currency)} is more than remains "
                    f"unbilled on the contract ({format_for_people(available, invoice.currency)}).",
                    code="amount_exceeds_unbilled",
                )
            changes["amount"] = f"{invoice.amount} -> {amount}"
            invoice.amount = amount
        if description is not None:
            if not description.strip():
                raise Invalid("The description cannot be empty.", code="description_required")
            changes["description"] = "changed"
            invoice.description = description.strip()
        if due_date is not None:
            if due_date < invoice.issue_date:
                raise Invalid(
                    "The due date cannot be before the issue date.", code="due_date_invalid"
                )
            changes["due_date"] = f"{invoice.due_date} -> {due_date}"
            invoice.due_date = due_date
            invoice.due_date_fixed = True
        if changes:
            invoice.updated_at = now
            invoice.save(
                update_fields=["amount", "description", "due_date", "due_date_fixed", "updated_at"]
            )
            record_event(invoice, "edited", actor=actor, now=now, **changes)
    return invoice


def _intent_request(invoice: Invoice) -> IntentRequest:
    # Keyed by this installation, the invoice and what is charged: a retry of the same
    # send reuses the PaymentIntent; a send after the amount changed gets a new one.
    site = urlsplit(settings.BASE_URL).netloc
    minor = to_minor_units(invoice.amount, invoice.currency)
    project = invoice.project
    return IntentRequest(
        amount_minor=minor,
        currency=invoice.currency,
        description=f"{project.name}: {invoice.description}",
        metadata={
            "invoice_id": str(invoice.pk),
            "project_id": str(invoice.project_id),
            "customer_id": str(invoice.customer_id),
        },
        receipt_email=invoice.customer_email,
        idempotency_key=f"tranche:{site}:invoice:{invoice.pk}:send:{minor}{invoice.currency}",
    )


def _claim_for_sending(invoice_id: int, now: datetime) -> IntentRequest:
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        _require_draft(invoice, "sent")
        _require_unclaimed(invoice, now)
        if not invoice.customer_email:
            raise Invalid(
                f"{invoice.customer_name} has no billing email, so the invoice cannot be "
                "sent. Add one to the customer, then send again.",
                code="customer_email_missing",
            )
        invoice.send_claimed_at = now
        invoice.save(update_fields=["send_claimed_at"])
        return _intent_request(invoice)


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
        with transaction.atomic():
            invoice = lock_invoice(invoice_id)
            if invoice.send_claimed_at == now:
                invoice.send_claimed_at = None
                invoice.save(update_fields=["send_claimed_at"])
            record_event(invoice, "send_failed", actor=actor, now=now, error=str(exc))
        raise ProviderError(
            f"{exc}. The invoice was not sent and is still a draft; try sending it again "
            "in a few minutes.",
            code="payment_provider_error",
        ) from exc

    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        if invoice.status != InvoiceStatus.DRAFT or invoice.send_claimed_at != now:
            # Our claim expired and another send finished the job meanwhile.
            _require_draft(invoice, "sent")
            _require_unclaimed(invoice, now)
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
            "sent",
            actor=actor,
            now=now,
            number=invoice.number,
            gateway=gateway.name,
            provider_reference=intent.id,
        )
        queue_invoice_email(invoice, "invoice_sent", now=now)
        after_commit(lambda: _enqueue_intent_sync(invoice_id))
    return invoice


def _enqueue_intent_sync(invoice_id: int) -> None:
    from tranche.billing.tasks import sync_payment_intent

    sync_payment_intent.enqueue(invoice_id)


def invoice_sync_intent(*, invoice_id: int) -> None:
    """Give the provider's PaymentIntent the invoice number, known only after sending."""
    invoice = Invoice.objects.select_related("project").get(pk=invoice_id)
    if not invoice.provider_reference or not invoice.number:
        return
    gateway = gateway_for(invoice.payment_gateway)
    request = _intent_request(invoice)
    gateway.update_intent(
        invoice.provider_reference,
        description=f"{invoice.number} · {request.description}",
        metadata={**request.metadata, "invoice_number": invoice.number},
    )


def queue_intent_amount_sync(invoice: Invoice) -> None:
    """Once the current transaction commits, bring the invoice's PaymentIntent to the
    amount due then (see invoice_sync_intent_amount). Called wherever the amount due
    changes other than through the intent itself: a payment recorded by hand, a refund."""
    if invoice.provider_reference and invoice.payment_gateway == PaymentMethod.STRIPE:
        invoice_id = invoice.pk
        after_commit(lambda: _enqueue_intent_amount_sync(invoice_id))


def _enqueue_intent_amount_sync(invoice_id: int) -> None:
    from tranche.billing.tasks import sync_intent_amount

    sync_intent_amount.enqueue(invoice_id)


# Each round reads the invoice afresh; more than one is needed only when payments land
# while the provider is being called, and a few are enough to catch up with any of them.
INTENT_SYNC_ROUNDS = 3


def invoice_sync_intent_amount(*, invoice_id: int, now: datetime | None = None) -> Intent | None:
    """Make the invoice's PaymentIntent charge exactly the amount due now: change its
    amount while it is unpaid, or cancel it once the invoice asks for nothing more (paid
    by transfer). Returns the intent as it now stands at the provider, or None when the
    invoice has none to hand out (none, sandbox, cancelled here).

    No row lock is held while the provider answers; the invoice is read again after
    each change instead, so a payment recorded meanwhile (or a stale task running after
    a newer one) ends with the amount due now, not the amount due when it started.
    Raises GatewayError or ProviderError when the provider cannot be asked or refuses."""
    now = now or timezone.now()
    intent: Intent | None = None
    for _ in range(INTENT_SYNC_ROUNDS):
        invoice = Invoice.objects.get(pk=invoice_id)
        reference = invoice.provider_reference
        # The sandbox charges the amount due at the moment of paying: no intent to change.
        if (
            not reference
            or invoice.payment_gateway == PaymentMethod.SANDBOX
            or invoice.status not in SENT_STATUSES
        ):
            return None
        gateway = gateway_for(invoice.payment_gateway)
        intent = gateway.retrieve_intent(reference)
        if intent.status not in UNPAID_INTENT_STATUSES:
            return intent  # processing, succeeded or canceled: its amount is history
        if invoice.status not in OPEN_STATUSES or invoice.amount_due <= 0:
            gateway.cancel_intent(reference)
            record_event(
                invoice,
                "intent_cancelled",
                actor=None,
                now=now,
                provider_reference=reference,
                reason="The invoice was settled another way; nothing is left to pay online.",
            )
            return None
        due = to_minor_units(invoice.amount_due, invoice.currency)
        if intent.amount_minor == due:
            return intent
        before = intent.amount_minor
        intent = gateway.update_intent_amount(reference, amount_minor=due)
        record_event(
            invoice,
            "intent_amount_changed",
            actor=None,
            now=now,
            provider_reference=reference,
            old=format_amount(from_minor_units(before, invoice.currency), invoice.currency),
            new=format_amount(invoice.amount_due, invoice.currency),
        )
    return intent


def queue_invoice_email(
    invoice: Invoice, kind: str, *, now: datetime, step: str = "", **extra: object
) -> None:
    """Queue one of the customer emails about `invoice`; the key makes each (kind, step)
    go out at most once per invoice."""
    project = invoice.project
    outbox_enqueue(
        key=f"invoice:{invoice.pk}:{kind}{':' + step if step else ''}",
        kind=kind,
        to=invoice.customer_email,
        template=kind,
        context={
            "invoice": invoice,
            "project": project,
            "business_name": settings.BUSINESS_NAME,
            "greeting_name": invoice.customer.contact_name or invoice.customer_name,
            "amount": format_for_people(invoice.amount, invoice.currency),
            "amount_due": format_for_people(invoice.amount_due, invoice.currency),
            "amount_paid": format_for_people(invoice.amount_paid, invoice.currency),
            "sandbox": invoice.payment_gateway == "sandbox",
            **extra,
        },
        now=now,
    )


def invoice_cancel(
    *,
    actor: User,
    invoice_id: int,
    reason: str,
    now: datetime | None = None,
) -> Invoice:
    """Cancel a draft, or a sent invoice with no payments (it keeps its number). Its
    PaymentIntent is cancelled at the gateway the invoice was sent with, whatever is
    configured for new invoices today."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise Invalid("Say why the invoice is cancelled.", code="reason_required")

    def check(invoice: Invoice) -> None:
        if invoice.status == InvoiceStatus.CANCELLED:
            raise Conflict(f"{invoice} is already cancelled.", code="invoice_already_cancelled")
        if invoice.amount_paid != 0 or invoice.status in (
            InvoiceStatus.PAID,
            InvoiceStatus.PARTIALLY_PAID,
        ):
            raise Conflict(
                f"{invoice} has payments and cannot be cancelled; refund them first.",
                code="invoice_has_payments",
            )
        _require_unclaimed(invoice, now)

    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        check(invoice)
        intent_id = invoice.provider_reference
        gateway_name = invoice.payment_gateway
    if intent_id:
        # Stop the customer paying it before we say it is cancelled; no lock is held while
        # the provider answers, so the state is checked again below.
        gateway = gateway_for(gateway_name)
        try:
            gateway.cancel_intent(intent_id)
        except GatewayError as exc:
            raise ProviderError(
                f"{exc}. The invoice was not cancelled; try again in a few minutes.",
                code="payment_provider_error",
            ) from exc
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        check(invoice)
        was_sent = invoice.status != InvoiceStatus.DRAFT
        invoice.status = InvoiceStatus.CANCELLED
        invoice.cancelled_at = now
        invoice.cancelled_by = actor
        invoice.cancel_reason = reason
        invoice.updated_at = now
        invoice.save(
            update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason", "updated_at"]
        )
        record_event(invoice, "cancelled", actor=actor, now=now, reason=reason)
        if was_sent:
            queue_invoice_email(invoice, "invoice_cancelled", now=now)
    return invoice


def invoice_cancel_draft_for_reopen(*, actor: User, invoice: Invoice, now: datetime) -> None:
    """Milestone reopening, inside its transaction: the draft goes; a sent invoice stays."""
    invoice = lock_invoice(invoice.pk)
    if invoice.status != InvoiceStatus.DRAFT:
        raise Conflict(
            f"Invoice {invoice.number} was already sent for this milestone. Cancel the "
            "invoice first, then reopen the milestone.",
            code="invoice_already_sent",
        )
    _require_unclaimed(invoice, now)
    invoice.status = InvoiceStatus.CANCELLED
    invoice.cancelled_at = now
    invoice.cancelled_by = actor
    invoice.cancel_reason = "Milestone reopened"
    invoice.updated_at = now
    invoice.save(
        update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason", "updated_at"]
    )
    record_event(invoice, "cancelled", actor=actor, now=now, reason="Milestone reopened")
