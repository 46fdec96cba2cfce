"""Factur-X / ZUGFeRD e-invoices: the invoice PDF as PDF/A-3 with its EN 16931 data
embedded as Cross Industry Invoice (CII) XML, so the buyer's software reads the figures
instead of a person retyping them.

Two steps, kept apart so that every kind of document shares the second:

1. an adapter reads one of our documents into an `EDocument` (`invoice_edocument` for
   invoices, TypeCode 380; `credit_note_edocument` for credit notes, TypeCode 381, which
   also names the invoice it corrects in `preceding_invoice`);
2. `cii_xml` writes the XML of any `EDocument`, and `facturx_from_pdf` embeds it into a
   PDF/A-3 with the `factur-x` library, which checks it against the EN 16931 XSD.

Where the data is thinner than the standard wants:

- Addresses are free text. `postal_address` keeps up to three street lines, reads a last
  line such as "75001 Paris" or "Springfield, IL 62704" as postcode and city, drops a
  last line that only names the country and a first line that repeats the party's name,
  and otherwise takes the last of several lines as the city. Postcode and city may stay
  empty.
- A country code is required for both parties. The seller's is Business.country, else the
  prefix of its VAT id ("DE123…", "EL" read as GR), else FALLBACK_COUNTRY; the buyer's is
  Customer.country, else its VAT id's prefix, else the seller's country (a sale is most
  often domestic).
- Amounts are written at the currency's precision (JPY 0, KWD 3 decimals): EN 16931 caps
  amounts at 2 decimals (BR-DEC), so a three-decimal currency passes the schema but not
  that business rule; rounding there would break the sums the invoice states.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import cache, partial

from babel import Locale
from django.http import HttpResponse

from tranche.accounts.business import BusinessProfile, business_profile
from tranche.accounts.models import TaxTreatment
from tranche.billing.models import CreditNote, Invoice
from tranche.billing.pdf import (
    credit_note_html,
    html_to_pdf,
    invoice_html,
    pdf_bytes_response,
)
from tranche.core.errors import Conflict
from tranche.core.money import ZERO, format_amount

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NAMESPACES = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
EN16931 = "urn:cen.eu:en16931:2017"

TYPE_INVOICE = "380"  # UNTDID 1001: commercial invoice
TYPE_CREDIT_NOTE = "381"  # UNTDID 1001: credit note

# The seller's country when the settings name none and its tax id says none either.
# Factur-X is the French (and, as ZUGFeRD, German) standard; set Business.country.
FALLBACK_COUNTRY = "FR"

for _prefix, _uri in NAMESPACES.items():
    ET.register_namespace(_prefix, _uri)


class TaxCategory(StrEnum):
    """UNCL 5305 VAT category codes, as EN 16931 uses them."""

    STANDARD = "S"
    ZERO_RATED = "Z"
    EXEMPT = "E"
    REVERSE_CHARGE = "AE"


# --- the document --------------------------------------------------------------------------


@dataclass(frozen=True)
class PostalAddress:
    lines: tuple[str, ...] = ()  # at most three
    postcode: str = ""
    city: str = ""
    country: str = FALLBACK_COUNTRY  # ISO 3166-1 alpha-2


@dataclass(frozen=True)
class Party:
    name: str
    address: PostalAddress
    vat_id: str = ""
    email: str = ""


@dataclass(frozen=True)
class DocumentLine:
    """One line of the document: an item, its net amount and the tax charged on it."""

    name: str
    net: Decimal
    tax: Decimal
    category: TaxCategory
    percentage: Decimal  # what is charged: 0 for every category but S


@dataclass(frozen=True)
class TaxBreakdown:
    """One VAT breakdown group (BG-23): the lines of one category and rate together."""

    category: TaxCategory
    percentage: Decimal
    basis: Decimal
    tax: Decimal


@dataclass(frozen=True)
class EDocument:
    """What an EN 16931 invoice or credit note says, in our terms. Amounts are positive
    on both (a credit note says what it credits by its TypeCode)."""

    type_code: str
    number: str
    issue_date: date
    currency: str
    seller: Party
    buyer: Party
    lines: tuple[DocumentLine, ...]
    amount_due: Decimal  # DuePayableAmount: the gross the document asks for
    due_date: date | None = None
    payment_terms: str = ""
    exemption_reason: str = ""  # the legal note of an AE or E document
    notes: tuple[str, ...] = ()
    project: tuple[str, str] | None = None  # (id, name): BT-11, the project reference
    preceding_invoice: tuple[str, date] | None = None  # a credit note's invoice (BG-3)
    payment_link: str = ""

    @property
    def net_total(self) -> Decimal:
        return sum((line.net for line in self.lines), ZERO)

    @property
    def tax_total(self) -> Decimal:
        return sum((line.tax for line in self.lines), ZERO)

    @property
    def gross_total(self) -> Decimal:
        return self.net_total + self.tax_total

    def breakdown(self) -> list[TaxBreakdown]:
        """The lines grouped by category and rate, in the order they first appear: EN
        16931 wants one group per pair (two rates both at 20 % are one group)."""
        groups: dict[tuple[TaxCategory, Decimal], tuple[Decimal, Decimal]] = {}
        for line in self.lines:
            key = (line.category, line.percentage)
            basis, tax = groups.get(key, (ZERO, ZERO))
            groups[key] = (basis + line.net, tax + line.tax)
        return [
            TaxBreakdown(category, percentage, basis, tax)
            for (category, percentage), (basis, tax) in groups.items()
        ]


def category_of(treatment: str, percentage: Decimal) -> TaxCategory:
    """The VAT category of a line: reverse charge and exempt customers' documents are
    AE and E at 0 %; otherwise a rate above 0 is standard rated (S) and 0 % zero rated."""
    if treatment == TaxTreatment.REVERSE_CHARGE:
        return TaxCategory.REVERSE_CHARGE
    if treatment == TaxTreatment.EXEMPT:
        return TaxCategory.EXEMPT
    return TaxCategory.STANDARD if percentage > 0 else TaxCategory.ZERO_RATED


# --- parties: addresses and countries ------------------------------------------------------


@cache
def _territories() -> frozenset[str]:
    # Babel's territories include regions ("150") and groupings; ISO 3166-1 alpha-2 codes
    # are the two-letter ones, less the few that name no country.
    names = Locale("en").territories
    return frozenset(
        code for code in names if isinstance(code, str) and len(code) == 2 and code.isalpha()
    ) - {
        "EU",
        "EZ",
        "UN",
        "QO",
        "ZZ",
    }


def country_code(value: str) -> str:
    """`value` as an ISO 3166-1 alpha-2 code, or "" when it is not one."""
    code = value.strip().upper()
    return code if code in _territories() else ""


def country_of_vat_id(vat_id: str) -> str:
    """The country an EU-style VAT id names by its prefix ("DE123456789"); Greece writes
    EL for GR. "" when the id has no such prefix."""
    prefix = vat_id.strip().upper()[:2]
    if not prefix.isalpha():
        return ""
    return country_code("GR" if prefix == "EL" else prefix)


# "75001 Paris", "D-10115 Berlin", "1011 AB Amsterdam", "SW1A 1AA London", "100-0001 Tokyo"
_POSTCODE_FIRST = re.compile(
    r"^(?P<postcode>(?:[A-Z]{1,2}-)?\d{4,5}(?: ?[A-Z]{2})?|\d{3}-\d{4}|"
    r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})"
    r"[ ,]+(?P<city>\S.*)$"
)
# "Springfield, IL 62704", "London SW1A 1AA", "Toronto, ON M5V 2T6", "Tokyo 100-0001"
_POSTCODE_LAST = re.compile(
    r"^(?P<city>.*?\S)[ ,]+(?P<postcode>(?:[A-Z]{2} )?\d{5}(?:-\d{4})?|\d{3}-\d{4}|"
    r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|(?:[A-Z]{2} )?[A-Z]\d[A-Z] ?\d[A-Z]\d)$"
)


def _names_country(line: str, country: str) -> bool:
    if not country:
        return False
    text = line.strip().strip(".").casefold()
    name = Locale("en").territories.get(country, "")
    return text in {country.casefold(), name.casefold()}


def postal_address(text: str, country: str, *, name: str = "") -> PostalAddress:
    """A free-text address read into EN 16931's parts (see the module's note); a first
    line that only repeats the party's name is left out (the name has its own field)."""
    lines = [line.strip() for line in text.replace("\r", "\n").split("\n") if line.strip()]
    if len(lines) > 1 and name and lines[0].casefold() == name.strip().casefold():
        lines.pop(0)
    if len(lines) > 1 and _names_country(lines[-1], country):
        lines.pop()
    postcode = city = ""
    if lines:
        last = lines[-1]
        match = _POSTCODE_FIRST.match(last) or _POSTCODE_LAST.match(last)
        if match:
            postcode, city = match["postcode"], match["city"].strip(" ,")
            lines.pop()
        elif len(lines) > 1:
            city = lines.pop()
    if len(lines) > 3:
        lines = [*lines[:2], ", ".join(lines[2:])]
    return PostalAddress(tuple(lines), postcode, city, country)


