"""The global financials view: the filtered, sorted, paged invoice list with its totals,
sending selected drafts (with a confirmation and a summary of each), and the CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from tranche.accounts.access import require_admin, require_staff
from tranche.accounts.models import SecurityEventKind, User
from tranche.accounts.security import security_event
from tranche.billing import reports
from tranche.billing import selectors as billing
from tranche.billing.exports import ExportFormat, export_period, export_response
from tranche.billing.models import Invoice, InvoiceStatus
from tranche.billing.services.sending import invoice_send, invoices_send
from tranche.core.errors import DomainError
from tranche.web.views.common import act, back, page_of, safe_next, user_of

SUMMARY_KEY = "financials_send_summary"
MAX_SELECTED = 100


def _ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit() and len(v) < 12][:MAX_SELECTED]


@login_required
@require_GET
def financials(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    query = reports.invoice_query(request.GET, user=user)
    context: dict[str, Any] = {
        "query": query,
        "filters": query.filter,
        "errors": query.errors,
        "statuses": reports.statuses_for(user),
        "sorts": [(value, label) for value, (label, _order) in reports.SORTS.items()],
        "choices": reports.filter_choices(user=user, query=query),
        "summary": request.session.pop(SUMMARY_KEY, None) if user.is_admin else None,
        "params": _params_without_page(request),
        "export_period": _last_month(),
    }
    if query.errors:
        for sentence in query.errors.values():
            messages.error(request, sentence)
        return render(request, "web/financials.html", context, status=400)
    page = page_of(
        request,
        reports.invoice_list(user=user, query=query),
        count=reports.invoice_list_count(user=user, query=query),
    )
    context["page"] = page
    context["rows"] = rows = list(page.object_list)
    context["can_send"] = user.is_admin and any(i.status == InvoiceStatus.DRAFT for i in rows)
    context["totals"] = reports.invoice_list_totals(user=user, query=query)
    return render(request, "web/financials.html", context)


def _params_without_page(request: HttpRequest) -> str:
    """The filters as a query string, to carry into the page links and the export."""
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@login_required
@require_GET
def export_csv(request: HttpRequest) -> HttpResponseBase:
    """The filtered list as CSV, streamed row by row (staff only)."""
    user = user_of(request)
    try:
        require_staff(user)
    except DomainError:
        raise Http404("No such page.") from None
    query = reports.invoice_query(request.GET, user=user)
    if query.errors:
        return HttpResponse(
            " ".join(query.errors.values()), status=400, content_type="text/plain; charset=utf-8"
        )
    writer = csv.writer(_Echo())
    rows: Iterator[Any] = (
        writer.writerow(row) for row in reports.invoice_csv_rows(user=user, query=query)
    )
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    filename = f"invoices-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    security_event(
        kind=SecurityEventKind.EXPORT,
        actor=user,
        detail=f"Invoice list exported as CSV ({request.GET.urlencode()[:300] or 'no filter'}).",
    )
    return response


def _last_month() -> tuple[date, date]:
    """The accounting export's default period: last month, the one usually booked."""
    end = timezone.localdate().replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


class AccountingExportForm(forms.Form):
    date_from = forms.DateField()
    date_to = forms.DateField()
    format = forms.ChoiceField(choices=[(f.value, f.value) for f in ExportFormat])


@login_required
@require_GET
def accounting_export(request: HttpRequest) -> HttpResponseBase:
    """The accounting export (billing.exports) for the period asked, streamed (staff)."""
    user = user_of(request)
    try:
        require_staff(user)
    except DomainError:
        raise Http404("No such page.") from None
    form = AccountingExportForm(request.GET)
    if not form.is_valid():
        messages.error(
            request,
            "The accounting export needs a “from” and a “to” date written like 2026-11-28 "
            "and a format, CSV or JSON.",
        )
        return redirect("financials")
    data = form.cleaned_data
    try:
        period = export_period(data["date_from"], data["date_to"])
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("financials")
    return export_response(user=user, period=period, export_format=ExportFormat(data["format"]))


