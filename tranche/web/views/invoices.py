"""One invoice's page: the document as the customer sees it, and, for staff, its timeline
and every action on it (edit while draft, send, cancel, record a payment, email it again,
remind now); its payments with their receipts, for staff and the customer alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_POST

from tranche.accounts.access import require_admin, require_staff
from tranche.accounts.models import User
from tranche.billing import selectors as billing
from tranche.billing.einvoice import facturx_response
from tranche.billing.models import (
    OPEN_STATUSES,
    SENT_STATUSES,
    EventKind,
    Invoice,
    InvoiceEvent,
    InvoiceStatus,
    Payment,
    PaymentMethod,
)
from tranche.billing.pdf import invoice_body_html, pdf_bytes_response, pdf_response
from tranche.billing.receipts import receipt_filename, receipt_payment, receipt_pdf
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.crediting import credit_note_issue, refund_record_manual
from tranche.billing.services.drafts import invoice_update_draft
from tranche.billing.services.payments import Recorded, payment_record_manual
from tranche.billing.services.reminders import invoice_remind_now
from tranche.billing.services.sending import invoice_resend, invoice_send, invoice_send_preview
from tranche.core.errors import DomainError
from tranche.core.money import Money, format_amount, quantum
from tranche.core.tax import PriceMode
from tranche.web.templatetags.formatting import day_text
from tranche.web.views.common import user_of
from tranche.web.views.event_text import changes_text, method_text, money_text, status_text

# The methods an admin records by hand on this page, in the order people use them, named
# as every list and receipt names them.
PAGE_METHODS = [
    (m.value, m.label)
    for m in (PaymentMethod.BANK_TRANSFER, PaymentMethod.CHECK, PaymentMethod.CASH)
]

# Which field of a form a service's refusal is about, by its stable code.
DRAFT_ERROR_FIELDS = {
    "amount_not_positive": "amount",
    "amount_precision": "amount",
    "amount_exceeds_unbilled": "amount",
    "description_required": "description",
    "due_date_invalid": "due_date",
}
PAYMENT_ERROR_FIELDS = {
    "amount_not_positive": "amount",
    "amount_precision": "amount",
    "amount_exceeds_due": "amount",
    "payment_method_invalid": "method",
    "received_on_future": "received_on",
    "payment_reference_taken": "reference",
}


class _Form(forms.Form):
    def __init__(self, *args: Any, currency: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        if currency and "amount" in self.fields:
            # The browser's stepper and validation follow the currency ($0.01, ¥1).
            self.fields["amount"].widget.attrs["step"] = str(quantum(currency))


class DraftForm(_Form):
    amount = forms.DecimalField(label="Amount", max_digits=15, decimal_places=3)
    description = forms.CharField(label="Description", max_length=500)
    due_date = forms.DateField(
        label="Due date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Leave it empty to use the customer's payment terms from the day it is sent.",
    )


class PaymentForm(_Form):
    amount = forms.DecimalField(label="Amount received", max_digits=15, decimal_places=3)
    method = forms.ChoiceField(label="Method", choices=PAGE_METHODS)
    reference = forms.CharField(
        label="Reference",
        max_length=200,
        required=False,
        help_text="The bank reference or check number, if there is one.",
    )
    received_on = forms.DateField(
        label="Date received", widget=forms.DateInput(attrs={"type": "date"})
    )


class CreditNoteForm(_Form):
    amount = forms.DecimalField(
        label="Amount to credit",
        max_digits=15,
        decimal_places=3,
        help_text="Tax included; it is split over the invoice's tax rates in proportion.",
    )
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Printed on the credit note the customer receives.",
    )


CREDIT_ERROR_FIELDS = {
    "amount_not_positive": "amount",
    "amount_precision": "amount",
    "amount_exceeds_creditable": "amount",
    "reason_required": "reason",
    "reason_too_long": "reason",
}


class RefundForm(_Form):
    amount = forms.DecimalField(label="Amount given back", max_digits=15, decimal_places=3)
    method = forms.ChoiceField(label="Method", choices=PAGE_METHODS)
    paid_on = forms.DateField(
        label="Date paid back", widget=forms.DateInput(attrs={"type": "date"})
    )
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept in the invoice's history; printed on the credit note if one is issued.",
    )
    credit_invoice = forms.BooleanField(
        label="The customer also owes this much less",
        required=False,
        help_text="Issues a credit note for the same amount and links the refund to it. "
        "Leave it off to pay back an overpayment: the amount is then due again if the "
        "invoice was paid exactly.",
    )


REFUND_ERROR_FIELDS = {
    "amount_not_positive": "amount",
    "amount_precision": "amount",
    "refund_exceeds_payment": "amount",
    "amount_exceeds_creditable": "amount",
    "payment_method_invalid": "method",
    "received_on_future": "paid_on",
    "reason_required": "reason",
    "reason_too_long": "reason",
}


class CancelForm(_Form):
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept in the invoice's history.",
    )


def _found(user: User, invoice_id: int) -> Invoice:
    try:
        return billing.access_invoice(user, invoice_id)
    except DomainError:
        raise Http404("No such invoice.") from None


def _admin_invoice(request: HttpRequest, invoice_id: int) -> tuple[User, Invoice]:
    """An admin's invoice; anyone else gets the same 404 as for a missing one."""
    user = user_of(request)
    try:
        require_admin(user)
    except DomainError:
        raise Http404("No such invoice.") from None
    return user, _found(user, invoice_id)


