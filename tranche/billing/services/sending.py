"""Sending a draft: it gets its number, its PaymentIntent and its payment link, and the
customer is emailed."""

from __future__ import annotations

import copy
import secrets
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet, prefetch_related_objects
from django.utils import timezone

from tranche.accounts.business import BusinessProfile, business_profile
from tranche.accounts.models import User
from tranche.billing.audit import EventKind, record_event, record_events
from tranche.billing.gateways import (
    GatewayError,
    Intent,
    IntentRequest,
    PaymentGateway,
    get_gateway,
)
from tranche.billing.locks import lock_invoice, lock_invoices
from tranche.billing.models import (
    Invoice,
    InvoiceEvent,
    InvoiceStatus,
    PaymentMethod,
)
from tranche.billing.numbering import peek_invoice_number, take_invoice_numbers
from tranche.billing.rules import require_draft, require_open_with_email, require_unclaimed
from tranche.billing.services.emails import (
    EmailPreview,
    address_to_current_billing_email,
    invoice_email_preview,
    queue_invoice_email,
    queue_sent_emails,
)
from tranche.billing.services.intents import intent_request
from tranche.billing.services.retainage import resettle_releases
from tranche.billing.tasks import sync_payment_intent as sync_payment_intent_task
from tranche.billing.taxes import (
    TAX_FIELDS,
    apply_tax,
    invoice_bases,
    tax_lines_unchanged,
    write_tax_lines,
)
from tranche.core.db import after_commit, lock_many, valid_id
from tranche.core.errors import Conflict, DomainError, Invalid, NotFound, ProviderError
from tranche.core.requestid import current_request_id
from tranche.core.tax import InvoiceTax
from tranche.projects.locks import lock_projects
from tranche.projects.models import Project

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


def _save_each(rows: QuerySet[Invoice], invoices: list[Invoice], fields: list[str]) -> int:
    """Write `fields` of each invoice, one UPDATE each (of those of `rows`: a guard);
    returns how many rows were written. Not bulk_update: its CASE WHEN pk = ... per field
    costs the database the square of the batch, and took seconds per 100 invoices."""
    return sum(
        rows.filter(pk=invoice.pk).update(**{f: getattr(invoice, f) for f in fields})
        for invoice in invoices
    )


def _address(invoice: Invoice, business: BusinessProfile | None = None) -> InvoiceTax:
    """Address the invoice as it goes out: today's customer name, billing email and tax
    id, and the business's tax id, and the tax as today's customer treatment asks (set,
    not saved)."""
    customer = invoice.customer
    invoice.customer_name = customer.name
    invoice.customer_email = customer.billing_email
    invoice.buyer_tax_id = customer.tax_id
    invoice.seller_tax_id = (business or business_profile()).tax_id
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


def _earlier_attempts(events: list[InvoiceEvent]) -> tuple[int, list[IntentRequest]]:
    """How many earlier sends the provider answered with an error, and the requests of
    earlier sends whose outcome is unknown and that are not yet withdrawn (`events`: the
    invoice's SEND_FAILED and INTENT_CANCELLED events, oldest first)."""
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


def _require_email(invoice: Invoice) -> None:
    if not invoice.customer_email:
        raise Invalid(
            f"{invoice.customer_name} has no billing email, so the invoice cannot be "
            "sent. Add one to the customer, then send again.",
            code="customer_email_missing",
        )


@dataclass
class _Claim:
    invoice: Invoice  # as locked and addressed by the claim (customer, project, tax lines)
    request: IntentRequest
    lost: list[IntentRequest]
    intent: Intent | None = None


def _claim_for_sending(
    read: list[Invoice], now: datetime, business: BusinessProfile
) -> tuple[list[_Claim], dict[int, DomainError]]:
    """Claim the drafts `read` (as the caller's access check read them, unlocked), in one
    short transaction: each is re-addressed and marked as being sent, so a concurrent
    send or edit of it gets 409. A draft that cannot go is refused on its own (its
    error), and the others are claimed all the same."""
    refused: dict[int, DomainError] = {}
    claims: list[_Claim] = []
    readdressed: list[Invoice] = []  # whose name, email, tax ids or tax changed
    ids = sorted({invoice.pk for invoice in read})
    with transaction.atomic(durable=True):
        # Locks in the one order: the projects, then their invoices, each in pk order. A
        # project is locked only where a retaxed draft may withhold another retainage
        # (its draft release then follows it); an invoice's project and retainage
        # percentage never change, so the unlocked read decides it.
        projects = lock_projects(
            {i.project_id for i in read if i.retainage_percentage or i.retainage_amount}
        )
        locked = lock_invoices(ids)
        prefetch_related_objects(list(locked.values()), "tax_lines")
        history: dict[int, list[InvoiceEvent]] = defaultdict(list)
        for event in InvoiceEvent.objects.filter(
            invoice_id__in=list(locked),
            kind__in=[EventKind.SEND_FAILED, EventKind.INTENT_CANCELLED],
        ):
            history[event.invoice_id].append(event)
        for invoice_id in ids:
            invoice = locked.get(invoice_id)
            try:
                if invoice is None:
                    raise NotFound(f"Invoice {invoice_id} does not exist.")
                addressed = [getattr(invoice, f) for f in ADDRESS_FIELDS]
                _claim_one(invoice, projects.get(invoice.project_id), now, business)
            except DomainError as exc:
                refused[invoice_id] = exc
                continue
            invoice.send_claimed_at = now
            if addressed != [getattr(invoice, f) for f in ADDRESS_FIELDS]:
                readdressed.append(invoice)
            answered, unknown = _earlier_attempts(history[invoice_id])
            request = intent_request(invoice, attempt=answered)
            lost = [r for r in unknown if r.idempotency_key != request.idempotency_key]
            claims.append(_Claim(invoice, request, lost))
        # Most drafts go out as they were made: their claim is one UPDATE for all of them.
        Invoice.objects.filter(pk__in=[c.invoice.pk for c in claims]).update(send_claimed_at=now)
        _save_each(Invoice.objects.all(), readdressed, ADDRESS_FIELDS)
    return claims, refused


