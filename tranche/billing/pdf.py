"""The invoice as a document: HTML and CSS rendered to PDF by WeasyPrint.

The same document for staff (drafts included, marked DRAFT and unnumbered) and for the
customer (only what was sent to them). It holds only what the customer may read: no
internal notes, no staff names, no provider ids."""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from importlib.metadata import version

from django.core.cache import caches
from django.http import HttpResponse
from django.template.loader import render_to_string

from tranche.accounts.business import business_profile, logo_open
from tranche.billing.models import CreditNote, Invoice, InvoiceStatus, InvoiceTaxLine
from tranche.core.errors import DomainError
from tranche.core.money import ZERO, Money
from tranche.projects.models import ChangeOrderStatus, Project

logger = logging.getLogger(__name__)

# Part of every cached document's key: another WeasyPrint may lay the same HTML out
# differently.
WEASYPRINT_VERSION = version("weasyprint")


@dataclass(frozen=True)
class ContractPosition:
    """Where this invoice stands in its project's contract."""

    milestone_line: str
    contract: Money
    invoiced_to_date: Money
    remaining: Money
    # "version 2: quote + CO-1" once a change order amended the contract, else "".
    versions: str = ""


def _versions(project: Project) -> str:
    if project.contract_version <= 1:
        return ""
    references = [
        f"CO-{n}"
        for n in project.change_orders.filter(status=ChangeOrderStatus.APPROVED)
        .order_by("contract_version")
        .values_list("number", flat=True)
    ]
    return f"version {project.contract_version}: quote + {', '.join(references)}"


def _position(invoice: Invoice) -> ContractPosition:
    project = invoice.project
    milestone_line = ""
    if invoice.milestone is not None:
        billable = list(
            project.milestones.filter(is_billable=True)
            .order_by("position", "id")
            .values_list("pk", flat=True)
        )
        milestone = invoice.milestone
        if milestone.pk in billable and project.contract_version > 1:
            # After a change order a share is stored, not a percentage of the contract.
            milestone_line = (
                f"Milestone {billable.index(milestone.pk) + 1} of {len(billable)} — "
                f"{milestone.title}"
            )
        elif milestone.pk in billable:
            share = f"{(milestone.billing_percentage or ZERO).normalize():f} %"
            milestone_line = (
                f"Milestone {billable.index(milestone.pk) + 1} of {len(billable)} — "
                f"{milestone.title} — {share} of the contract"
            )
        else:
            milestone_line = f"Milestone — {milestone.title}"
    # The invoices sent so far, this one included (a draft counts itself, as if sent).
    sent_before = project.invoices.filter(number__isnull=False, pk__lte=invoice.pk).exclude(
        status=InvoiceStatus.CANCELLED
    )
    # Counted as the contract is (its price basis), not in gross: tax is not contract.
    to_date = sum(sent_before.values_list("contract_amount", flat=True), ZERO)
    if invoice.status == InvoiceStatus.DRAFT:
        to_date += invoice.contract_amount
    invoiced = Money(to_date, invoice.currency)
    return ContractPosition(
        milestone_line,
        project.contract,
        invoiced,
        project.contract - invoiced,
        _versions(project),
    )


@dataclass(frozen=True)
class DocumentTax:
    """The invoice's tax as its document prints it."""

    lines: list[InvoiceTaxLine]
    contract_share: Money
    net: Money
    tax: Money
    # Any rate named or any tax charged: worth a breakdown (an invoice of an untaxed
    # contract reads as it did before tax existed).
    taxed: bool
    basis_label: str


def _tax(invoice: Invoice) -> DocumentTax:
    lines = list(invoice.tax_lines.all())
    taxed = invoice.tax_amount > 0 or any(line.name for line in lines)
    label = ""
    if taxed:
        label = ", including tax" if invoice.price_mode == "inclusive" else ", before tax"
    return DocumentTax(
        lines=lines,
        contract_share=Money(invoice.contract_amount, invoice.currency),
        net=Money(invoice.net_amount, invoice.currency),
        tax=Money(invoice.tax_amount, invoice.currency),
        taxed=taxed,
        basis_label=label,
    )


def tax_ids(invoice: Invoice) -> tuple[str, str]:
    """(seller's, buyer's) tax id: fixed when the invoice was sent; a draft shows what
    sending it now would print."""
    if invoice.status == InvoiceStatus.DRAFT:
        return business_profile().tax_id, invoice.customer.tax_id
    return invoice.seller_tax_id, invoice.buyer_tax_id


