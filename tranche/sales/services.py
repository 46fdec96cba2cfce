"""Writes for quotes: create, edit a draft, send, accept (which creates the project, see
billing.services.acceptance.quote_accept), decline. Every change writes a QuoteEvent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from tranche.accounts.business import business_profile
from tranche.accounts.models import Customer, TaxRate, TaxTreatment, User
from tranche.core.db import lock_one, require_atomic, valid_id
from tranche.core.errors import Conflict, Invalid, NotFound, PermissionDenied
from tranche.core.money import ZERO
from tranche.core.tax import PriceMode
from tranche.core.tax import TaxRate as CoreTaxRate
from tranche.sales.models import (
    Quote,
    QuoteEvent,
    QuoteEventKind,
    QuoteLine,
    QuoteStatus,
    ScheduleItem,
)
from tranche.sales.terms import LineInput, QuoteTerms, ScheduleInput, quote_terms

__all__ = [
    "Acceptance",
    "LineInput",
    "ScheduleInput",
    "quote_create",
    "quote_decline",
    "quote_mark_accepted",
    "quote_mark_sent",
    "quote_update",
]


def record_quote_event(
    quote: Quote, kind: QuoteEventKind, *, actor: User | None, now: datetime, **details: Any
) -> QuoteEvent:
    require_atomic()
    return QuoteEvent.objects.create(quote=quote, kind=kind, actor=actor, at=now, details=details)


def _customer(customer_id: int) -> Customer:
    customer = Customer.objects.filter(pk=customer_id).first() if valid_id(customer_id) else None
    if customer is None:
        raise Invalid(f"Customer {customer_id} does not exist.", code="customer_not_found")
    return customer


def with_rates(lines: Sequence[LineInput]) -> list[LineInput]:
    """The lines with their chosen rates read in (name and percentage as they are now).
    Only a rate still offered can be chosen: editing a draft whose line has a rate
    retired since asks for another."""
    # An id past the 64-bit range can never exist (and SQLite overflows on it).
    ids = {line.tax_rate_id for line in lines if line.tax_rate_id is not None}
    ids = {pk for pk in ids if valid_id(pk)}
    rates = {rate.pk: rate for rate in TaxRate.objects.filter(pk__in=ids)} if ids else {}
    resolved = []
    for number, line in enumerate(lines, 1):
        if line.tax_rate_id is None:
            resolved.append(replace(line, tax=None))
            continue
        rate = rates.get(line.tax_rate_id)
        if rate is None or not rate.is_active:
            raise Invalid(
                f"Line {number}: tax rate {line.tax_rate_id} does not exist or is no longer "
                "offered; choose another.",
                code="tax_rate_not_found",
            )
        resolved.append(replace(line, tax=CoreTaxRate(rate.name, rate.percentage)))
    return resolved


def _checked_terms(
    *,
    title: str,
    currency: str,
    lines: Sequence[LineInput],
    schedule: Sequence[ScheduleInput],
    mode: str,
    customer: Customer,
) -> QuoteTerms:
    terms = quote_terms(
        title=title,
        currency=currency,
        lines=lines,
        schedule=schedule,
        mode=PriceMode(mode),
        exempt=customer.tax_treatment != TaxTreatment.STANDARD,
    )
    terms.raise_first()
    return terms


def _write_rows(
    quote: Quote, terms: QuoteTerms, lines: Sequence[LineInput], schedule: Sequence[ScheduleInput]
) -> None:
    QuoteLine.objects.bulk_create(
        QuoteLine(
            quote=quote,
            position=position,
            description=line.description.strip(),
            quantity=line.quantity,
            unit_price=line.unit_price,
            line_total=line_total or ZERO,  # never None: the terms were checked
            tax_rate_id=line.tax_rate_id,
            tax_name=line.rate.name,
            tax_percentage=line.rate.percentage,
        )
        for position, (line, line_total) in enumerate(zip(lines, terms.line_totals, strict=True), 1)
    )
    ScheduleItem.objects.bulk_create(
        ScheduleItem(
            quote=quote,
            position=position,
            title=item.title.strip(),
            is_billable=item.is_billable,
            billing_percentage=item.billing_percentage if item.is_billable else None,
            bill_on_acceptance=item.bill_on_acceptance and item.is_billable,
        )
        for position, item in enumerate(schedule, 1)
    )


def quote_create(
    *,
    actor: User,
    customer_id: int,
    title: str,
    currency: str,
    lines: Sequence[LineInput],
    schedule: Sequence[ScheduleInput],
    now: datetime | None = None,
) -> Quote:
    now = now or timezone.now()
    customer = _customer(customer_id)
    lines = with_rates(lines)
    mode = business_profile().price_mode
    terms = _checked_terms(
        title=title,
        currency=currency,
        lines=lines,
        schedule=schedule,
        mode=mode,
        customer=customer,
    )
    assert terms.currency is not None  # no problems, so the currency is known

    with transaction.atomic():
        quote = Quote.objects.create(
            customer=customer,
            title=title.strip(),
            currency=terms.currency,
            price_mode=mode,
            total=terms.total,
            created_by=actor,
            created_at=now,
        )
        _write_rows(quote, terms, lines, schedule)
        record_quote_event(quote, QuoteEventKind.CREATED, actor=actor, now=now)
    return quote


def quote_update(
    *,
    actor: User,
    quote_id: int,
    customer_id: int,
    title: str,
    currency: str,
    lines: Sequence[LineInput],
    schedule: Sequence[ScheduleInput],
    now: datetime | None = None,
) -> Quote:
    """Replace a draft quote's customer, title, currency, lines and schedule.

    Only a draft: once sent, the customer may be reading (and signing) exactly this
    document, so what they accept must be what they were sent."""
    now = now or timezone.now()
    customer = _customer(customer_id)
    lines = with_rates(lines)
    with transaction.atomic():
        quote = _lock_quote(quote_id)
        if quote.status != QuoteStatus.DRAFT:
            raise Conflict(
                f"Quote {quote.pk} is {quote.status}; only a draft quote can be edited.",
                code="quote_not_draft",
            )
        terms = _checked_terms(
            title=title,
            currency=currency,
            lines=lines,
            schedule=schedule,
            mode=quote.price_mode,
            customer=customer,
        )
        assert terms.currency is not None
        quote.customer = customer
        quote.title = title.strip()
        quote.currency = terms.currency
        quote.total = terms.total
        quote.save(update_fields=["customer", "title", "currency", "total"])
        quote.lines.all().delete()
        quote.schedule.all().delete()
        _write_rows(quote, terms, lines, schedule)
        record_quote_event(quote, QuoteEventKind.UPDATED, actor=actor, now=now)
    return quote


def _lock_quote(quote_id: int) -> Quote:
    return lock_one(Quote, quote_id, not_found=f"Quote {quote_id} does not exist.")


def quote_terms_of(quote: Quote) -> QuoteTerms:
    """A stored quote's terms, worked out by the same function that checked them."""
    return quote_terms(
        title=quote.title,
        currency=quote.currency,
        lines=[line_input(line) for line in quote.lines.all()],
        schedule=[
            ScheduleInput(
                item.title, item.is_billable, item.billing_percentage, item.bill_on_acceptance
            )
            for item in quote.schedule.all()
        ],
        mode=PriceMode(quote.price_mode),
        exempt=quote.customer.tax_treatment != TaxTreatment.STANDARD,
    )


