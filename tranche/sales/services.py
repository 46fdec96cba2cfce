"""Writes for quotes: create, accept (which creates the project), decline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from tranche.accounts.models import Customer, User
from tranche.core.db import lock_one, require_atomic, valid_id
from tranche.core.errors import Conflict, Invalid
from tranche.core.money import (
    MAX_AMOUNT,
    ZERO,
    UnknownCurrency,
    has_currency_precision,
    normalize_currency,
    round_money,
)
from tranche.sales.models import Quote, QuoteLine, QuoteStatus, ScheduleItem
from tranche.sales.schedule import check_billing, check_schedule_total


@dataclass(frozen=True)
class LineInput:
    description: str
    quantity: Decimal
    unit_price: Decimal


@dataclass(frozen=True)
class ScheduleInput:
    title: str
    is_billable: bool
    billing_percentage: Decimal | None


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
    customer = Customer.objects.filter(pk=customer_id).first() if valid_id(customer_id) else None
    if customer is None:
        raise Invalid(f"Customer {customer_id} does not exist.", code="customer_not_found")
    title = title.strip()
    if not title:
        raise Invalid("A quote needs a title.", code="title_required")
    try:
        currency = normalize_currency(currency)
    except UnknownCurrency as exc:
        raise Invalid(str(exc), code="currency_invalid") from None
    if not lines:
        raise Invalid("A quote needs at least one line.", code="lines_required")

    line_totals = []
    for number, line in enumerate(lines, start=1):
        if not line.description.strip():
            raise Invalid(f"Line {number} needs a description.", code="description_required")
        if not has_currency_precision(line.unit_price, currency):
            raise Invalid(
                f"Line {number}: unit price {line.unit_price} has more decimal places than "
                f"{currency} allows.",
                code="amount_precision",
            )
        line_totals.append(round_money(line.quantity * line.unit_price, currency))
    total = sum(line_totals, ZERO)
    if total > MAX_AMOUNT:
        raise Invalid(f"The quote total may not exceed {MAX_AMOUNT}.", code="total_too_large")

    for item in schedule:
        if not item.title.strip():
            raise Invalid("Every schedule item needs a title.", code="title_required")
        check_billing(
            title=item.title,
            is_billable=item.is_billable,
            billing_percentage=item.billing_percentage,
        )
    check_schedule_total(i.billing_percentage or ZERO for i in schedule if i.is_billable)

    with transaction.atomic():
        quote = Quote.objects.create(
            customer=customer,
            title=title,
            currency=currency,
            total=total,
            created_by=actor,
            created_at=now,
        )
        QuoteLine.objects.bulk_create(
            QuoteLine(
                quote=quote,
                position=position,
                description=line.description.strip(),
                quantity=line.quantity,
                unit_price=line.unit_price,
                line_total=line_total,
            )
            for position, (line, line_total) in enumerate(zip(lines, line_totals, strict=True), 1)
        )
        ScheduleItem.objects.bulk_create(
            ScheduleItem(
                quote=quote,
                position=position,
                title=item.title.strip(),
                is_billable=item.is_billable,
                billing_percentage=item.billing_percentage if item.is_billable else None,
            )
            for position, item in enumerate(schedule, 1)
        )
    return quote


def _lock_draft_quote(quote_id: int) -> Quote:
    quote = lock_one(Quote, quote_id, not_found=f"Quote {quote_id} does not exist.")
    if quote.status != QuoteStatus.DRAFT:
        raise Conflict(
            f"Quote {quote.pk} is already {quote.status}; only a draft quote can be accepted "
            "or declined.",
            code="quote_not_draft",
        )
    return quote


def quote_mark_accepted(*, actor: User, quote_id: int, now: datetime) -> Quote:
    """The sales half of accepting a quote, inside the acceptance's transaction (see
    projects.services.quote_accept, which also creates the project)."""
    require_atomic()
    quote = _lock_draft_quote(quote_id)
    quote.status = QuoteStatus.ACCEPTED
    quote.accepted_at = now
    quote.accepted_by = actor
    quote.save(update_fields=["status", "accepted_at", "accepted_by"])
    return quote


def quote_decline(*, actor: User, quote_id: int) -> Quote:
    with transaction.atomic():
        quote = _lock_draft_quote(quote_id)
        quote.status = QuoteStatus.DECLINED
        quote.save(update_fields=["status"])
    return quote
