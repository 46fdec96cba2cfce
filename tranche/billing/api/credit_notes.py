"""Credit notes over HTTP: issuing one on a sent invoice (admins), and reading them (a
customer reads only her own)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status

from tranche.accounts.access import require_admin
from tranche.accounts.auth import actor
from tranche.billing import selectors
from tranche.billing.credit_note_schemas import (
    CreditNoteFilters,
    CreditNoteIn,
    CreditNoteOut,
    CreditNotePageOut,
    CustomerCreditNoteOut,
    CustomerCreditNotePageOut,
    RefundIn,
    RefundOut,
)
from tranche.billing.einvoice import credit_note_facturx_response
from tranche.billing.pdf import credit_note_pdf_response
from tranche.billing.schemas import InvoiceOut, PaymentOut
from tranche.billing.services.crediting import credit_note_issue, refund_record_manual

router = Router(tags=["credit notes"])


@router.post(
    "/invoices/{invoice_id}/credit-notes",
    response={201: CreditNoteOut},
    description="Issue a credit note of `amount` (gross) on a sent invoice: its amount due "
    "falls by that much, the customer is emailed the credit note. Admins only.",
)
def issue_credit_note(
    request: HttpRequest, invoice_id: int, payload: CreditNoteIn
) -> Status[CreditNoteOut]:
    user = actor(request)
    require_admin(user)
    invoice = selectors.access_invoice(user, invoice_id)
    note = credit_note_issue(
        actor=user, invoice_id=invoice.pk, amount=payload.amount, reason=payload.reason
    )
    return Status(201, CreditNoteOut.of(note))


@router.get(
    "/credit-notes",
    response=CreditNotePageOut | CustomerCreditNotePageOut,
    description="Newest first. Staff get `CreditNotePageOut`; a customer gets "
    "`CustomerCreditNotePageOut`, her own credit notes only.",
)
def list_credit_notes(
    request: HttpRequest, filters: Query[CreditNoteFilters]
) -> CreditNotePageOut | CustomerCreditNotePageOut:
    user = actor(request)
    page = selectors.credit_note_page(user=user, **filters.model_dump())
    if not user.is_staff_member:
        return CustomerCreditNotePageOut.of(page)
    return CreditNotePageOut.of(page)


@router.get(
    "/credit-notes/{credit_note_id}",
    response=CreditNoteOut | CustomerCreditNoteOut,
    description="Staff get `CreditNoteOut`; a customer gets `CustomerCreditNoteOut`.",
)
def get_credit_note(
    request: HttpRequest, credit_note_id: int
) -> CreditNoteOut | CustomerCreditNoteOut:
    user = actor(request)
    note = selectors.access_credit_note(user, credit_note_id)
    if not user.is_staff_member:
        return CustomerCreditNoteOut.of(note)
    return CreditNoteOut.of(note)


@router.get(
    "/credit-notes/{credit_note_id}/pdf",
    response={200: None},
    openapi_extra={
        "responses": {
            200: {
                "description": "The credit note as a PDF document",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def credit_note_document(request: HttpRequest, credit_note_id: int) -> HttpResponse:
    user = actor(request)
    return credit_note_pdf_response(selectors.access_credit_note(user, credit_note_id))


@router.get(
    "/credit-notes/{credit_note_id}/facturx.pdf",
    response={200: None},
    openapi_extra={
        "responses": {
            200: {
                "description": "The credit note as a Factur-X PDF/A-3 with its EN 16931 CII "
                "XML (TypeCode 381)",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
    description="The e-invoice (Factur-X / ZUGFeRD, EN 16931 profile) of a credit note, "
    "for staff and the credit note's customer (404 for anyone else).",
)
def credit_note_facturx(request: HttpRequest, credit_note_id: int) -> HttpResponse:
    user = actor(request)
    return credit_note_facturx_response(selectors.access_credit_note(user, credit_note_id))


@router.post(
    "/invoices/{invoice_id}/refunds",
    response={201: RefundOut},
    description="Record money given back by hand. With `credit_invoice` the customer also "
    "owes less: a credit note of the same amount is issued and the refund linked to it. "
    "Admins only.",
)
def record_refund(request: HttpRequest, invoice_id: int, payload: RefundIn) -> Status[RefundOut]:
    user = actor(request)
    require_admin(user)
    invoice = selectors.access_invoice(user, invoice_id)
    refund = refund_record_manual(actor=user, invoice_id=invoice.pk, **payload.model_dump())
    refund.invoice.refresh_from_db()
    return Status(
        201,
        RefundOut(
            payment=PaymentOut.of(refund),
            invoice=InvoiceOut.of(refund.invoice),
            credit_note=CreditNoteOut.of(refund.credit_note) if refund.credit_note else None,
        ),
    )
