"""Credit notes in the portal: the list (staff: all of them; a customer: her own) and
each credit note's PDF. Issuing one is an action of the invoice page (views/invoices.py)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from tranche.billing import selectors as billing
from tranche.billing.einvoice import credit_note_facturx_response
from tranche.billing.models import CreditNote
from tranche.billing.pdf import credit_note_pdf_response
from tranche.core.errors import DomainError
from tranche.web.views.common import page_of, user_of


@login_required
@require_GET
def credit_note_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    notes = billing.credit_note_queryset(user=user).select_related("invoice__project")
    page = page_of(request, notes.order_by("-id"))
    return render(request, "web/credit_notes/list.html", {"page": page})


def _found(request: HttpRequest, credit_note_id: int) -> CreditNote:
    try:
        return billing.access_credit_note(user_of(request), credit_note_id)
    except DomainError:
        raise Http404("No such credit note.") from None


@login_required
@require_GET
def credit_note_document(request: HttpRequest, credit_note_id: int) -> HttpResponse:
    return credit_note_pdf_response(_found(request, credit_note_id))


@login_required
@require_GET
def credit_note_einvoice(request: HttpRequest, credit_note_id: int) -> HttpResponse:
    return credit_note_facturx_response(_found(request, credit_note_id))


urlpatterns = [
    path("credit-notes/", credit_note_list, name="credit-notes"),
    path(
        "credit-notes/<int:credit_note_id>/credit-note.pdf",
        credit_note_document,
        name="credit-note-pdf",
    ),
    path(
        "credit-notes/<int:credit_note_id>/factur-x.pdf",
        credit_note_einvoice,
        name="credit-note-facturx",
    ),
]
