"""Reads for quotes, scoped to the caller."""

from __future__ import annotations

from django.db.models import F, QuerySet

from tranche.accounts.access import customer_scope
from tranche.accounts.models import User
from tranche.core.db import valid_id
from tranche.core.errors import NotFound
from tranche.sales.models import Quote


def quote_list(*, user: User) -> QuerySet[Quote]:
    quotes = Quote.objects.prefetch_related("lines", "schedule").annotate(
        project_pk=F("project__id")
    )
    scope = customer_scope(user)
    return quotes if scope is None else quotes.filter(customer_id=scope)


def access_quote(user: User, quote_id: int) -> Quote:
    """The quote if this user may see it; 404 alike for missing and for someone else's."""
    quote = quote_list(user=user).filter(pk=quote_id).first() if valid_id(quote_id) else None
    if quote is None:
        raise NotFound(f"Quote {quote_id} does not exist.", code="quote_not_found")
    return quote
