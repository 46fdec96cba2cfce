"""Sending a draft: it gets its number, its PaymentIntent and its payment link, and the
customer is emailed."""

from __future__ import annotations

import copy
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tranche.accounts.business import business_profile
from tranche.accounts.models import User
from tranche.billing.audit import EventKind, record_event
from tranche.billing.gateways import (
    GatewayError,
    IntentRequest,
    PaymentGateway,
    get_gateway,
)
from tranche.billing.locks import lock_invoice, lock_project_and_invoice
from tranche.billing.models import (
    Invoice,
    InvoiceStatus,
)
from tranche.billing.numbering import next_invoice_number, peek_invoice_number
from tranche.billing.rules import require_draft, require_open_with_email, require_unclaimed
from tranche.billing.services.emails import (
    EmailPreview,
    address_to_current_billing_email,
    invoice_email_preview,
    queue_invoice_email,
)
from tranche.billing.services.intents import intent_request
from tranche.billing.services.retainage import resettle_releases
from tranche.billing.tasks import sync_payment_intent as sync_payment_intent_task
from tranche.billing.taxes import TAX_FIELDS, apply_tax, invoice_bases, write_tax_lines
from tranche.core.db import after_commit
from tranche.core.errors import Invalid, ProviderError
from tranche.core.requestid import current_request_id
from tranche.core.tax import InvoiceTax

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


def _address(invoice: Invoice) -> InvoiceTax:
    """Address the invoice as it goes out: today's customer name, billing email and tax
    id, and the business's tax id, and the tax as today's customer treatment asks (set,
    not saved)."""
    customer = invoice.customer
    invoice.customer_name = customer.name
    invoice.customer_email = customer.billing_email
    invoice.buyer_tax_id = customer.tax_id
    invoice.seller_tax_id = business_profile().tax_id
    return apply_tax(invoice, invoice_bases(invoice), mode=invoice.price_mode, customer=customer)


ADDRESS_FIELDS = ["customer_name", "customer_email", "buyer_tax_id", "seller_tax_id", *TAX_FIELDS]


def _set_send_dates(invoice: Invoice, now: datetime) -> None:
    """Sending issues the invoice today; its due date follows the customer's terms unless
    an admin fixed it."""
    today = timezone.localdate(now)
    if not invoice.due_date_fixed:
        invoice.due_date = today + timedelta(days=invoice.customer.payment_terms_days)
    invoice.issue_date = today


@dataclass(frozen=True)
class SendPreview:
    """What sending this draft now would do: the invoice as it would go out and its email."""

    invoice: Invoice  # an unsaved copy, numbered and dated as the send would
    email: EmailPreview


def invoice_send_preview(*, invoice: Invoice, now: datetime | None = None) -> SendPreview:
    """The invoice_sent email as the customer would get it if this draft were sent now.
    Nothing is saved or taken: the number is the one the next send would take, and the
    payment link is made by the send itself."""
    now = now or timezone.now()
    draft = copy.copy(invoice)
    draft.number = peek_invoice_number(timezone.localdate(now).year)
    draft.status = InvoiceStatus.PENDING
    _address(draft)
    _set_send_dates(draft, now)
    try:
        draft.payment_gateway = get_gateway().name
    except ProviderError:
        draft.payment_gateway = ""  # the send itself will say payments are not configured
    draft.payment_link = f"{settings.BASE_URL}/pay/…"
    return SendPreview(draft, invoice_email_preview(draft, "invoice_sent"))


def _earlier_attempts(invoice: Invoice) -> tuple[int, list[IntentRequest]]:
    """How many earlier sends the provider answered with an error, and the requests of
    earlier sends whose outcome is unknown and that are not yet withdrawn."""
    events = list(
        invoice.events.filter(kind__in=[EventKind.SEND_FAILED, EventKind.INTENT_CANCELLED])
    )
    withdrawn = {
        e.details.get("idempotency_key") for e in events if e.kind == EventKind.INTENT_CANCELLED
    }
    answered = sum(
        1 for e in events if e.kind == EventKind.SEND_FAILED and e.details.get("answered")
    )
    unknown = [
        IntentRequest(**e.details["request"])
        for e in events
        if e.kind == EventKind.SEND_FAILED
        and isinstance(e.details.get("request"), dict)
        and e.details["request"].get("idempotency_key") not in withdrawn
    ]
    return answered, unknown