def _claim_one(
    invoice: Invoice, project: Project | None, now: datetime, business: BusinessProfile
) -> None:
    """Check and re-address one locked draft (not saved: the claim saves them together).
    Raises the DomainError that refuses it; what it wrote is then undone."""
    require_draft(invoice, "sent")
    require_unclaimed(invoice, now)
    withheld = invoice.retainage_amount
    # A draft is addressed when it goes out: a billing email added to the customer after
    # the draft was made (the fix the refusal below asks for) is the one used.
    tax = _address(invoice, business)
    rewrite = not tax_lines_unchanged(invoice, tax)
    resettle = invoice.retainage_amount != withheld
    if not (rewrite or resettle):
        _require_email(invoice)
        return
    # A savepoint: a refusal undoes this draft's writes, not the other drafts' claims.
    with transaction.atomic():
        if rewrite:
            write_tax_lines(invoice, tax)
        if resettle:
            # Retaxed, so it withholds another amount: a draft release follows it.
            if project is None:
                raise Conflict(
                    f"Invoice {invoice.pk} changed while it was being sent; send it again.",
                    code="invoice_send_in_progress",
                )
            resettle_releases(
                actor=None, project=project, now=now, reason="Retainage changed", remake=True
            )
        _require_email(invoice)


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
    read: Invoice | None = None,
) -> Invoice:
    """Finalize a draft: number it, create its payment at the provider, email the customer.

    1. Claim the draft (short transaction): a concurrent send now gets 409.
    2. Create the PaymentIntent with no lock held; its idempotency key makes a retry safe.
    3. In one transaction: take the next number, mark it pending, queue the email.
    If the provider fails the claim is released: still a draft, no number, no email.
    `read`: the invoice as the caller's access check read it (spares reading it again)."""
    if read is None:
        read = Invoice.objects.filter(pk=invoice_id).first() if valid_id(invoice_id) else None
        if read is None:
            raise NotFound(f"Invoice {invoice_id} does not exist.")
    outcome = invoices_send(actor=actor, invoices=[read], now=now, gateway=gateway)[0]
    if outcome.error is not None:
        raise outcome.error
    assert outcome.invoice is not None
    return outcome.invoice


@dataclass(frozen=True)
class SendOutcome:
    invoice_id: int
    invoice: Invoice | None = None  # sent
    error: DomainError | None = None  # why it was not


def invoices_send(
    *,
    actor: User,
    invoices: list[Invoice],
    now: datetime | None = None,
    gateway: PaymentGateway | None = None,
) -> list[SendOutcome]:
    """Send drafts (as the caller's access check read them), each on its own: one that is
    refused (or that the provider fails) stays a draft and the others go. The steps of
    `invoice_send`, each done for all of them at once: one claim transaction, the
    provider calls (no lock held), one transaction that numbers them in the order given
    and queues their emails. Outcomes in the order given."""
    now = now or timezone.now()
    order = list(dict.fromkeys(invoice.pk for invoice in invoices))
    try:
        gateway = gateway or get_gateway()
    except ProviderError as exc:
        return [SendOutcome(invoice_id, error=exc) for invoice_id in order]
    business = business_profile()
    claims, refused = _claim_for_sending(invoices, now, business)
    for claim in claims:
        try:
            claim.intent = _create_intent(gateway, claim, actor=actor, now=now)
        except ProviderError as exc:
            refused[claim.invoice.pk] = exc
    sent = _finalize(
        [c for c in claims if c.intent is not None],
        order,
        refused,
        actor=actor,
        now=now,
        gateway=gateway,
        business=business,
    )
    return [
        SendOutcome(invoice_id, invoice=sent.get(invoice_id), error=refused.get(invoice_id))
        for invoice_id in order
    ]


