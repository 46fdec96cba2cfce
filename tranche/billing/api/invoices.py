"""Invoices over HTTP: the financials reads, draft edits, sending, cancelling, payments
recorded by hand, and Stripe's webhook."""

from __future__ import annotations

from typing import Any

from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status

from tranche.accounts.access import require_admin
from tranche.accounts.auth import actor
from tranche.accounts.models import User
from tranche.billing import selectors
from tranche.billing.einvoice import facturx_response
from tranche.billing.models import Invoice
from tranche.billing.pdf import pdf_response
from tranche.billing.schemas import (
    BulkSendIn,
    BulkSendOut,
    BulkSendResult,
    CancelIn,
    CustomerInvoiceDetailOut,
    CustomerInvoiceEventOut,
    CustomerInvoiceOut,
    CustomerInvoicePageOut,
    CustomerPaymentOut,
    CustomerProjectInvoicesOut,
    CustomerProjectSummaryOut,
    InvoiceDetailOut,
    InvoiceEventOut,
    InvoiceFilters,
    InvoiceOut,
    InvoicePageOut,
    InvoicePatch,
    InvoiceSentOut,
    PaymentIn,
    PaymentOut,
    PaymentRecordedOut,
    ProjectInvoicesOut,
    ProjectSummaryOut,
    WebhookOut,
)
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.drafts import invoice_update_draft
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send, invoices_send
from tranche.billing.webhooks import webhook_receive
from tranche.core.errors import Invalid
from tranche.projects.selectors import access_project

router = Router(tags=["invoices"])


# Reads a customer can reach answer in one of two shapes, chosen by the caller's role:
# the staff shape, or the customer's allow-listed one (DESIGN.md rule 15). Endpoints only
# staff can reach keep the staff shape alone.


def _detail(invoice: Invoice, *, user: User) -> InvoiceDetailOut:
    return InvoiceDetailOut(
        **InvoiceOut.of(invoice).model_dump(),
        payments=[PaymentOut.of(p) for p in invoice.payments.all()],
        events=[InvoiceEventOut.of(e) for e in selectors.invoice_events(invoice, user=user)],
    )


def _customer_detail(invoice: Invoice, *, user: User) -> CustomerInvoiceDetailOut:
    return CustomerInvoiceDetailOut(
        **CustomerInvoiceOut.of(invoice).model_dump(),
        payments=[CustomerPaymentOut.of(p) for p in invoice.payments.all()],
        events=[
            CustomerInvoiceEventOut.of(e) for e in selectors.invoice_events(invoice, user=user)
        ],
    )


@router.get(
    "/projects/{project_id}/invoices",
    response=ProjectInvoicesOut | CustomerProjectInvoicesOut,
    description="Staff get `ProjectInvoicesOut`; a customer gets `CustomerProjectInvoicesOut`.",
)
def project_invoices(
    request: HttpRequest, project_id: int
) -> ProjectInvoicesOut | CustomerProjectInvoicesOut:
    user = actor(request)
    project = access_project(user, project_id)
    items, summary = selectors.project_invoices(user=user, project=project)
    prefetch_related_objects(items, "tax_lines")  # one query, however many invoices
    if not user.is_staff_member:
        return CustomerProjectInvoicesOut(
            items=[CustomerInvoiceOut.of(i) for i in items],
            summary=CustomerProjectSummaryOut.of(summary),
        )
    return ProjectInvoicesOut(
        items=[InvoiceOut.of(i) for i in items], summary=ProjectSummaryOut.of(summary)
    )


@router.get(
    "/projects/{project_id}/invoices/{invoice_id}",
    response=InvoiceDetailOut | CustomerInvoiceDetailOut,
    description="Staff get `InvoiceDetailOut`; a customer gets `CustomerInvoiceDetailOut`.",
)
def get_invoice(
    request: HttpRequest, project_id: int, invoice_id: int
) -> InvoiceDetailOut | CustomerInvoiceDetailOut:
    user = actor(request)
    invoice = selectors.access_invoice(user, invoice_id, project=access_project(user, project_id))
    if not user.is_staff_member:
        return _customer_detail(invoice, user=user)
    return _detail(invoice, user=user)