def line_input(line: QuoteLine) -> LineInput:
    """A stored line as the terms read it: its copy of the rate, not today's rate row."""
    tax = (
        CoreTaxRate(line.tax_name, line.tax_percentage)
        if line.tax_name or line.tax_percentage
        else None
    )
    return LineInput(line.description, line.quantity, line.unit_price, line.tax_rate_id, tax)


def quote_mark_sent(*, actor: User, quote_id: int, now: datetime) -> QuoteEvent:
    """The sales half of sending a quote, inside the sending's transaction (see
    notifications.quotes.quote_send, which also queues the email). A sent quote can be
    sent again (a lost email); the customer then reads the same document. Returns the
    "sent" event (its quote is `event.quote`)."""
    require_atomic()
    quote = _lock_quote(quote_id)
    if quote.status not in (QuoteStatus.DRAFT, QuoteStatus.SENT):
        raise Conflict(
            f"Quote {quote.pk} is already {quote.status}; only a draft or sent quote can be sent.",
            code="quote_not_sendable",
        )
    missing = quote_terms_of(quote).incomplete_problem
    if missing is not None:
        raise Conflict(
            f"{missing.detail} Edit the quote's payment schedule before sending it.",
            code=missing.code,
        )
    email = quote.customer.billing_email
    if not email:
        raise Conflict(
            f"{quote.customer.name} has no billing email, so the quote cannot be emailed. "
            "Add one on the customer's page first.",
            code="customer_email_missing",
        )
    quote.status = QuoteStatus.SENT
    quote.sent_at = now
    quote.save(update_fields=["status", "sent_at"])
    return record_quote_event(quote, QuoteEventKind.SENT, actor=actor, now=now, to=email)