def seller_country(*, business_country: str, vat_id: str) -> str:
    return country_code(business_country) or country_of_vat_id(vat_id) or FALLBACK_COUNTRY


def buyer_country(*, customer_country: str, vat_id: str, seller: str) -> str:
    return country_code(customer_country) or country_of_vat_id(vat_id) or seller


# --- the invoice adapter -------------------------------------------------------------------


class NotSentYet(Conflict):
    code = "einvoice_not_sent"


def _lines_of(invoice: Invoice) -> list[DocumentLine]:
    item = invoice.milestone.title if invoice.milestone else invoice.description
    rows = [line for line in invoice.tax_lines.all() if line.gross_amount != 0]
    if not rows:
        # An invoice made without tax lines (never by the services): its totals alone.
        net, tax = invoice.net_amount or invoice.amount, invoice.tax_amount
        percentage = (tax * 100 / net).quantize(Decimal("0.01")) if net and tax else ZERO
        return [
            DocumentLine(item, net, tax, category_of(invoice.tax_treatment, percentage), percentage)
        ]
    several = len(rows) > 1
    return [
        DocumentLine(
            name=f"{item} — {row.label}" if several else item,
            net=row.net_amount,
            tax=row.tax_amount,
            category=category_of(invoice.tax_treatment, row.percentage),
            percentage=row.percentage,
        )
        for row in rows
    ]


