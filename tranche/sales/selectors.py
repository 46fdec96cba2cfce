"""Reads for quotes, scoped to the caller. A customer never sees a draft: only quotes
that were sent to them (and what became of those)."""

from __future__ import annotations

from django.db.models import F, Q, QuerySet

from tranche.accounts.access import customer_scope
from tranche.accounts.models import User
from tranche.core.db import valid_id
from tranche.core.errors import NotFound
from tranche.sales.models import Quote, QuoteEvent, QuoteStatus


def _scoped(user: User, quotes: QuerySet[Quote]) -> QuerySet[Quote]:
    scope = customer_scope(user)
    if scope is None:
        return quotes
    # Only what was sent to her: a quote staff declined or accepted before sending it was
    # never hers to read.
    return quotes.filter(customer_id=scope, sent_at__isnull=False)


def quote_list(*, user: User) -> QuerySet[Quote]:
    quotes = (
        Quote.objects.select_related("customer")
        .prefetch_related("lines", "schedule")
        .annotate(project_pk=F("project__id"))
    )
    return _scoped(user, quotes)


def quote_search(*, user: User, search: str = "", status: str | None = None) -> QuerySet[Quote]:
    """The quotes list's rows (customer joined, no lines): newest first; `search` matches
    the title or the customer's name. A customer's quotes waiting for an answer come
    first."""
    quotes = _scoped(user, Quote.objects.select_related("customer"))
    search = search.strip()
    if search:
        quotes = quotes.filter(Q(title__icontains=search) | Q(customer__name__icontains=search))
    if status:
        quotes = quotes.filter(status=status)
    return quotes


def quote_statuses(user: User) -> list[tuple[str, str]]:
    """The statuses a person can filter by: a customer is never offered drafts."""
    if user.is_staff_member:
        return list(QuoteStatus.choices)
    return [(v, label) for v, label in QuoteStatus.choices if v != QuoteStatus.DRAFT]


def access_quote(user: User, quote_id: int) -> Quote:
    """The quote if this user may see it; 404 alike for missing and for someone else's."""
    quote = quote_list(user=user).filter(pk=quote_id).first() if valid_id(quote_id) else None
    if quote is None:
        raise NotFound(f"Quote {quote_id} does not exist.", code="quote_not_found")
    return quote


def quote_events(quote: Quote) -> list[QuoteEvent]:
    """The quote's audit trail, oldest first (staff only: it names staff)."""
    return list(quote.events.select_related("actor"))
