"""The global financials view and its invoice actions."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from tranche.accounts.access import require_admin
from tranche.accounts.models import User
from tranche.billing import selectors as billing
from tranche.billing.models import InvoiceStatus
from tranche.billing.services.sending import invoice_send
from tranche.core.errors import DomainError
from tranche.web.views.common import act, back, user_of


def _statuses_for(user: User) -> list[tuple[str, str]]:
    """The status filters a person can use: a customer is never given a draft."""
    if user.is_staff_member:
        return list(InvoiceStatus.choices)
    return [(v, label) for v, label in InvoiceStatus.choices if v != InvoiceStatus.DRAFT]


@login_required
def financials(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    status = request.GET.get("status") or None
    try:
        page = billing.invoice_page(
            user=user, status=status, cursor=request.GET.get("cursor"), limit=50
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("financials")
    return render(
        request,
        "web/financials.html",
        {"page": page, "status": status, "statuses": _statuses_for(user)},
    )


@login_required
@require_POST
def send_invoice(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user = user_of(request)
    try:
        require_admin(user)
        invoice = billing.access_invoice(user, invoice_id)
    except DomainError:
        raise Http404("No such invoice.") from None
    act(
        request,
        lambda: invoice_send(actor=user, invoice_id=invoice.pk),
        "Invoice sent: it is numbered and the customer has been emailed the payment link.",
    )
    return back(request, f"/projects/{invoice.project_id}/")


urlpatterns = [
    path("financials/", financials, name="financials"),
    path("invoices/<int:invoice_id>/send", send_invoice, name="invoice-send"),
]