PDF_RESPONSE = {
    "responses": {
        200: {
            "description": "The invoice as a PDF document",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


@router.get(
    "/projects/{project_id}/invoices/{invoice_id}/pdf",
    response={200: None},
    openapi_extra=PDF_RESPONSE,
    description="The invoice document: a draft is marked DRAFT and has no number; a "
    "customer gets only invoices that were sent to them.",
)
def invoice_document(request: HttpRequest, project_id: int, invoice_id: int) -> HttpResponse:
    user = actor(request)
    invoice = selectors.access_invoice(user, invoice_id, project=access_project(user, project_id))
    return pdf_response(invoice)


FACTURX_RESPONSE = {
    "responses": {
        200: {
            "description": "The invoice as a Factur-X PDF/A-3 with its EN 16931 CII XML",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


@router.get(
    "/invoices/{invoice_id}/facturx.pdf",
    response={200: None},
    openapi_extra=FACTURX_RESPONSE,
    description="The e-invoice (Factur-X / ZUGFeRD, EN 16931 profile) of a sent invoice, "
    "for staff and the invoice's customer; a draft has none yet (409).",
)
def invoice_facturx(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user = actor(request)
    return facturx_response(selectors.access_invoice(user, invoice_id))


@router.patch("/projects/{project_id}/invoices/{invoice_id}", response=InvoiceDetailOut)
def edit_invoice(
    request: HttpRequest, project_id: int, invoice_id: int, payload: InvoicePatch
) -> InvoiceDetailOut:
    user = actor(request)
    require_admin(user)
    invoice = selectors.access_invoice(user, invoice_id, project=access_project(user, project_id))
    changes: dict[str, Any] = payload.model_dump(exclude_unset=True)
    if any(value is None for value in changes.values()):
        raise Invalid("Fields may be left out, but not set to null.", code="null_not_allowed")
    return _detail(invoice_update_draft(actor=user, invoice_id=invoice.pk, **changes), user=user)


@router.post("/projects/{project_id}/invoices/{invoice_id}/send", response=InvoiceSentOut)
def send_invoice(request: HttpRequest, project_id: int, invoice_id: int) -> InvoiceSentOut:
    user = actor(request)
    require_admin(user)
    invoice = selectors.access_project_invoice(user, project_id, invoice_id)
    sent = invoice_send(actor=user, invoice_id=invoice.pk, read=invoice)
    return InvoiceSentOut(message="Invoice sent successfully.", invoice=InvoiceOut.of(sent))


@router.post("/projects/{project_id}/invoices/{invoice_id}/cancel", response=InvoiceDetailOut)
def cancel_invoice(
    request: HttpRequest, project_id: int, invoice_id: int, payload: CancelIn
) -> InvoiceDetailOut:
    user = actor(request)
    require_admin(user)
    invoice = selectors.access_invoice(user, invoice_id, project=access_project(user, project_id))
    return _detail(
        invoice_cancel(actor=user, invoice_id=invoice.pk, reason=payload.reason),
        user=user,
    )


@router.post(
    "/projects/{project_id}/invoices/{invoice_id}/payments", response={201: PaymentRecordedOut}
)
def record_payment(
    request: HttpRequest, project_id: int, invoice_id: int, payload: PaymentIn
) -> Status[PaymentRecordedOut]:
    user = actor(request)
    require_admin(user)
    invoice = selectors.access_invoice(user, invoice_id, project=access_project(user, project_id))
    recorded = payment_record_manual(actor=user, invoice_id=invoice.pk, **payload.model_dump())
    assert recorded.payment is not None
    return Status(
        201,
        PaymentRecordedOut(
            payment=PaymentOut.of(recorded.payment), invoice=InvoiceOut.of(recorded.invoice)
        ),
    )


@router.post("/webhooks/stripe", auth=None, response=WebhookOut, tags=["webhooks"])
def stripe_webhook(request: HttpRequest) -> WebhookOut:
    """Stripe calls this; the signature is the credential."""
    outcome = webhook_receive(
        payload=request.body, signature=request.headers.get("Stripe-Signature", "")
    )
    return WebhookOut(received=True, outcome=outcome)


@router.get(
    "/invoices",
    response=InvoicePageOut | CustomerInvoicePageOut,
    description="Staff get `InvoicePageOut`; a customer gets `CustomerInvoicePageOut`.",
)
def list_invoices(
    request: HttpRequest, filters: Query[InvoiceFilters]
) -> InvoicePageOut | CustomerInvoicePageOut:
    user = actor(request)
    page = selectors.invoice_page(user=user, **filters.model_dump())
    prefetch_related_objects(page.items, "tax_lines")  # one query, however many invoices
    if not user.is_staff_member:
        return CustomerInvoicePageOut.of(page)
    return InvoicePageOut.of(page)


@router.post("/invoices/send", response=BulkSendOut)
def send_invoices(request: HttpRequest, payload: BulkSendIn) -> BulkSendOut:
    """Send several drafts (up to 1,000 in one request); each succeeds or fails on its
    own, and the results say which were sent and why the others were not."""
    user = actor(request)
    require_admin(user)
    wanted = list(dict.fromkeys(payload.invoice_ids))
    visible = selectors.access_invoices(user, wanted)
    outcomes = {
        o.invoice_id: o
        for o in invoices_send(actor=user, invoices=[visible[i] for i in wanted if i in visible])
    }
    results = []
    for invoice_id in wanted:
        outcome = outcomes.get(invoice_id)
        error = selectors.invoice_not_found(invoice_id) if outcome is None else outcome.error
        if error is not None:
            results.append(
                BulkSendResult(
                    invoice_id=invoice_id, ok=False, detail=error.detail, code=error.code
                )
            )
        else:
            assert outcome is not None
            assert outcome.invoice is not None
            results.append(
                BulkSendResult(
                    invoice_id=invoice_id, ok=True, invoice=InvoiceOut.of(outcome.invoice)
                )
            )
    return BulkSendOut(results=results)