def payment_terms_text(invoice: Invoice, bank_details: str) -> str:
    days = (invoice.due_date - invoice.issue_date).days
    parts = [
        f"Payable within {days} days, by {invoice.due_date.isoformat()}."
        if days > 0
        else f"Payable on receipt, by {invoice.due_date.isoformat()}."
    ]
    if invoice.payment_link:
        parts.append(f"Pay online: {invoice.payment_link}")
    if bank_details.strip():
        parts.append("Bank transfer: " + " ".join(bank_details.split()))
    parts.append(f"Reference: {invoice.number}.")
    return " ".join(parts)


def _parties(
    invoice: Invoice, business: BusinessProfile, *, buyer_name: str, buyer_email: str
) -> tuple[Party, Party, str]:
    """Seller and buyer of a document about `invoice` (the invoice itself or a credit note
    on it), with the tax ids the invoice was sent with; and the legal note an AE or E
    document carries as its exemption reason ("" when the invoice was taxed normally)."""
    customer = invoice.customer
    seller_code = seller_country(business_country=business.country, vat_id=invoice.seller_tax_id)
    buyer_code = buyer_country(
        customer_country=customer.country, vat_id=invoice.buyer_tax_id, seller=seller_code
    )
    reason = ""
    if invoice.tax_treatment in (TaxTreatment.REVERSE_CHARGE, TaxTreatment.EXEMPT):
        reason = invoice.tax_note or (
            business.reverse_charge_note
            if invoice.tax_treatment == TaxTreatment.REVERSE_CHARGE
            else business.tax_exempt_note
        )
    seller = Party(
        name=business.name,
        address=postal_address(business.address, seller_code, name=business.name),
        vat_id=invoice.seller_tax_id,
        email=business.reply_to,
    )
    buyer = Party(
        name=buyer_name or customer.name,
        address=postal_address(customer.address, buyer_code, name=customer.name),
        vat_id=invoice.buyer_tax_id,
        email=buyer_email,
    )
    return seller, buyer, reason