def _claim_for_sending(invoice_id: int, now: datetime) -> tuple[IntentRequest, list[IntentRequest]]:
    with transaction.atomic(durable=True):
        project, invoice = lock_project_and_invoice(invoice_id)
        require_draft(invoice, "sent")
        require_unclaimed(invoice, now)
        withheld = invoice.retainage_amount
        # A draft is addressed when it goes out: a billing email added to the customer
        # after the draft was made (the fix the refusal below asks for) is the one used.
        write_tax_lines(invoice, _address(invoice))
        if invoice.retainage_amount != withheld:
            # Retaxed, so it withholds another amount: a draft release follows it.
            resettle_releases(
                actor=None, project=project, now=now, reason="Retainage changed", remake=True
            )
        if not invoice.customer_email:
            raise Invalid(
                f"{invoice.customer_name} has no billing email, so the invoice cannot be "
                "sent. Add one to the customer, then send again.",
                code="customer_email_missing",
            )
        invoice.send_claimed_at = now
        invoice.save(update_fields=["send_claimed_at", *ADDRESS_FIELDS])
        answered, unknown = _earlier_attempts(invoice)
        request = intent_request(invoice, attempt=answered)
        return request, [r for r in unknown if r.idempotency_key != request.idempotency_key]


def _withdraw_lost_intents(
    gateway: PaymentGateway, *, invoice_id: int, attempts: list[IntentRequest], now: datetime
) -> None:
    """An earlier send whose answer never came (or was a server error) may have made a
    PaymentIntent all the same, and this send asks under another key (the draft changed,
    or the provider kept an error for the old key). Each such request is made again with
    its own key and parameters: the provider answers with the intent it made (or makes
    it now), which is cancelled, so the invoice never has two live intents. An error
    answer means that key made none. Raises GatewayError when the provider cannot say."""
    for attempt in attempts:
        try:
            lost = gateway.create_intent(attempt)
        except GatewayError as exc:
            if exc.answered:
                continue
            raise
        gateway.cancel_intent(lost.id)
        with transaction.atomic(durable=True):
            record_event(
                Invoice.objects.get(pk=invoice_id),
                EventKind.INTENT_CANCELLED,
                actor=None,
                now=now,
                provider_reference=lost.id,
                idempotency_key=attempt.idempotency_key,
                reason="An earlier send whose answer was lost had made it; the invoice keeps "
                "one PaymentIntent.",
            )


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
    request, lost = _claim_for_sending(invoice_id, now)
    creating = False
    try:
        _withdraw_lost_intents(gateway, invoice_id=invoice_id, attempts=lost, now=now)
        creating = True
        intent = gateway.create_intent(request)
    except GatewayError as exc:
        failure: dict[str, object] = {"error": str(exc), "answered": creating and exc.answered}
        if creating and exc.outcome_unknown:
            # The provider may have made the intent all the same: the next send asks
            # for it again (see _withdraw_lost_intents).
            failure["request"] = asdict(request)
        with transaction.atomic(durable=True):
            invoice = lock_invoice(invoice_id)
            if invoice.send_claimed_at == now:
                invoice.send_claimed_at = None
                invoice.save(update_fields=["send_claimed_at"])
            record_event(invoice, EventKind.SEND_FAILED, actor=actor, now=now, **failure)
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
        _set_send_dates(invoice, now)
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
        after_commit(
            lambda: sync_payment_intent_task.enqueue(invoice_id, request_id=current_request_id())
        )
    return invoice


def invoice_resend(*, actor: User, invoice_id: int, now: datetime | None = None) -> Invoice:
    """Email the invoice to the customer again (the first email went astray): a sent
    invoice that still asks for money."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        address_to_current_billing_email(invoice, now=now)
        require_open_with_email(
            invoice, action="emailed again", refused="the invoice cannot be emailed"
        )
        # Each resend is its own outbox row: counted under the row lock, so two admins
        # resending at once queue two emails, never one key twice.
        count = invoice.events.filter(kind=EventKind.EMAIL_RESENT).count() + 1
        queue_invoice_email(invoice, "invoice_sent", now=now, step=f"resend-{count}")
        record_event(
            invoice, EventKind.EMAIL_RESENT, actor=actor, now=now, to=invoice.customer_email
        )
    return invoice
