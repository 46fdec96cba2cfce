"""Credit notes as Factur-X e-invoices: every file is a PDF/A-3 whose embedded CII XML
passes the EN 16931 schema check, is TypeCode 381, names the invoice it corrects (BG-3)
and states the credited figures positive, per rate, adding up; only staff and the credit
note's customer may download it, and downloading changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from lxml import etree

from tests.billing.taxed import (
    SELLER_VAT,
    address_customer,
    brussels_project,
    rate,
    sent_invoice,
    set_up_business,
    taxed_project,
)
from tests.billing.test_einvoice import (
    BUYER,
    SELLER,
    SETTLEMENT,
    Breakdown,
    assert_adds_up,
    breakdown,
    checked_xml,
    pdfa_part,
    text,
    texts,
    totals,
)
from tests.helpers import Api, unchanged
from tranche.accounts.business import DEFAULT_REVERSE_CHARGE_NOTE, DEFAULT_TAX_EXEMPT_NOTE
from tranche.accounts.models import Customer, TaxRate, User
from tranche.billing.einvoice import credit_note_edocument, credit_note_facturx
from tranche.billing.models import CreditNote, Invoice
from tranche.billing.services.crediting import credit_note_issue

pytestmark = pytest.mark.django_db

NOVEMBER = datetime(2026, 11, 20, 12, tzinfo=UTC)
PRECEDING = f"{SETTLEMENT}/ram:InvoiceReferencedDocument"


def api_path(note: CreditNote) -> str:
    return f"/api/credit-notes/{note.pk}/facturx.pdf"


def credit(invoice: Invoice, admin: User, amount: str, reason: str = "Goodwill") -> CreditNote:
    note = credit_note_issue(
        actor=admin, invoice_id=invoice.pk, amount=Decimal(amount), reason=reason, now=NOVEMBER
    )
    return CreditNote.objects.get(pk=note.pk)


def assert_matches_note(root: etree._Element, note: CreditNote) -> None:
    """The totals are the credit note's own figures, positive, and the amount due is its
    gross (BR-CO-16: grand total less a paid amount of nothing)."""
    sums = totals(root)
    assert Decimal(sums["TaxBasisTotalAmount"]) == note.net_amount
    assert Decimal(sums["TaxTotalAmount"]) == note.tax_amount
    assert Decimal(sums["GrandTotalAmount"]) == note.amount
    assert Decimal(sums["DuePayableAmount"]) == note.amount
    assert all(Decimal(value) > 0 for key, value in sums.items() if key != "TaxTotalAmount")
    assert_adds_up(root)


def test_one_rate_type_381_names_its_invoice_and_states_the_credit(
    admin: User, customer_a: Customer
) -> None:
    set_up_business()
    address_customer(customer_a)
    project = taxed_project(
        admin=admin, customer=customer_a, lines=[("Build", "1000.00", rate("VAT 20 %", "20"))]
    )
    invoice = sent_invoice(project, admin)  # 360.00: 300.00 + 60.00
    note = credit(invoice, admin, "120.00", "Snagging not done")

    pdf = credit_note_facturx(note)

    assert pdfa_part(pdf) == ("3", "B")
    root = checked_xml(pdf)
    assert text(root, "//rsm:ExchangedDocument/ram:ID") == note.number
    assert text(root, "//rsm:ExchangedDocument/ram:TypeCode") == "381"
    assert text(root, "//ram:IssueDateTime/udt:DateTimeString") == "20261120"
    assert "Snagging not done" in texts(root, "//ram:IncludedNote/ram:Content")
    # BG-3: the invoice it corrects, by number and issue date.
    assert text(root, f"{PRECEDING}/ram:IssuerAssignedID") == invoice.number
    assert text(
        root, f"{PRECEDING}/ram:FormattedIssueDateTime/*[local-name()='DateTimeString']"
    ) == invoice.issue_date.strftime("%Y%m%d")
    # The parties as on the invoice.
    assert text(root, f"{SELLER}/ram:SpecifiedTaxRegistration/ram:ID") == SELLER_VAT
    assert text(root, f"{BUYER}/ram:Name") == "Acme Builders"
    assert text(root, f"{BUYER}/ram:SpecifiedTaxRegistration/ram:ID") == "DE123456789"
    assert text(root, f"{BUYER}/ram:PostalTradeAddress/ram:CountryID") == "DE"
    # 120.00 gross at 20 %: 100.00 + 20.00, positive as EN 16931 writes a credit note.
    assert texts(root, "//ram:SpecifiedTradeProduct/ram:Name") == [
        f"Credit on invoice {invoice.number}"
    ]
    assert breakdown(root) == [Breakdown("S", "20.00", "100.00", "20.00")]
    assert totals(root) == {
        "LineTotalAmount": "100.00",
        "TaxBasisTotalAmount": "100.00",
        "TaxTotalAmount": "20.00",
        "GrandTotalAmount": "120.00",
        "DuePayableAmount": "120.00",
    }
    terms = text(root, "//ram:SpecifiedTradePaymentTerms/ram:Description")
    assert f"on invoice {invoice.number}" in terms
    assert texts(root, "//ram:DueDateDateTime") == []
    assert texts(root, "//ram:SpecifiedTradeSettlementPaymentMeans") == []
    assert text(root, f"{SETTLEMENT}/ram:PaymentReference") == note.number
    assert_matches_note(root, note)


def test_two_rates_each_credited_rate_is_a_line_and_a_group(
    admin: User, customer_a: Customer
) -> None:
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
    invoice = sent_invoice(project, admin)  # 465.50
    note = credit(invoice, admin, str(invoice.amount), "Cancelled phase")

    root = checked_xml(credit_note_facturx(note))

    assert texts(root, "//ram:SpecifiedTradeProduct/ram:Name") == [
        f"Credit on invoice {invoice.number} — VAT 20 %",
        f"Credit on invoice {invoice.number} — VAT 5.5 %",
    ]
    assert breakdown(root) == [
        Breakdown("S", "20.00", "300.00", "60.00"),
        Breakdown("S", "5.50", "100.00", "5.50"),
    ]
    assert totals(root)["GrandTotalAmount"] == "465.50"
    assert [(line.net_amount, line.tax_amount) for line in note.tax_lines.all()] == [
        (Decimal("300.00"), Decimal("60.00")),
        (Decimal("100.00"), Decimal("5.50")),
    ]
    assert_matches_note(root, note)


def test_a_partial_credit_over_two_rates_adds_up(admin: User, customer_a: Customer) -> None:
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
    note = credit(sent_invoice(project, admin), admin, "77.77")

    root = checked_xml(credit_note_facturx(note))

    assert len(breakdown(root)) == 2
    assert_matches_note(root, note)


@pytest.mark.parametrize(
    ("treatment", "category", "legal_note"),
    [
        ("reverse_charge", "AE", DEFAULT_REVERSE_CHARGE_NOTE),
        ("exempt", "E", DEFAULT_TAX_EXEMPT_NOTE),
    ],
)
def test_reverse_charge_or_exempt_is_credited_at_0_with_the_invoices_legal_note(
    admin: User, customer_a: Customer, treatment: str, category: str, legal_note: str
) -> None:
    project = brussels_project(admin, customer_a, treatment=treatment)
    invoice = sent_invoice(project, admin)  # 300.00, no tax
    note = credit(invoice, admin, "50.00")

    root = checked_xml(credit_note_facturx(note))

    assert invoice.tax_note == legal_note
    assert breakdown(root) == [Breakdown(category, "0.00", "50.00", "0.00")]
    assert text(root, f"{SETTLEMENT}/ram:ApplicableTradeTax/ram:ExemptionReason") == legal_note
    assert texts(root, "//ram:SpecifiedLineTradeSettlement//ram:CategoryCode") == [category]
    assert legal_note in texts(root, "//ram:IncludedNote/ram:Content")
    assert text(root, f"{BUYER}/ram:SpecifiedTaxRegistration/ram:ID") == "BE0123456789"
    assert_matches_note(root, note)


def credited_xml(
    admin: User,
    customer: Customer,
    *,
    currency: str,
    address: str,
    country: str,
    tax_id: str,
    line: tuple[str, str, TaxRate],
    amount: str,
) -> tuple[etree._Element, CreditNote]:
    """A credit note of `amount` on a sent one-line invoice in `currency`, and its
    checked XML."""
    set_up_business()
    address_customer(customer, address=address, country=country, tax_id=tax_id)
    project = taxed_project(admin=admin, customer=customer, currency=currency, lines=[line])
    note = credit(sent_invoice(project, admin), admin, amount)
    return checked_xml(credit_note_facturx(note)), note


def test_jpy_credit_has_no_decimals(admin: User, customer_a: Customer) -> None:
    root, note = credited_xml(
        admin,
        customer_a,
        currency="JPY",
        address="1-1 Chiyoda\nTokyo 100-0001",
        country="JP",
        tax_id="T1234567890123",
        line=("Build", "123457", rate("Consumption tax 10 %", "10")),  # invoice 1: 40741
        amount="11000",
    )

    assert totals(root)["GrandTotalAmount"] == "11000"
    assert all("." not in value for value in totals(root).values())
    assert text(root, f"{SETTLEMENT}/ram:InvoiceCurrencyCode") == "JPY"
    assert_matches_note(root, note)


def test_kwd_credit_has_three_decimals(admin: User, customer_a: Customer) -> None:
    root, note = credited_xml(
        admin,
        customer_a,
        currency="KWD",
        address="Kuwait City",
        country="KW",
        tax_id="",
        line=("Build", "1234.567", rate("VAT 5 %", "5")),  # invoice 1: 388.889
        amount="100.001",
    )

    assert totals(root)["GrandTotalAmount"] == "100.001"
    assert all(len(value.split(".")[1]) == 3 for value in totals(root).values())
    assert_matches_note(root, note)


def test_the_edocument_is_positive_and_names_the_invoice(admin: User, customer_a: Customer) -> None:
    set_up_business()
    project = taxed_project(
        admin=admin, customer=customer_a, lines=[("Build", "1000.00", rate("VAT 20 %", "20"))]
    )
    invoice = sent_invoice(project, admin)
    note = credit(invoice, admin, "36.00")

    document = credit_note_edocument(note)

    assert document.type_code == "381"
    assert document.preceding_invoice == (invoice.number, invoice.issue_date)
    assert (document.net_total, document.tax_total, document.amount_due) == (
        Decimal("30.00"),
        Decimal("6.00"),
        Decimal("36.00"),
    )
    assert document.due_date is None
    assert document.project == (str(project.pk), project.name)


# --- the permission matrix -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [("admin", 200), ("staff", 200), ("alice", 200), ("bob", 404), ("anonymous", 401)],
)
def test_who_may_download_a_credit_notes_e_invoice(
    as_: Callable[[str], Api], admin: User, customer_a: Customer, persona: str, status: int
) -> None:
    set_up_business()
    project = taxed_project(
        admin=admin, customer=customer_a, lines=[("Build", "1000.00", rate("VAT 20 %", "20"))]
    )
    note = credit(sent_invoice(project, admin), admin, "12.00")
    api = as_(persona)

    with unchanged():
        response = api.client.get(api_path(note), headers=api.headers)

    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == (
            f'attachment; filename="{note.number}-factur-x.pdf"'
        )
        root = checked_xml(response.content)
        assert text(root, "//rsm:ExchangedDocument/ram:ID") == note.number
        assert text(root, "//rsm:ExchangedDocument/ram:TypeCode") == "381"
    elif status == 404:
        assert response.json()["code"] == "credit_note_not_found"


@pytest.mark.parametrize("persona", ["admin", "alice"])
def test_a_missing_credit_note_has_no_e_invoice(as_: Callable[[str], Api], persona: str) -> None:
    api = as_(persona)

    with unchanged():
        response = api.get("/api/credit-notes/999999/facturx.pdf")

    assert response.status == 404
    assert response.body["code"] == "credit_note_not_found"
