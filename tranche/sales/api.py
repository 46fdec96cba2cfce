from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router, Status

from tranche.accounts.access import require_staff
from tranche.accounts.auth import actor
from tranche.core.schemas import PageParams
from tranche.sales import selectors, services
from tranche.sales.schemas import QuoteIn, QuoteOut, QuotePage

router = Router(tags=["quotes"])


@router.post("", response={201: QuoteOut})
def create_quote(request: HttpRequest, payload: QuoteIn) -> Status[QuoteOut]:
    user = actor(request)
    require_staff(user)
    quote = services.quote_create(
        actor=user,
        customer_id=payload.customer_id,
        title=payload.title,
        currency=payload.currency,
        lines=[services.LineInput(**line.model_dump()) for line in payload.lines],
        schedule=[services.ScheduleInput(**item.model_dump()) for item in payload.schedule],
    )
    return Status(201, QuoteOut.of(selectors.access_quote(user, quote.pk)))


@router.get("", response=QuotePage)
def list_quotes(request: HttpRequest, page: Query[PageParams]) -> QuotePage:
    quotes = selectors.quote_list(user=actor(request))
    items = quotes[page.offset : page.offset + page.limit]
    return QuotePage(items=[QuoteOut.of(q) for q in items], count=quotes.count())


@router.get("/{quote_id}", response=QuoteOut)
def get_quote(request: HttpRequest, quote_id: int) -> QuoteOut:
    return QuoteOut.of(selectors.access_quote(actor(request), quote_id))


@router.post("/{quote_id}/decline", response=QuoteOut)
def decline_quote(request: HttpRequest, quote_id: int) -> QuoteOut:
    user = actor(request)
    require_staff(user)
    quote = selectors.access_quote(user, quote_id)
    services.quote_decline(actor=user, quote_id=quote.pk)
    return QuoteOut.of(selectors.access_quote(user, quote.pk))