# --- the timeline: each event as a sentence a person reads ------------------------------


@dataclass(frozen=True)
class Moment:
    event: InvoiceEvent
    sentence: str
    who: str


def _sentence(invoice: Invoice, event: InvoiceEvent) -> str:
    d: dict[str, Any] = event.details or {}
    currency = invoice.currency
    kind = event.kind
    if kind == EventKind.CREATED:
        return f"Draft created for {money_text(d.get('amount', invoice.amount), currency)}."
    if kind == EventKind.EDITED:
        return f"Draft edited: {changes_text(d, currency)}."
    if kind == EventKind.SENT:
        return f"Sent to the customer as {d.get('number', invoice.number)}."
    if kind == EventKind.SEND_FAILED:
        return f"Sending failed: {d.get('error', 'the payment provider did not answer')}."
    if kind == EventKind.CANCELLED:
        return f"Cancelled. Reason: {d.get('reason', '—')}"
    if kind in (EventKind.PAYMENT_RECORDED, EventKind.PAYMENT_ON_CANCELLED_INVOICE):
        after = " after it was cancelled" if kind != EventKind.PAYMENT_RECORDED else ""
        return (
            f"Payment of {money_text(d.get('amount'), currency)} received by "
            f"{method_text(d.get('method', ''))}{after}."
        )
    if kind == EventKind.STATUS_CHANGED:
        return f"Status changed from {status_text(d.get('old'))} to {status_text(d.get('new'))}."
    if kind == EventKind.CREDIT_OWED:
        owed = money_text(d.get("amount"), currency)
        return f"The customer paid too much: {owed} is owed back."
    if kind == EventKind.EMAIL_RESENT:
        return f"Invoice email sent again to {d.get('to', invoice.customer_email)}."
    if kind == EventKind.REMINDER_SENT:
        return f"Reminder sent to {d.get('to', invoice.customer_email)}."
    if kind == EventKind.CREDITED:
        return (
            f"Credit note {d.get('number', '')} issued for "
            f"{money_text(d.get('amount'), currency)}. Reason: {d.get('reason', '—')}"
        )
    if kind == EventKind.REFUND_RECORDED:
        note = f", credited by {d['credit_note']}" if d.get("credit_note") else ""
        return f"Refund of {money_text(d.get('amount'), currency)} recorded{note}."
    return f"{event.get_kind_display()}."


def _timeline(invoice: Invoice, user: User) -> list[Moment]:
    return [
        Moment(e, _sentence(invoice, e), e.actor.email if e.actor else "Tranche")
        for e in billing.invoice_events(invoice, user=user)
    ]


# --- the page ---------------------------------------------------------------------------