class _Echo:
    """A file-like object for csv.writer that hands each line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _admin_or_404(request: HttpRequest) -> User:
    user = user_of(request)
    try:
        require_admin(user)
    except DomainError:
        raise Http404("No such page.") from None
    return user


@login_required
@require_GET
def send_preview(request: HttpRequest) -> HttpResponse:
    """The confirmation's body (an htmx fragment): how many drafts, their total per
    currency, and the button that sends them."""
    user = _admin_or_404(request)
    preview = reports.send_preview(user=user, invoice_ids=_ids(request.GET.getlist("invoice")))
    return render(
        request,
        "web/financials/_send_preview.html",
        {"preview": preview, "next": safe_next(request, "/financials/")},
    )


def _fix_for(code: str, invoice: Invoice) -> tuple[str, str] | None:
    """Where a person fixes what stopped one invoice from being sent."""
    if code == "customer_email_missing":
        return (
            f"/customers/{invoice.customer_id}/edit",
            f"Add a billing email to {invoice.customer_name}",
        )
    return f"/invoices/{invoice.pk}/", "Open the invoice"


@login_required
@require_POST
def send_selected(request: HttpRequest) -> HttpResponse:
    """Send each selected draft on its own with the same service as POST
    /api/invoices/send; one refusal does not stop the others. The outcome of each is
    kept for the next view of the list (post, redirect, get)."""
    user = _admin_or_404(request)
    wanted = list(dict.fromkeys(_ids(request.POST.getlist("invoice"))))
    visible = billing.access_invoices(user, wanted)
    results = {
        o.invoice_id: o
        for o in invoices_send(actor=user, invoices=[visible[i] for i in wanted if i in visible])
    }
    outcomes: list[dict[str, Any]] = []
    for invoice_id in wanted:
        invoice = visible.get(invoice_id)
        result = results.get(invoice_id)
        if result is None or result.error is not None:
            exc = billing.invoice_not_found(invoice_id) if result is None else result.error
            assert exc is not None
            label = f"{invoice.customer_name}: {invoice.description}" if invoice else ""
            fix = _fix_for(exc.code, invoice) if invoice else None
            outcomes.append(
                {
                    "ok": False,
                    "label": label or f"Invoice {invoice_id}",
                    "detail": exc.detail,
                    "fix_url": fix[0] if fix else "",
                    "fix_text": fix[1] if fix else "",
                }
            )
        else:
            sent = result.invoice
            assert sent is not None
            outcomes.append(
                {
                    "ok": True,
                    "label": f"{sent.customer_name}: {sent.description}",
                    "number": sent.number,
                    "url": f"/invoices/{sent.pk}/",
                    "amount": str(sent.total),
                }
            )
    sent_count = sum(1 for o in outcomes if o["ok"])
    refused = len(outcomes) - sent_count
    if not outcomes:
        messages.error(request, "Select at least one draft to send.")
    elif refused:
        messages.error(
            request,
            f"{_count(sent_count, 'invoice')} sent, {refused} not sent: see below what "
            "stopped each one and where to fix it.",
        )
    else:
        messages.success(
            request, f"{_count(sent_count, 'invoice')} sent: numbered and emailed to the customers."
        )
    request.session[SUMMARY_KEY] = outcomes
    return back(request, "/financials/")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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
        lambda: invoice_send(actor=user, invoice_id=invoice.pk, read=invoice),
        "Invoice sent: it is numbered and the customer has been emailed the payment link.",
    )
    return back(request, f"/projects/{invoice.project_id}/")


urlpatterns = [
    path("financials/", financials, name="financials"),
    path("financials/export.csv", export_csv, name="financials-export"),
    path(
        "financials/accounting-export",
        accounting_export,
        name="financials-accounting-export",
    ),
    path("financials/send-preview", send_preview, name="financials-send-preview"),
    path("financials/send", send_selected, name="financials-send"),
    path("invoices/<int:invoice_id>/send", send_invoice, name="invoice-send"),
]