def invoice_edocument(invoice: Invoice) -> EDocument:
    """A sent invoice as an EN 16931 document (TypeCode 380). Its own figures, tax ids and
    customer name are those fixed when it was sent; names of the business and both
    addresses are today's (the invoice keeps no copy of them)."""
    if not invoice.number:
        raise NotSentYet(
            "Only a sent invoice has an e-invoice: this one is a draft. Send it first; the "
            "e-invoice carries the number it gets then."
        )
    business = business_profile()
    seller, buyer, reason = _parties(
        invoice, business, buyer_name=invoice.customer_name, buyer_email=invoice.customer_email
    )
    return EDocument(
        type_code=TYPE_INVOICE,
        number=invoice.number,
        issue_date=invoice.issue_date,
        currency=invoice.currency,
        seller=seller,
        buyer=buyer,
        lines=tuple(_lines_of(invoice)),
        amount_due=invoice.amount,
        due_date=invoice.due_date,
        payment_terms=payment_terms_text(invoice, business.bank_details),
        exemption_reason=reason,
        notes=tuple(note for note in (invoice.description, reason) if note),
        project=(str(invoice.project_id), invoice.project.name),
        payment_link=invoice.payment_link,
    )


# --- the credit note adapter ---------------------------------------------------------------


def _credit_note_lines(note: CreditNote, treatment: str) -> list[DocumentLine]:
    item = f"Credit on invoice {note.invoice.number}"
    rows = [line for line in note.tax_lines.all() if line.gross_amount != 0]
    several = len(rows) > 1
    return [
        DocumentLine(
            name=f"{item} — {row.label}" if several else item,
            net=row.net_amount,
            tax=row.tax_amount,
            category=category_of(treatment, row.percentage),
            percentage=row.percentage,
        )
        for row in rows
    ]


def credit_note_terms(note: CreditNote) -> str:
    return (
        f"Credit note {note.number} on invoice {note.invoice.number}: this amount is taken "
        "off what is owed on that invoice, or paid back where it was already paid. Nothing "
        "is to be paid on this document."
    )


def credit_note_edocument(note: CreditNote) -> EDocument:
    """A credit note as an EN 16931 document (TypeCode 381). EN 16931 writes a credit
    note's amounts positive (its TypeCode says they are credited), and the amount due is
    its gross (BR-CO-16: grand total - paid amount; nothing of it was paid), with terms
    saying it is credited rather than payable (BR-CO-25 wants terms or a due date for a
    positive amount due). It names the invoice it corrects (BG-3: number and issue
    date) and takes that invoice's tax treatment, tax ids and legal note: a credit note
    corrects the invoice as it was sent."""
    invoice = note.invoice
    seller, buyer, reason = _parties(
        invoice, business_profile(), buyer_name=note.customer_name, buyer_email=note.customer_email
    )
    return EDocument(
        type_code=TYPE_CREDIT_NOTE,
        number=note.number,
        issue_date=note.issue_date,
        currency=note.currency,
        seller=seller,
        buyer=buyer,
        lines=tuple(_credit_note_lines(note, invoice.tax_treatment)),
        amount_due=note.amount,
        payment_terms=credit_note_terms(note),
        exemption_reason=reason,
        notes=tuple(note_text for note_text in (note.reason, reason) if note_text),
        project=(str(invoice.project_id), invoice.project.name),
        preceding_invoice=(invoice.number or "", invoice.issue_date),
    )


# --- the XML ------------------------------------------------------------------------------


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    prefix, name = tag.split(":")
    element = ET.SubElement(parent, f"{{{NAMESPACES[prefix]}}}{name}", attrs)
    if text is not None:
        element.text = text
    return element


def _date(parent: ET.Element, tag: str, day: date) -> None:
    _el(_el(parent, tag), "udt:DateTimeString", day.strftime("%Y%m%d"), format="102")