def _create_intent(gateway: PaymentGateway, claim: _Claim, *, actor: User, now: datetime) -> Intent:
    invoice_id = claim.invoice.pk
    creating = False
    try:
        _withdraw_lost_intents(gateway, invoice_id=invoice_id, attempts=claim.lost, now=now)
        creating = True
        return gateway.create_intent(claim.request)
    except GatewayError as exc:
        failure: dict[str, object] = {"error": str(exc), "answered": creating and exc.answered}
        if creating and exc.outcome_unknown:
            # The provider may have made the intent all the same: the next send asks
            # for it again (see _withdraw_lost_intents).
            failure["request"] = asdict(claim.request)
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


class _ClaimLost(Exception):
    """A claimed draft no longer matched its claim when it was to be marked sent."""


def _finalize(
    claims: list[_Claim],
    order: list[int],
    refused: dict[int, DomainError],
    *,
    actor: User,
    now: datetime,
    gateway: PaymentGateway,
    business: BusinessProfile,
) -> dict[int, Invoice]:
    """Number, date and mark pending the claimed drafts whose intent was made, audit
    each and queue its email, in one transaction. A draft whose claim expired and that
    another send finished meanwhile is refused (409), alone.

    Locks: the year's number sequence first, then the invoices (every send takes them in
    this order). The common case writes the drafts with one UPDATE guarded by the claim
    (still a draft, still claimed by us: the guard and the row locks are one statement);
    if any draft fails the guard, all is undone and done again the careful way."""
    position = {invoice_id: n for n, invoice_id in enumerate(order)}
    going = sorted(claims, key=lambda c: position[c.invoice.pk])
    if not going:
        return {}
    try:
        with transaction.atomic(durable=True):
            return _mark_sent(
                going, guarded=True, actor=actor, now=now, gateway=gateway, business=business
            )
    except _ClaimLost:
        pass
    with transaction.atomic(durable=True):
        today = timezone.localdate(now)
        take_invoice_numbers(today.year, 0)  # the sequence's lock first, as above
        current = lock_many(Invoice, [c.invoice.pk for c in going])
        still: list[_Claim] = []
        for claim in going:
            invoice_id = claim.invoice.pk
            row = current.get(invoice_id)
            try:
                if row is None:
                    raise NotFound(f"Invoice {invoice_id} does not exist.")
                if row.status != InvoiceStatus.DRAFT or row.send_claimed_at != now:
                    # Our claim expired and another send finished the job meanwhile.
                    require_draft(row, "sent")
                    require_unclaimed(row, now)
            except DomainError as exc:
                refused[invoice_id] = exc
                continue
            claim.invoice.refresh_from_db()
            still.append(claim)
        if not still:
            return {}
        return _mark_sent(
            still, guarded=False, actor=actor, now=now, gateway=gateway, business=business
        )


def _mark_sent(
    going: list[_Claim],
    *,
    guarded: bool,
    actor: User,
    now: datetime,
    gateway: PaymentGateway,
    business: BusinessProfile,
) -> dict[int, Invoice]:
    numbers = take_invoice_numbers(
        timezone.localdate(now).year, len(going), fmt=business.invoice_number_format
    )
    for claim, number in zip(going, numbers, strict=True):
        invoice = claim.invoice
        assert claim.intent is not None
        invoice.number = number
        invoice.status = InvoiceStatus.PENDING
        _set_send_dates(invoice, now)
        invoice.sent_at = now
        invoice.sent_by = actor
        invoice.payment_gateway = gateway.name
        invoice.provider_reference = claim.intent.id
        invoice.pay_token = secrets.token_urlsafe(32)
        invoice.payment_link = f"{settings.BASE_URL}/pay/{invoice.pay_token}"
        invoice.send_claimed_at = None
        invoice.updated_at = now
    sent = [c.invoice for c in going]
    rows = Invoice.objects.all()
    if guarded:
        rows = rows.filter(status=InvoiceStatus.DRAFT, send_claimed_at=now)
    if _save_each(rows, sent, SEND_FIELDS) != len(sent):
        raise _ClaimLost
    record_events(
        [
            (
                invoice,
                {
                    "number": invoice.number,
                    "gateway": gateway.name,
                    "provider_reference": invoice.provider_reference,
                },
            )
            for invoice in sent
        ],
        EventKind.SENT,
        actor=actor,
        now=now,
    )
    queue_sent_emails(sent, now=now, business=business)
    if gateway.name != PaymentMethod.SANDBOX:
        # The intent learns the invoice's number (known only now). The sandbox keeps
        # no intents: there is nothing to tell it.
        for invoice in sent:
            after_commit(
                partial(
                    sync_payment_intent_task.enqueue, invoice.pk, request_id=current_request_id()
                )
            )
    return {invoice.pk: invoice for invoice in sent}


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