def _page(
    request: HttpRequest,
    invoice: Invoice,
    *,
    draft_form: DraftForm | None = None,
    payment_form: PaymentForm | None = None,
    cancel_form: CancelForm | None = None,
    credit_form: CreditNoteForm | None = None,
    refund_form: RefundForm | None = None,
    open_dialog: str = "",
    status: int = 200,
) -> HttpResponse:
    user = user_of(request)
    staff = user.is_staff_member
    admin = user.is_admin
    draft = invoice.status == InvoiceStatus.DRAFT
    open_ = invoice.status in OPEN_STATUSES and invoice.amount_due > 0
    context: dict[str, Any] = {
        "invoice": invoice,
        "document": mark_safe(invoice_body_html(invoice)),  # noqa: S308 - our own template
        "payments": list(invoice.payments.select_related("credit_note")),
        "staff": staff,
        "admin": admin,
        "draft": draft,
        "open": open_,
        "open_dialog": open_dialog,
        "pdf_url": f"/invoices/{invoice.pk}/invoice.pdf",
        # Only an invoice that was sent (it has a number) has an e-invoice.
        "einvoice_url": f"/invoices/{invoice.pk}/factur-x.pdf" if invoice.number else "",
        "credit_notes": billing.invoice_credit_notes(invoice),
    }
    if staff:
        context["timeline"] = _timeline(invoice, user)
    if admin and draft:
        context["draft_form"] = form = draft_form or DraftForm(
            currency=invoice.currency,
            initial={
                # The contract share billed (its price basis); tax follows from it.
                "amount": format_amount(invoice.contract_amount, invoice.currency),
                "description": invoice.description,
                # Only a date someone chose: an unchosen one is set from the terms on sending.
                "due_date": invoice.due_date if invoice.due_date_fixed else None,
            },
        )
        amount = form.fields["amount"]
        if invoice.price_mode == PriceMode.INCLUSIVE:
            amount.label = "Amount billed, including tax"
        else:
            amount.label = "Amount billed, before tax"
        amount.help_text = (
            f"Its share of the contract. Tax is worked out per rate from it: now "
            f"{Money(invoice.tax_amount, invoice.currency)}, so the customer pays {invoice.total}."
        )
        preview = invoice_send_preview(invoice=invoice)
        context["preview"] = preview
        context["can_send"] = bool(preview.email.to)
    if admin and invoice.status in SENT_STATUSES and invoice.status != InvoiceStatus.PAID:
        context["payment_form"] = payment_form or PaymentForm(
            currency=invoice.currency,
            initial={
                "amount": format_amount(invoice.amount_due, invoice.currency),
                "method": PaymentMethod.BANK_TRANSFER.value,
                "received_on": timezone.localdate(),
            },
        )
    if admin and invoice.status in SENT_STATUSES and invoice.creditable.amount > 0:
        context["credit_form"] = credit_form or CreditNoteForm(
            prefix="credit",
            currency=invoice.currency,
            initial={"amount": format_amount(invoice.amount_due, invoice.currency)},
        )
    if admin and invoice.number and invoice.amount_paid > 0:
        context["refund_form"] = refund_form or RefundForm(
            prefix="refund",
            currency=invoice.currency,
            initial={
                "amount": format_amount(invoice.amount_paid, invoice.currency),
                "method": PaymentMethod.BANK_TRANSFER.value,
                "paid_on": timezone.localdate(),
            },
        )
    if admin and invoice.status in (
        InvoiceStatus.DRAFT,
        InvoiceStatus.PENDING,
        InvoiceStatus.OVERDUE,
        InvoiceStatus.PARTIALLY_PAID,
    ):
        context["can_cancel"] = invoice.amount_paid == 0
        context["cancel_form"] = cancel_form or CancelForm()
    return render(request, "web/invoices/invoice.html", context, status=status)


@login_required
@require_GET
def invoice_page(request: HttpRequest, invoice_id: int) -> HttpResponse:
    return _page(request, _found(user_of(request), invoice_id))


@login_required
@require_GET
def invoice_document(request: HttpRequest, invoice_id: int) -> HttpResponse:
    return pdf_response(_found(user_of(request), invoice_id))