def _percent(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01')):f}"


def _party(parent: ET.Element, tag: str, party: Party) -> None:
    node = _el(parent, tag)
    _el(node, "ram:Name", party.name)
    address = _el(node, "ram:PostalTradeAddress")
    if party.address.postcode:
        _el(address, "ram:PostcodeCode", party.address.postcode)
    for tag_name, line in zip(
        ("ram:LineOne", "ram:LineTwo", "ram:LineThree"), party.address.lines, strict=False
    ):
        _el(address, tag_name, line)
    if party.address.city:
        _el(address, "ram:CityName", party.address.city)
    _el(address, "ram:CountryID", party.address.country)
    if party.email:
        _el(_el(node, "ram:URIUniversalCommunication"), "ram:URIID", party.email, schemeID="EM")
    if party.vat_id:
        _el(_el(node, "ram:SpecifiedTaxRegistration"), "ram:ID", party.vat_id, schemeID="VA")


def _trade_tax(
    parent: ET.Element,
    category: TaxCategory,
    percentage: Decimal,
    reason: str,
    *,
    amounts: tuple[str, str] | None = None,
) -> None:
    """ApplicableTradeTax: on a line (no amounts) or in the breakdown (tax, basis)."""
    node = _el(parent, "ram:ApplicableTradeTax")
    if amounts is not None:
        _el(node, "ram:CalculatedAmount", amounts[0])
    _el(node, "ram:TypeCode", "VAT")
    if amounts is not None and category in (TaxCategory.EXEMPT, TaxCategory.REVERSE_CHARGE):
        _el(node, "ram:ExemptionReason", reason)
    if amounts is not None:
        _el(node, "ram:BasisAmount", amounts[1])
    _el(node, "ram:CategoryCode", category.value)
    _el(node, "ram:RateApplicablePercent", _percent(percentage))


def _exemption_reason(document: EDocument, category: TaxCategory) -> str:
    if document.exemption_reason:
        return document.exemption_reason
    return "Reverse charge" if category is TaxCategory.REVERSE_CHARGE else "Exempt from VAT"


def check_totals(document: EDocument) -> None:
    """The document must add up as EN 16931 checks it (BR-CO-10 to 16): the lines make the
    totals and the amount due is the gross. Anything else is a bug in the figures, which
    must not reach a buyer's accounting as a legal document."""
    if not document.lines:
        raise ValueError(f"{document.number} has no lines.")
    if document.gross_total != document.amount_due:
        raise Conflict(
            f"{document.number}: its lines add up to {document.gross_total} but it asks for "
            f"{document.amount_due}, so it cannot be made an e-invoice.",
            code="einvoice_totals_mismatch",
        )


def cii_xml(document: EDocument) -> bytes:
    """The CII XML of the document, EN 16931 profile (Factur-X "EN 16931")."""
    check_totals(document)
    money = partial(format_amount, currency=document.currency)
    root = ET.Element(f"{{{RSM}}}CrossIndustryInvoice")
    context = _el(root, "rsm:ExchangedDocumentContext")
    _el(_el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", EN16931)

    header = _el(root, "rsm:ExchangedDocument")
    _el(header, "ram:ID", document.number)
    _el(header, "ram:TypeCode", document.type_code)
    _date(header, "ram:IssueDateTime", document.issue_date)
    for note in document.notes:
        _el(_el(header, "ram:IncludedNote"), "ram:Content", note)

    transaction = _el(root, "rsm:SupplyChainTradeTransaction")
    for number, line in enumerate(document.lines, 1):
        item = _el(transaction, "ram:IncludedSupplyChainTradeLineItem")
        _el(_el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(number))
        _el(_el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.name)
        agreement = _el(item, "ram:SpecifiedLineTradeAgreement")
        price = _el(agreement, "ram:NetPriceProductTradePrice")
        _el(price, "ram:ChargeAmount", money(line.net))
        delivery = _el(item, "ram:SpecifiedLineTradeDelivery")
        _el(delivery, "ram:BilledQuantity", "1", unitCode="C62")  # C62: one (a unit)
        settlement = _el(item, "ram:SpecifiedLineTradeSettlement")
        _trade_tax(settlement, line.category, line.percentage, "")
        summation = _el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation")
        _el(summation, "ram:LineTotalAmount", money(line.net))

    agreement = _el(transaction, "ram:ApplicableHeaderTradeAgreement")
    _party(agreement, "ram:SellerTradeParty", document.seller)
    _party(agreement, "ram:BuyerTradeParty", document.buyer)
    if document.project is not None:
        project = _el(agreement, "ram:SpecifiedProcuringProject")
        _el(project, "ram:ID", document.project[0])
        _el(project, "ram:Name", document.project[1])

    _el(transaction, "ram:ApplicableHeaderTradeDelivery")

    settlement = _el(transaction, "ram:ApplicableHeaderTradeSettlement")
    _el(settlement, "ram:PaymentReference", document.number)
    _el(settlement, "ram:InvoiceCurrencyCode", document.currency)
    if document.payment_link:
        # UNTDID 4461 code 68: online payment service.
        means = _el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        _el(means, "ram:TypeCode", "68")
        _el(means, "ram:Information", f"Pay online: {document.payment_link}")
    for group in document.breakdown():
        _trade_tax(
            settlement,
            group.category,
            group.percentage,
            _exemption_reason(document, group.category),
            amounts=(money(group.tax), money(group.basis)),
        )
    if document.payment_terms or document.due_date is not None:
        terms = _el(settlement, "ram:SpecifiedTradePaymentTerms")
        if document.payment_terms:
            _el(terms, "ram:Description", document.payment_terms)
        if document.due_date is not None:
            _date(terms, "ram:DueDateDateTime", document.due_date)
    totals = _el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _el(totals, "ram:LineTotalAmount", money(document.net_total))
    _el(totals, "ram:TaxBasisTotalAmount", money(document.net_total))
    _el(totals, "ram:TaxTotalAmount", money(document.tax_total), currencyID=document.currency)
    _el(totals, "ram:GrandTotalAmount", money(document.gross_total))
    _el(totals, "ram:DuePayableAmount", money(document.amount_due))
    if document.preceding_invoice is not None:
        preceding = _el(settlement, "ram:InvoiceReferencedDocument")
        _el(preceding, "ram:IssuerAssignedID", document.preceding_invoice[0])
        _date_formatted(preceding, document.preceding_invoice[1])

    xml: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return xml


def _date_formatted(parent: ET.Element, day: date) -> None:
    # A referenced document's date is a qdt:FormattedDateTimeString, not udt's.
    node = _el(parent, "ram:FormattedIssueDateTime")
    _el(node, "qdt:DateTimeString", day.strftime("%Y%m%d"), format="102")


# --- the PDF ------------------------------------------------------------------------------


def facturx_from_pdf(pdf: bytes, xml: bytes) -> bytes:
    """Embed the XML into a PDF/A-3 (made with WeasyPrint's pdf/a-3b variant), as the
    factur-x library does it, checking the XML against the EN 16931 XSD on the way."""
    from facturx import generate_from_binary

    result: bytes = generate_from_binary(
        pdf, xml, flavor="factur-x", level="en16931", check_xsd=True, lang="en"
    )
    return result


def _facturx(document_html: str, edocument: EDocument) -> bytes:
    """A document as a Factur-X PDF: its PDF/A-3 rendering, with its CII XML embedded."""
    return facturx_from_pdf(html_to_pdf(document_html, variant="pdf/a-3b"), cii_xml(edocument))


def _download(pdf: bytes, number: str) -> HttpResponse:
    """A Factur-X file as a download named after its document's number."""
    response = pdf_bytes_response(pdf, f"{number}-factur-x.pdf")
    response["Content-Disposition"] = response["Content-Disposition"].replace(
        "inline;", "attachment;", 1
    )
    return response


def invoice_facturx(invoice: Invoice) -> bytes:
    """A sent invoice as a Factur-X PDF: its document, with its XML embedded."""
    return _facturx(invoice_html(invoice), invoice_edocument(invoice))


def facturx_response(invoice: Invoice) -> HttpResponse:
    """The Factur-X PDF of a sent invoice as a download; a draft is refused (409)."""
    return _download(invoice_facturx(invoice), str(invoice.number))


def credit_note_facturx(note: CreditNote) -> bytes:
    """A credit note as a Factur-X PDF: its document, with its XML embedded."""
    return _facturx(credit_note_html(note), credit_note_edocument(note))


def credit_note_facturx_response(note: CreditNote) -> HttpResponse:
    """The Factur-X PDF of a credit note as a download (every credit note is issued)."""
    return _download(credit_note_facturx(note), note.number)
