"""A customer's side of a quote: the quote as a document, accepting it online with a typed
signature, declining it with a comment. Reached through the routes in `quotes`, which
send a customer here; the services refuse another customer's quote and any draft."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from tranche.accounts.business import business_profile
from tranche.billing.services.acceptance import quote_accept
from tranche.core.errors import NotFound
from tranche.core.http import client_ip
from tranche.core.money import Money
from tranche.sales.models import Quote, QuoteStatus, ScheduleItem
from tranche.sales.selectors import access_quote
from tranche.sales.services import Acceptance, quote_decline, quote_terms_of
from tranche.sales.terms import QuoteTerms
from tranche.web.views.common import act, user_of


def schedule_rows(quote: Quote, terms: QuoteTerms) -> list[tuple[ScheduleItem, Money | None]]:
    """Each schedule item with the amount `allocate()` bills for it."""
    return [(i, terms.money(a)) for i, a in zip(quote.schedule.all(), terms.amounts, strict=False)]


def quote_page(request: HttpRequest, quote: Quote) -> HttpResponse:
    terms = quote_terms_of(quote)
    return render(
        request,
        "web/quotes/portal.html",
        {
            "quote": quote,
            "terms": terms,
            "business_name": business_profile().name,
            # Without JavaScript a confirmation opens as part of the page (?confirm=…).
            "confirm": request.GET.get("confirm", ""),
            "rows": [
                (i, terms.money(a))
                for i, a in zip(quote.schedule.all(), terms.amounts, strict=False)
            ],
            "waiting": quote.status == QuoteStatus.SENT,
        },
    )


def _own_quote(request: HttpRequest, quote_id: int) -> Quote:
    try:
        return access_quote(user_of(request), quote_id)
    except NotFound:
        raise Http404("No such quote.") from None


def accept_online(request: HttpRequest, quote_id: int) -> HttpResponse:
    user = user_of(request)
    quote = _own_quote(request, quote_id)
    acceptance = Acceptance(
        name=request.POST.get("name", "")[:200],
        agreed=request.POST.get("agree") == "on",
        ip=client_ip(request),
    )
    act(
        request,
        lambda: quote_accept(actor=user, quote_id=quote.pk, acceptance=acceptance),
        f"Thank you: you accepted “{quote.title}”. Your project has been set up.",
    )
    return redirect("quote", quote_id=quote.pk)


def decline_online(request: HttpRequest, quote_id: int) -> HttpResponse:
    user = user_of(request)
    quote = _own_quote(request, quote_id)
    act(
        request,
        lambda: quote_decline(
            actor=user,
            quote_id=quote.pk,
            reason=request.POST.get("reason", ""),
            ip=client_ip(request),
        ),
        f"You declined “{quote.title}”. Thank you for letting us know.",
    )
    return redirect("quote", quote_id=quote.pk)