@login_required
@require_GET
def einvoice_document(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = _found(user_of(request), invoice_id)
    if not invoice.number:
        raise Http404("A draft has no e-invoice yet.")
    return facturx_response(invoice)


@login_required
@require_GET
def receipt(request: HttpRequest, invoice_id: int, payment_id: int) -> HttpResponse:
    invoice = _found(user_of(request), invoice_id)
    try:
        payment = receipt_payment(invoice, payment_id)
    except DomainError:
        raise Http404("No such payment.") from None
    return pdf_bytes_response(receipt_pdf(payment), receipt_filename(payment))


@login_required
@require_GET
def email_preview(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """The HTML part of the email a send would queue, exactly as the customer's mail
    program gets it. Emails carry their styles inline (mail programs drop stylesheets), so
    this one answer allows inline styles, and nothing else."""
    user = user_of(request)
    try:
        require_staff(user)
    except DomainError:
        raise Http404("No such invoice.") from None
    invoice = _found(user, invoice_id)
    if invoice.status != InvoiceStatus.DRAFT:
        raise Http404("Only a draft has an email to preview.")
    response = HttpResponse(invoice_send_preview(invoice=invoice).email.html)
    response["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return response


# --- actions ----------------------------------------------------------------------------


def _run(
    request: HttpRequest,
    invoice: Invoice,
    action: Callable[[], Any],
    success: str | Callable[[Any], str],
    *,
    form: forms.Form | None = None,
    fields: dict[str, str] | None = None,
    rerender: Callable[[forms.Form], HttpResponse] | None = None,
) -> HttpResponse:
    """Run one service; a refusal is announced with the service's own sentence (beside
    its field too, when it is about one) and nothing changed."""
    try:
        done = action()
    except DomainError as exc:
        messages.error(request, exc.detail)
        field = (fields or {}).get(exc.code or "")
        if form is not None and rerender is not None:
            if field:
                form.add_error(field, exc.detail)
            return rerender(form)
        return redirect("invoice", invoice_id=invoice.pk)
    # A callable success reads what the service returned (the address it emailed, say).
    messages.success(request, success if isinstance(success, str) else success(done))
    return redirect("invoice", invoice_id=invoice.pk)


@login_required
@require_POST
def edit_draft(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user, invoice = _admin_invoice(request, invoice_id)
    form = DraftForm(request.POST, currency=invoice.currency)

    def again(bound: forms.Form) -> HttpResponse:
        assert isinstance(bound, DraftForm)
        return _page(request, _found(user, invoice.pk), draft_form=bound, status=422)

    if not form.is_valid():
        messages.error(request, "The draft was not saved: correct the fields marked below.")
        return again(form)
    data = form.cleaned_data
    return _run(
        request,
        invoice,
        lambda: invoice_update_draft(
            actor=user,
            invoice_id=invoice.pk,
            amount=data["amount"],
            description=data["description"],
            due_date=data["due_date"] or None,
        ),
        "Draft saved.",
        form=form,
        fields=DRAFT_ERROR_FIELDS,
        rerender=again,
    )


@login_required
@require_POST
def send(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user, invoice = _admin_invoice(request, invoice_id)

    def go() -> None:
        sent = invoice_send(actor=user, invoice_id=invoice.pk, read=invoice)
        messages.success(
            request,
            f"Invoice {sent.number} sent to {sent.customer_email} for {sent.total}, "
            f"due {day_text(sent.due_date)}.",
        )

    try:
        go()
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect("invoice", invoice_id=invoice.pk)


def _dialog(
    request: HttpRequest,
    user: User,
    invoice: Invoice,
    form: forms.Form,
    *,
    dialog: str,
    invalid: str,
    action: Callable[[dict[str, Any]], Any],
    success: str | Callable[[Any], str],
    fields: dict[str, str],
) -> HttpResponse:
    """A dialog's form posted: input the form or the service refuses comes back in the
    dialog, open, beside its field (422), and nothing changed; done, the page says so."""

    def again(bound: forms.Form) -> HttpResponse:
        fresh = _found(user, invoice.pk)
        bound_form: dict[str, Any] = {f"{dialog}_form": bound}
        return _page(request, fresh, open_dialog=dialog, status=422, **bound_form)

    if not form.is_valid():
        messages.error(request, invalid)
        return again(form)
    data = form.cleaned_data
    return _run(
        request, invoice, lambda: action(data), success, form=form, fields=fields, rerender=again
    )


@login_required
@require_POST
def cancel(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user, invoice = _admin_invoice(request, invoice_id)
    return _dialog(
        request,
        user,
        invoice,
        CancelForm(request.POST),
        dialog="cancel",
        invalid="Say why the invoice is cancelled.",
        action=lambda data: invoice_cancel(
            actor=user, invoice_id=invoice.pk, reason=data["reason"]
        ),
        success=(
            f"Invoice {invoice.number} cancelled." if invoice.number else "Draft invoice cancelled."
        ),
        fields={"reason_required": "reason"},
    )


@login_required
@require_POST
def record_payment(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user, invoice = _admin_invoice(request, invoice_id)

    def said(recorded: Recorded) -> str:
        # A payment recorded by hand is always inserted (only a provider's can repeat).
        assert recorded.payment is not None
        left = recorded.invoice.due
        return f"Payment of {recorded.payment.money} recorded on {invoice.number}. " + (
            "It is paid in full." if not left.amount else f"{left} is still due."
        )

    return _dialog(
        request,
        user,
        invoice,
        PaymentForm(request.POST, currency=invoice.currency),
        dialog="payment",
        invalid="The payment was not recorded: correct the fields marked below.",
        action=lambda data: payment_record_manual(
            actor=user,
            invoice_id=invoice.pk,
            amount=data["amount"],
            method=data["method"],
            reference=data["reference"],
            received_on=data["received_on"],
        ),
        success=said,
        fields=PAYMENT_ERROR_FIELDS,
    )


@login_required
@require_POST
def issue_credit_note(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user, invoice = _admin_invoice(request, invoice_id)
    return _dialog(
        request,
        user,
        invoice,
        # Prefixed: the payment, refund and cancel dialogs on the same page have their own
        # amount and reason fields.
        CreditNoteForm(request.POST, prefix="credit", currency=invoice.currency),
        dialog="credit",
        invalid="No credit note was issued: correct the fields marked below.",
        action=lambda data: credit_note_issue(
            actor=user, invoice_id=invoice.pk, amount=data["amount"], reason=data["reason"]
        ),
        success=lambda note: (
            f"Credit note {note.number} for {note.total} issued on {invoice.number}"
            + (f" and emailed to {note.customer_email}." if note.emailed_at else ".")
        ),
        fields=CREDIT_ERROR_FIELDS,
    )


@login_required
@require_POST
def record_refund(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user, invoice = _admin_invoice(request, invoice_id)

    def said(refund: Payment) -> str:
        given = f"Refund of {Money(-refund.amount, invoice.currency)} recorded on {invoice.number}"
        if refund.credit_note is not None:
            return f"{given}, with credit note {refund.credit_note.number}."
        return f"{given}."

    return _dialog(
        request,
        user,
        invoice,
        RefundForm(request.POST, prefix="refund", currency=invoice.currency),
        dialog="refund",
        invalid="No refund was recorded: correct the fields marked below.",
        action=lambda data: refund_record_manual(
            actor=user,
            invoice_id=invoice.pk,
            amount=data["amount"],
            method=data["method"],
            paid_on=data["paid_on"],
            reason=data["reason"],
            credit_invoice=data["credit_invoice"],
        ),
        success=said,
        fields=REFUND_ERROR_FIELDS,
    )


@login_required
@require_POST
def resend(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user, invoice = _admin_invoice(request, invoice_id)
    return _run(
        request,
        invoice,
        lambda: invoice_resend(actor=user, invoice_id=invoice.pk),
        lambda sent: f"Invoice {sent.number} emailed again to {sent.customer_email}.",
    )


@login_required
@require_POST
def remind(request: HttpRequest, invoice_id: int) -> HttpResponse:
    user, invoice = _admin_invoice(request, invoice_id)
    return _run(
        request,
        invoice,
        lambda: invoice_remind_now(actor=user, invoice_id=invoice.pk),
        lambda sent: f"Reminder of {sent.number} sent to {sent.customer_email}.",
    )


urlpatterns = [
    path("invoices/<int:invoice_id>/", invoice_page, name="invoice"),
    path("invoices/<int:invoice_id>/invoice.pdf", invoice_document, name="invoice-pdf"),
    path("invoices/<int:invoice_id>/factur-x.pdf", einvoice_document, name="invoice-facturx"),
    path(
        "invoices/<int:invoice_id>/payments/<int:payment_id>/receipt.pdf",
        receipt,
        name="invoice-receipt",
    ),
    path("invoices/<int:invoice_id>/email-preview", email_preview, name="invoice-email-preview"),
    path("invoices/<int:invoice_id>/edit", edit_draft, name="invoice-edit"),
    path("invoices/<int:invoice_id>/send-now", send, name="invoice-send-now"),
    path("invoices/<int:invoice_id>/cancel", cancel, name="invoice-cancel"),
    path("invoices/<int:invoice_id>/payments", record_payment, name="invoice-payment"),
    path("invoices/<int:invoice_id>/credit-notes", issue_credit_note, name="invoice-credit"),
    path("invoices/<int:invoice_id>/refunds", record_refund, name="invoice-refund"),
    path("invoices/<int:invoice_id>/resend", resend, name="invoice-resend"),
    path("invoices/<int:invoice_id>/remind", remind, name="invoice-remind"),
]