@dataclass(frozen=True)
class Acceptance:
    """A customer's online acceptance: the full name they typed as their signature, the
    "I accept" box, and the address the request came from."""

    name: str
    agreed: bool
    ip: str | None


def _lock_for_customer_answer(actor: User, quote_id: int, verb: str) -> Quote:
    """Lock the quote `actor` answers. Staff may answer a draft or sent quote (on the
    customer's behalf); a customer only their own customer's sent quotes, and another
    customer's quote (or a draft) is missing to them."""
    quote = _lock_quote(quote_id)
    if actor.is_customer:
        if quote.customer_id != actor.customer_id or quote.status == QuoteStatus.DRAFT:
            raise NotFound(f"Quote {quote_id} does not exist.", code="quote_not_found")
        allowed: tuple[str, ...] = (QuoteStatus.SENT,)
    elif actor.is_staff_member:
        allowed = (QuoteStatus.DRAFT, QuoteStatus.SENT)
    else:  # pragma: no cover - every role is one of the two
        raise PermissionDenied("You cannot answer this quote.")
    if quote.status not in allowed:
        raise Conflict(
            f"Quote {quote.pk} is already {quote.status}; only a quote waiting for an "
            f"answer can be {verb}.",
            code="quote_not_draft",
        )
    return quote


MIN_SIGNATURE_LETTERS = 2


def quote_mark_accepted(
    *, actor: User, quote_id: int, now: datetime, acceptance: Acceptance | None = None
) -> Quote:
    """The sales half of accepting a quote, inside the acceptance's transaction (see
    billing.services.acceptance.quote_accept, which also creates the project). A customer accepts
    with their typed name; staff accept on the customer's behalf without one."""
    require_atomic()
    quote = _lock_for_customer_answer(actor, quote_id, "accepted")
    name = acceptance.name.strip() if acceptance else ""
    if actor.is_customer:
        # A signature is a name: at least two letters, not an initial or a stray key.
        if acceptance is None or sum(c.isalpha() for c in name) < MIN_SIGNATURE_LETTERS:
            raise Invalid("Type your full name to sign the acceptance.", code="signature_required")
        if not acceptance.agreed:
            raise Invalid("Tick “I accept this quote” to accept it.", code="agreement_required")
    quote.status = QuoteStatus.ACCEPTED
    quote.accepted_at = now
    quote.accepted_by = actor
    quote.accepted_name = name[:200]
    quote.accepted_ip = acceptance.ip if acceptance else None
    quote.save(
        update_fields=["status", "accepted_at", "accepted_by", "accepted_name", "accepted_ip"]
    )
    details: dict[str, Any] = {"on_behalf": actor.is_staff_member}
    if acceptance is not None:
        details.update(name=quote.accepted_name, ip=quote.accepted_ip)
    record_quote_event(quote, QuoteEventKind.ACCEPTED, actor=actor, now=now, **details)
    return quote


def quote_decline(
    *,
    actor: User,
    quote_id: int,
    reason: str = "",
    ip: str | None = None,
    now: datetime | None = None,
) -> Quote:
    now = now or timezone.now()
    reason = reason.strip()[:2000]
    with transaction.atomic():
        quote = _lock_for_customer_answer(actor, quote_id, "declined")
        quote.status = QuoteStatus.DECLINED
        quote.declined_at = now
        # The quote's decline_reason is the customer's own comment, shown to her; a reason
        # staff give (often an internal note) stays in the quote's activity only.
        quote.decline_reason = "" if actor.is_staff_member else reason
        quote.save(update_fields=["status", "declined_at", "decline_reason"])
        details: dict[str, Any] = {"reason": reason, "on_behalf": actor.is_staff_member}
        if ip is not None:
            details["ip"] = ip
        record_quote_event(quote, QuoteEventKind.DECLINED, actor=actor, now=now, **details)
    return quote
