"""Factur-X e-invoices: every produced file is a PDF/A-3 whose embedded CII XML passes the
factur-x library's EN 16931 schema check and says what the invoice says (parties,
countries, tax ids, each rate's basis and tax, totals, due date and terms); drafts have
none; only staff and the invoice's customer may download it."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from tests.billing.helpers import draft_for
from tests.billing.taxed import (
    SELLER_VAT,
    address_customer,
    brussels_project,
    rate,
    sent_invoice,
    set_up_business,
    taxed_project,
)
from tests.helpers import Api, unchanged
from tranche.accounts.business import DEFAULT_REVERSE_CHARGE_NOTE, DEFAULT_TAX_EXEMPT_NOTE
from tranche.accounts.models import Customer, User
from tranche.billing.einvoice import (
    FALLBACK_COUNTRY,
    PostalAddress,
    cii_xml,
    country_of_vat_id,
    invoice_edocument,
    invoice_facturx,
    postal_address,
)
from tranche.billing.models import Invoice

pytestmark = pytest.mark.django_db

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}


def api_path(invoice: Invoice) -> str:
    return f"/api/invoices/{invoice.pk}/facturx.pdf"


def checked_xml(pdf: bytes) -> etree._Element:
    """The XML embedded in the PDF, after the library's own checks: it finds a Factur-X
    attachment and validates it against the EN 16931 XSD (raising when it is not valid)."""
    assert pdf.startswith(b"%PDF-")
    filename, xml = facturx.get_facturx_xml_from_pdf(io.BytesIO(pdf), check_xsd=True)
    assert filename == "factur-x.xml"
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931") is True
    root = etree.fromstring(xml)
    assert facturx.get_level(root) == "en16931"
    return root


def pdfa_part(pdf: bytes) -> tuple[str, str]:
    """(part, conformance) of the PDF/A identification in the document's XMP metadata."""
    reader = PdfReader(io.BytesIO(pdf))
    metadata = reader.xmp_metadata
    assert metadata is not None
    tree = etree.fromstring(metadata.stream.get_data())
    pdfaid = "http://www.aiim.org/pdfa/ns/id/"
    part = tree.findtext(f".//{{{pdfaid}}}part") or tree.xpath(
        "string(//@*[local-name()='part' and namespace-uri()=$ns])", ns=pdfaid
    )
    conformance = tree.findtext(f".//{{{pdfaid}}}conformance") or tree.xpath(
        "string(//@*[local-name()='conformance' and namespace-uri()=$ns])", ns=pdfaid
    )
    return str(part), str(conformance)


def text(root: etree._Element, path: str) -> str:
    found = root.xpath(path, namespaces=NS)
    assert len(found) == 1, f"{path}: {len(found)} matches"
    value = found[0]
    return str(value if isinstance(value, str) else value.text)


def texts(root: etree._Element, path: str) -> list[str]:
    return [str(e if isinstance(e, str) else e.text) for e in root.xpath(path, namespaces=NS)]


SETTLEMENT = "//ram:ApplicableHeaderTradeSettlement"
TOTALS = f"{SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"
SELLER = "//ram:SellerTradeParty"
BUYER = "//ram:BuyerTradeParty"


@dataclass(frozen=True)
class Breakdown:
    category: str
    rate: str
    basis: str
    tax: str


def breakdown(root: etree._Element) -> list[Breakdown]:
    return [
        Breakdown(
            text(node, "ram:CategoryCode"),
            text(node, "ram:RateApplicablePercent"),
            text(node, "ram:BasisAmount"),
            text(node, "ram:CalculatedAmount"),
        )
        for node in root.xpath(f"{SETTLEMENT}/ram:ApplicableTradeTax", namespaces=NS)
    ]


def totals(root: etree._Element) -> dict[str, str]:
    return {
        name: text(root, f"{TOTALS}/ram:{name}")
        for name in (
            "LineTotalAmount",
            "TaxBasisTotalAmount",
            "TaxTotalAmount",
            "GrandTotalAmount",
            "DuePayableAmount",
        )
    }


