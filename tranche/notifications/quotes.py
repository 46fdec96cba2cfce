"""Sending a quote to the customer: the quote is marked sent and its email queued in one
transaction. It lives here, above sales, because it writes both (DESIGN: a workflow lives
in the highest app it touches)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tranche.accounts.business import business_profile
from tranche.accounts.models import User
from tranche.core.tax import InvoiceTax
from tranche.notifications.services import outbox_enqueue
from tranche.sales.models import Quote
from tranche.sales.services import quote_mark_sent, quote_terms_of


def quote_link(quote: Quote) -> str:
    return f"{settings.BASE_URL}/quotes/{quote.pk}/"


def _taxed(quote: Quote) -> InvoiceTax | None:
    """The quote's tax breakdown, or None for a quote without any rate (its email then
    shows the plain total, as before tax existed)."""
    tax = quote_terms_of(quote).tax
    if tax is None or not (tax.tax.amount or any(line.rate.name for line in tax.lines)):
        return None
    return tax


def quote_send(*, actor: User, quote_id: int, now: datetime | None = None) -> Quote:
    """Send a draft (or re-send a sent) quote to the customer's billing email with a link
    to read and accept it in the portal. The email leaves only after the commit."""
    now = now or timezone.now()
    with transaction.atomic():
        event = quote_mark_sent(actor=actor, quote_id=quote_id, now=now)
        quote = event.quote
        customer = quote.customer
        outbox_enqueue(
            key=f"quote:{quote.pk}:sent:{event.pk}",
            kind="quote_sent",
            to=customer.billing_email,
            template="quote_sent",
            context={
                "quote": quote,
                "lines": list(quote.lines.all()),
                "tax": _taxed(quote),
                "deposits": [item for item in quote.schedule.all() if item.bill_on_acceptance],
                "business_name": business_profile().name,
                "greeting_name": customer.contact_name or customer.name,
                "link": quote_link(quote),
            },
            now=now,
        )
    return quote