def _logo_data_uri(name: str) -> str:
    """The logo inlined as a data: URI, so the document needs no file or network access
    (WeasyPrint and a browser preview alike); "" when there is none or it is unreadable."""
    if not name:
        return ""
    try:
        with logo_open(name) as handle:
            content = handle.read()
    except Exception:
        # Whatever the storage raises (a missing file, a bucket that does not answer), an
        # invoice is still made: without its logo.
        logger.warning("The business logo %s cannot be read; the document goes without it", name)
        return ""
    mime = "image/png" if content.startswith(b"\x89PNG") else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def document_context() -> dict[str, object]:
    """What billing/document_base.html needs of every document: the business's details
    and its logo, embedded (the PDF renderer reads no URLs)."""
    business = business_profile()
    return {
        "business": business,
        "business_name": business.name,
        "logo_src": _logo_data_uri(business.logo_name),
    }


def invoice_html(invoice: Invoice) -> str:
    seller_tax_id, buyer_tax_id = tax_ids(invoice)
    return render_to_string(
        "billing/invoice_document.html",
        {
            **document_context(),
            "invoice": invoice,
            "customer": invoice.customer,
            "position": _position(invoice),
            "draft": invoice.status == InvoiceStatus.DRAFT,
            "cancelled": invoice.status == InvoiceStatus.CANCELLED,
            "tax": _tax(invoice),
            "seller_tax_id": seller_tax_id,
            "buyer_tax_id": buyer_tax_id,
        },
    )


class DocumentUnavailable(DomainError):
    status = 503
    code = "pdf_unavailable"


def invoice_body_html(invoice: Invoice) -> str:
    """The document's <body> alone, to show it inside a page exactly as the PDF says it:
    the document's own <style> stays out (the pages' CSP forbids inline styles; the page's
    stylesheet styles the same markup)."""
    document = invoice_html(invoice)
    start = document.find("<body")
    start = document.find(">", start) + 1 if start != -1 else 0
    end = document.rfind("</body>")
    return document[start : end if end != -1 else len(document)]


def html_to_pdf(html: str, *, variant: str | None = None) -> bytes:
    """Any of billing's HTML documents (an invoice, a receipt) as a PDF; `variant` asks
    WeasyPrint for a PDF standard ("pdf/a-3b" for e-invoices).

    Rendering takes WeasyPrint a tenth of a second or more, and a customer opens the same
    document again and again; the PDF of identical HTML is the same document, so it is kept
    under a digest of that HTML. Whatever changes what a document says (a payment, a
    cancellation, the business's address) changes its HTML, hence its key."""
    key = _document_key(html, variant)
    documents = caches["documents"]
    cached = documents.get(key)
    if isinstance(cached, bytes):
        return cached
    pdf = _render(html, variant)
    documents.set(key, pdf)
    return pdf


def _document_key(html: str, variant: str | None) -> str:
    digest = hashlib.sha256(html.encode()).hexdigest()
    return f"pdf:{WEASYPRINT_VERSION}:{variant or 'pdf'}:{digest}"


def _render(html: str, variant: str | None) -> bytes:
    # Imported here, not at the top: WeasyPrint loads the system's pango when imported,
    # and a machine without it must still serve everything but the PDF.
    try:
        from weasyprint import HTML  # type: ignore[import-untyped]
    except OSError as exc:
        raise DocumentUnavailable(
            "Invoice PDFs cannot be made on this server: WeasyPrint needs the system's pango "
            f"library ({exc}). Install libpango-1.0-0 and libpangoft2-1.0-0."
        ) from None
    pdf: bytes = HTML(string=html).write_pdf(pdf_variant=variant)
    return pdf


def invoice_pdf(invoice: Invoice) -> bytes:
    return html_to_pdf(invoice_html(invoice))


def pdf_bytes_response(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    # Numbers may hold slashes (INV/2026/00001); a file name may not.
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in filename)
    response["Content-Disposition"] = f'inline; filename="{safe}"'
    return response


def pdf_response(invoice: Invoice) -> HttpResponse:
    name = f"{invoice.number}.pdf" if invoice.number else f"draft-invoice-{invoice.pk}.pdf"
    return pdf_bytes_response(invoice_pdf(invoice), name)


def credit_note_html(note: CreditNote) -> str:
    invoice = note.invoice
    # What the notes up to this one took back (a later note does not change this one).
    credited = sum(
        invoice.credit_notes.filter(pk__lte=note.pk).values_list("amount", flat=True), ZERO
    )
    return render_to_string(
        "billing/credit_note_document.html",
        {
            **document_context(),
            "note": note,
            "invoice": invoice,
            "customer": note.customer,
            "lines": list(note.tax_lines.all()),
            "credited_to_date": Money(credited, note.currency),
        },
    )


def credit_note_pdf(note: CreditNote) -> bytes:
    return html_to_pdf(credit_note_html(note))


def credit_note_filename(note: CreditNote) -> str:
    return f"{note.number}.pdf"


def credit_note_pdf_response(note: CreditNote) -> HttpResponse:
    return pdf_bytes_response(credit_note_pdf(note), credit_note_filename(note))