def assert_adds_up(root: etree._Element) -> None:
    """EN 16931's sums (BR-CO-10, 13 to 16, BR-S-08): the lines make the totals, the
    breakdown's bases are the lines' nets per category and rate."""
    line_nets = [
        Decimal(t) for t in texts(root, "//ram:SpecifiedLineTradeSettlement//ram:LineTotalAmount")
    ]
    groups = breakdown(root)
    sums = totals(root)
    assert Decimal(sums["LineTotalAmount"]) == sum(line_nets)
    assert sums["TaxBasisTotalAmount"] == sums["LineTotalAmount"]
    assert sum(Decimal(g.basis) for g in groups) == Decimal(sums["TaxBasisTotalAmount"])
    assert sum(Decimal(g.tax) for g in groups) == Decimal(sums["TaxTotalAmount"])
    assert Decimal(sums["GrandTotalAmount"]) == Decimal(sums["TaxBasisTotalAmount"]) + Decimal(
        sums["TaxTotalAmount"]
    )
    assert sums["DuePayableAmount"] == sums["GrandTotalAmount"]


# --- the five invoices the issue names -----------------------------------------------------


def test_one_rate_every_party_and_figure_is_in_the_xml(admin: User, customer_a: Customer) -> None:
    set_up_business()
    address_customer(customer_a)
    project = taxed_project(
        admin=admin, customer=customer_a, lines=[("Build", "1000.00", rate("VAT 20 %", "20"))]
    )
    invoice = sent_invoice(project, admin)

    pdf = invoice_facturx(invoice)

    assert pdfa_part(pdf) == ("3", "B")
    root = checked_xml(pdf)
    assert text(root, "//rsm:ExchangedDocument/ram:ID") == invoice.number
    assert text(root, "//rsm:ExchangedDocument/ram:TypeCode") == "380"
    assert text(root, "//ram:IssueDateTime/udt:DateTimeString") == invoice.issue_date.strftime(
        "%Y%m%d"
    )
    assert (
        text(root, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID")
        == "urn:cen.eu:en16931:2017"
    )
    # The seller: the business's name, its address (its name line and country line left
    # out: they have their own fields), its country and VAT id.
    assert text(root, f"{SELLER}/ram:Name") == "Harbour Build Co"
    assert text(root, f"{SELLER}/ram:PostalTradeAddress/ram:LineOne") == "12 Quai des Chartrons"
    assert text(root, f"{SELLER}/ram:PostalTradeAddress/ram:PostcodeCode") == "33000"
    assert text(root, f"{SELLER}/ram:PostalTradeAddress/ram:CityName") == "Bordeaux"
    assert text(root, f"{SELLER}/ram:PostalTradeAddress/ram:CountryID") == "FR"
    assert text(root, f"{SELLER}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']") == SELLER_VAT
    # The buyer, as the invoice was sent to them.
    assert text(root, f"{BUYER}/ram:Name") == "Acme Builders"
    assert texts(root, f"{BUYER}/ram:PostalTradeAddress/ram:LineOne | {BUYER}//ram:LineTwo") == [
        "Acme Builders GmbH",
        "Friedrichstraße 123",
    ]
    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:PostcodeCode") == "10117"
    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:CityName") == "Berlin"
    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:CountryID") == "DE"
    assert text(root, f"{BUYER}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']") == (
        "DE123456789"
    )
    assert text(root, f"{BUYER}/ram:URIUniversalCommunication/ram:URIID[@schemeID='EM']") == (
        "accounts@acme.example"
    )
    # One line, the milestone, and the tax: 30 % of 1000.00 at 20 %.
    assert texts(root, "//ram:SpecifiedTradeProduct/ram:Name") == ["Phase 1"]
    assert breakdown(root) == [Breakdown("S", "20.00", "300.00", "60.00")]
    assert totals(root) == {
        "LineTotalAmount": "300.00",
        "TaxBasisTotalAmount": "300.00",
        "TaxTotalAmount": "60.00",
        "GrandTotalAmount": "360.00",
        "DuePayableAmount": "360.00",
    }
    assert texts(root, f"{TOTALS}/ram:TaxTotalAmount/@currencyID") == ["USD"]
    assert text(root, f"{SETTLEMENT}/ram:InvoiceCurrencyCode") == "USD"
    assert text(root, f"{SETTLEMENT}/ram:PaymentReference") == invoice.number
    # Due date and terms, with the payment link and the bank details.
    assert text(root, "//ram:DueDateDateTime/udt:DateTimeString") == invoice.due_date.strftime(
        "%Y%m%d"
    )
    terms = text(root, "//ram:SpecifiedTradePaymentTerms/ram:Description")
    assert f"Payable within 14 days, by {invoice.due_date.isoformat()}." in terms
    assert f"Pay online: {invoice.payment_link}" in terms
    assert "IBAN FR76 3000 6000 0112 3456 7890 189" in terms
    assert text(root, "//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "68"
    assert_adds_up(root)
    assert invoice.amount == Decimal("360.00")


def test_two_rates_each_has_its_line_basis_and_tax(admin: User, customer_a: Customer) -> None:
    set_up_business()
    address_customer(customer_a)
    project = taxed_project(
        admin=admin,
        customer=customer_a,
        lines=[
            ("Build", "1000.00", rate("VAT 20 %", "20")),
            ("Books", "333.33", rate("VAT 5.5 %", "5.5")),
        ],
    )
    invoice = sent_invoice(project, admin)

    root = checked_xml(invoice_facturx(invoice))

    assert texts(root, "//ram:SpecifiedTradeProduct/ram:Name") == [
        "Phase 1 — VAT 20 %",
        "Phase 1 — VAT 5.5 %",
    ]
    assert texts(root, "//ram:SpecifiedLineTradeSettlement//ram:RateApplicablePercent") == [
        "20.00",
        "5.50",
    ]
    assert breakdown(root) == [
        Breakdown("S", "20.00", "300.00", "60.00"),
        Breakdown("S", "5.50", "100.00", "5.50"),
    ]
    assert totals(root) == {
        "LineTotalAmount": "400.00",
        "TaxBasisTotalAmount": "400.00",
        "TaxTotalAmount": "65.50",
        "GrandTotalAmount": "465.50",
        "DuePayableAmount": "465.50",
    }
    assert_adds_up(root)
    assert invoice.amount == Decimal("465.50")


def test_two_rates_at_the_same_percentage_are_one_breakdown_group(
    admin: User, customer_a: Customer
) -> None:
    set_up_business()
    address_customer(customer_a)
    project = taxed_project(
        admin=admin,
        customer=customer_a,
        lines=[
            ("Build", "1000.00", rate("VAT 20 %", "20")),
            ("Hire", "500.00", rate("Equipment VAT 20 %", "20")),
        ],
    )
    invoice = sent_invoice(project, admin)

    root = checked_xml(invoice_facturx(invoice))

    assert len(texts(root, "//ram:IncludedSupplyChainTradeLineItem")) == 2
    assert breakdown(root) == [Breakdown("S", "20.00", "450.00", "90.00")]
    assert_adds_up(root)


@pytest.mark.parametrize(
    ("treatment", "category", "note"),
    [
        ("reverse_charge", "AE", DEFAULT_REVERSE_CHARGE_NOTE),
        ("exempt", "E", DEFAULT_TAX_EXEMPT_NOTE),
    ],
)
def test_a_reverse_charge_or_exempt_customer_is_billed_at_0_with_the_legal_note(
    admin: User, customer_a: Customer, treatment: str, category: str, note: str
) -> None:
    project = brussels_project(admin, customer_a, treatment=treatment)
    invoice = sent_invoice(project, admin)

    root = checked_xml(invoice_facturx(invoice))

    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:LineOne") == "Rue de la Loi 16"
    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:PostcodeCode") == "1000"
    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:CityName") == "Bruxelles"
    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:CountryID") == "BE"
    assert text(root, f"{BUYER}/ram:SpecifiedTaxRegistration/ram:ID") == "BE0123456789"
    assert breakdown(root) == [Breakdown(category, "0.00", "300.00", "0.00")]
    assert text(root, f"{SETTLEMENT}/ram:ApplicableTradeTax/ram:ExemptionReason") == note
    assert texts(root, "//ram:SpecifiedLineTradeSettlement//ram:CategoryCode") == [category]
    assert note in texts(root, "//ram:IncludedNote/ram:Content")
    assert totals(root)["TaxTotalAmount"] == "0.00"
    assert totals(root)["DuePayableAmount"] == "300.00"
    assert_adds_up(root)


def test_jpy_amounts_have_no_decimals(admin: User, customer_a: Customer) -> None:
    set_up_business()
    address_customer(
        customer_a, address="1-1 Chiyoda\nTokyo 100-0001", country="JP", tax_id="T1234567890123"
    )
    project = taxed_project(
        admin=admin,
        customer=customer_a,
        currency="JPY",
        lines=[("Build", "123457", rate("Consumption tax 10 %", "10"))],
    )
    invoice = sent_invoice(project, admin)

    root = checked_xml(invoice_facturx(invoice))

    # 30 % of 123457 is 37037.1: allocate() gives 37037; 10 % of it, 3703.7, rounds to 3704.
    assert breakdown(root) == [Breakdown("S", "10.00", "37037", "3704")]
    assert totals(root) == {
        "LineTotalAmount": "37037",
        "TaxBasisTotalAmount": "37037",
        "TaxTotalAmount": "3704",
        "GrandTotalAmount": "40741",
        "DuePayableAmount": "40741",
    }
    assert text(root, f"{SETTLEMENT}/ram:InvoiceCurrencyCode") == "JPY"
    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:PostcodeCode") == "100-0001"
    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:CityName") == "Tokyo"
    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:CountryID") == "JP"
    assert_adds_up(root)


def test_kwd_amounts_have_three_decimals(admin: User, customer_a: Customer) -> None:
    set_up_business()
    address_customer(customer_a, address="Kuwait City", country="KW", tax_id="")
    project = taxed_project(
        admin=admin,
        customer=customer_a,
        currency="KWD",
        lines=[("Build", "1234.567", rate("VAT 5 %", "5"))],
    )
    invoice = sent_invoice(project, admin)

    root = checked_xml(invoice_facturx(invoice))

    # 30 % of 1234.567 is 370.3701 → 370.370; 5 % of it, 18.5185, rounds half up to 18.519.
    assert breakdown(root) == [Breakdown("S", "5.00", "370.370", "18.519")]
    assert totals(root)["GrandTotalAmount"] == "388.889"
    assert totals(root)["DuePayableAmount"] == "388.889"
    assert texts(root, f"{TOTALS}/ram:TaxTotalAmount/@currencyID") == ["KWD"]
    # A one-line address is a street line; no tax id, no registration element.
    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:LineOne") == "Kuwait City"
    assert texts(root, f"{BUYER}/ram:SpecifiedTaxRegistration") == []
    assert_adds_up(root)


def test_a_zero_rate_on_a_standard_invoice_is_zero_rated(admin: User, customer_a: Customer) -> None:
    set_up_business()
    address_customer(customer_a)
    project = taxed_project(
        admin=admin,
        customer=customer_a,
        lines=[("Build", "1000.00", rate("VAT 20 %", "20")), ("Export", "200.00", None)],
    )
    invoice = sent_invoice(project, admin)

    root = checked_xml(invoice_facturx(invoice))

    assert breakdown(root) == [
        Breakdown("S", "20.00", "300.00", "60.00"),
        Breakdown("Z", "0.00", "60.00", "0.00"),
    ]
    assert_adds_up(root)


def test_without_countries_the_vat_ids_then_the_default_name_them(
    admin: User, customer_a: Customer
) -> None:
    set_up_business(country="")
    address_customer(customer_a, country="", tax_id="EL094259216")
    project = taxed_project(
        admin=admin, customer=customer_a, lines=[("Build", "1000.00", rate("VAT 20 %", "20"))]
    )
    invoice = sent_invoice(project, admin)

    document = invoice_edocument(invoice)

    assert document.seller.address.country == "FR"  # from FR40303265045
    assert document.buyer.address.country == "GR"  # Greece writes EL
    facturx.xml_check_xsd(cii_xml(document), flavor="factur-x", level="en16931")


@pytest.mark.parametrize(
    ("address", "country", "expected"),
    [
        (
            "12 Quai des Chartrons\n33000 Bordeaux",
            "FR",
            (("12 Quai des Chartrons",), "33000", "Bordeaux"),
        ),
        (
            "1 Main St\nSpringfield, IL 62704\nUnited States",
            "US",
            (("1 Main St",), "IL 62704", "Springfield"),
        ),
        (
            "10 Downing Street\nLondon SW1A 2AA",
            "GB",
            (("10 Downing Street",), "SW1A 2AA", "London"),
        ),
        (
            "Keizersgracht 1\n1015 CJ Amsterdam",
            "NL",
            (("Keizersgracht 1",), "1015 CJ", "Amsterdam"),
        ),
        (
            "Unit 4\nHarbour Park\nDock Road\nEast Wing\nCork",
            "IE",
            (("Unit 4", "Harbour Park", "Dock Road, East Wing"), "", "Cork"),
        ),
        ("", "DE", ((), "", "")),
    ],
)
def test_free_text_addresses_are_read_into_their_parts(
    address: str, country: str, expected: tuple[tuple[str, ...], str, str]
) -> None:
    lines, postcode, city = expected
    assert postal_address(address, country) == PostalAddress(lines, postcode, city, country)


def test_country_codes_from_vat_ids() -> None:
    assert country_of_vat_id("DE123456789") == "DE"
    assert country_of_vat_id("EL094259216") == "GR"
    assert country_of_vat_id("123456") == ""
    assert country_of_vat_id("QQ123") == ""
    assert FALLBACK_COUNTRY == "FR"


# --- refusals and the permission matrix ----------------------------------------------------


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_a_draft_has_no_e_invoice(
    as_: Callable[[str], Api], admin: User, customer_a: Customer, persona: str
) -> None:
    project = taxed_project(
        admin=admin, customer=customer_a, lines=[("Build", "1000.00", rate("VAT 20 %", "20"))]
    )
    draft = draft_for(project, 1, admin)
    api = as_(persona)

    with unchanged():
        response = api.get(api_path(draft))

    assert response.status == 409
    assert response.body["code"] == "einvoice_not_sent"
    assert response.body["detail"].startswith("Only a sent invoice has an e-invoice")


@pytest.mark.parametrize(
    ("persona", "status"),
    [("admin", 200), ("staff", 200), ("alice", 200), ("bob", 404), ("anonymous", 401)],
)
def test_who_may_download_a_sent_invoices_e_invoice(
    as_: Callable[[str], Api], admin: User, customer_a: Customer, persona: str, status: int
) -> None:
    set_up_business()
    project = taxed_project(
        admin=admin, customer=customer_a, lines=[("Build", "1000.00", rate("VAT 20 %", "20"))]
    )
    invoice = sent_invoice(project, admin)
    api = as_(persona)

    with unchanged():
        response = api.client.get(api_path(invoice), headers=api.headers)

    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == (
            f'attachment; filename="{invoice.number}-factur-x.pdf"'
        )
        root = checked_xml(response.content)
        assert text(root, "//rsm:ExchangedDocument/ram:ID") == invoice.number


def test_a_customer_cannot_see_a_draft_e_invoice_exists(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = taxed_project(
        admin=admin, customer=customer_a, lines=[("Build", "1000.00", rate("VAT 20 %", "20"))]
    )
    draft = draft_for(project, 1, admin)
    alice, bob, admin_api = as_("alice"), as_("bob"), as_("admin")

    with unchanged():
        responses = [api.get(api_path(draft)) for api in (alice, bob)]
        missing = admin_api.get("/api/invoices/999999/facturx.pdf")

    assert [r.status for r in responses] == [404, 404]
    assert missing.status == 404
