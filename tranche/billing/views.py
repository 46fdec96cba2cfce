"""The public pay page. The token in the URL is the credential: anything it does not
open (unknown, cancelled) gets the same friendly 404, revealing nothing.

The page offers a way to pay only when it charges exactly the amount due now: a Stripe
PaymentIntent is checked (and brought to the amount due) before its client secret is
handed out, and the sandbox form only while the sandbox is allowed."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from tranche.accounts.business import business_profile
from tranche.billing.gateways import GatewayError, gateway_for, sandbox_allowed
from tranche.billing.gateways.base import UNPAID_INTENT_STATUSES
from tranche.billing.models import OPEN_STATUSES, Invoice, PaymentMethod
from tranche.billing.pdf import invoice_body_html, pdf_bytes_response, pdf_response
from tranche.billing.receipts import latest_receipt_payment, receipt_filename, receipt_pdf
from tranche.billing.selectors import invoice_for_pay_token
from tranche.billing.services.intents import invoice_sync_intent_amount
from tranche.billing.services.payments import (
    SANDBOX_OFF,
    NotYetSettleable,
    sandbox_pay,
    settle_intent_succeeded,
)
from tranche.core.errors import DomainError
from tranche.core.money import from_minor_units


def _not_found(request: HttpRequest) -> HttpResponse:
    business = business_profile()
    return render(
        request,
        "billing/pay_missing.html",
        {"business_name": business.name, "business": business},
        status=404,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def pay(request: HttpRequest, token: str) -> HttpResponse:
    invoice = invoice_for_pay_token(token)
    if invoice is None:
        return _not_found(request)
    if request.method == "POST":
        try:
            sandbox_pay(invoice_id=invoice.pk, card_number=request.POST.get("card_number", ""))
        except DomainError as exc:
            messages.error(request, exc.detail)
        return redirect("pay", token=token)

    payable = invoice.status in OPEN_STATUSES and invoice.amount_due > 0
    sandbox = invoice.payment_gateway == PaymentMethod.SANDBOX
    business = business_profile()
    context: dict[str, object] = {
        "business": business,
        "business_name": business.name,
        "invoice": invoice,
        "payable": payable,
        "sandbox": sandbox and sandbox_allowed(),
        "has_receipt": latest_receipt_payment(invoice) is not None,
        # The same document as the PDF and the invoice page, from our own template.
        "document": mark_safe(invoice_body_html(invoice)),  # noqa: S308
    }
    if payable and sandbox and not sandbox_allowed():
        context["unavailable"] = SANDBOX_OFF
    if payable and invoice.payment_gateway == PaymentMethod.STRIPE:
        context.update(_stripe_context(invoice))
    return render(request, "billing/pay.html", context)


def _stripe_context(invoice: Invoice) -> dict[str, object]:
    """The Payment Element's settings, only for an intent that charges the amount due now;
    otherwise why the page offers no way to pay."""
    try:
        intent = invoice_sync_intent_amount(invoice_id=invoice.pk)
    except (GatewayError, DomainError):
        return {
            "unavailable": "Online payment is unavailable right now. Please try again in a "
            "few minutes."
        }
    due = invoice.due
    if intent is not None and intent.status == "processing":
        return {"unavailable": "A payment is processing; this page will show it once it clears."}
    if (
        intent is None
        or intent.status not in UNPAID_INTENT_STATUSES
        or intent.amount_minor != due.minor_units
        or not intent.client_secret
    ):
        return {
            "unavailable": f"Online payment is not available for the amount now due "
            f"({due}). Please contact {business_profile().name} to pay it."
        }
    # The client secret goes into this page only: never a URL, a log line or an email.
    return {
        "stripe": {
            "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "client_secret": intent.client_secret,
        }
    }


@never_cache
@require_GET
def pay_document(request: HttpRequest, token: str) -> HttpResponse:
    """The invoice as a PDF, for whoever holds its payment link."""
    invoice = invoice_for_pay_token(token)
    if invoice is None:
        return _not_found(request)
    return pdf_response(invoice)


@never_cache
@require_GET
def pay_receipt(request: HttpRequest, token: str) -> HttpResponse:
    """The receipt of the latest payment, for whoever holds the payment link."""
    invoice = invoice_for_pay_token(token)
    payment = latest_receipt_payment(invoice) if invoice is not None else None
    if payment is None:
        return _not_found(request)
    return pdf_bytes_response(receipt_pdf(payment), receipt_filename(payment))


@never_cache
@require_GET
def pay_done(request: HttpRequest, token: str) -> HttpResponse:
    """Where the Payment Element sends the customer after confirming: ask Stripe how the
    PaymentIntent ended and settle through the same path as the webhook."""
    invoice = invoice_for_pay_token(token)
    if invoice is None:
        return _not_found(request)
    if invoice.payment_gateway == PaymentMethod.STRIPE and invoice.provider_reference:
        try:
            gateway = gateway_for(invoice.payment_gateway)
            intent = gateway.retrieve_intent(invoice.provider_reference)
            if intent.status == "succeeded":
                settle_intent_succeeded(
                    intent_id=intent.id,
                    amount_received=from_minor_units(intent.amount_received_minor, intent.currency),
                    currency=intent.currency,
                    method=PaymentMethod.STRIPE,
                    source="pay page",
                )
            elif intent.status == "processing":
                messages.info(
                    request, "Your payment is processing; this page will show it once it clears."
                )
        except (GatewayError, NotYetSettleable, DomainError):
            messages.info(
                request, "We could not confirm your payment yet; it will show here shortly."
            )
    return redirect("pay", token=token)
