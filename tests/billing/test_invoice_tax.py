"""Tax from the quote to the invoices, through the services: per-rate tax lines that match
core.tax and add up to the invoice, inclusive prices, reverse charge with its note, the
customer's treatment taken at sending, the PDF, the API shapes, and a hypothesis property
over USD, JPY and KWD."""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from tests.billing.helpers import draft_for
from tests.helpers import Api
from tranche.accounts.business import DEFAULT_REVERSE_CHARGE_NOTE, business_row
from tranche.accounts.models import Customer, TaxRate, TaxTreatment, User
from tranche.billing.models import Invoice
from tranche.billing.pdf import invoice_pdf
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.sending import invoice_send
from tranche.core.money import ZERO, Money
from tranche.core.tax import PriceMode, invoice_tax, split_contract
from tranche.core.tax import TaxRate as CoreRate
from tranche.projects.contract import milestone_amounts
from tranche.projects.models import Project
from tranche.sales.services import LineInput, ScheduleInput, quote_create

pytestmark = pytest.mark.django_db

VAT20 = CoreRate("VAT 20 %", Decimal("20.00"))
VAT5 = CoreRate("VAT 5 %", Decimal("5.00"))


@pytest.fixture
def rates() -> tuple[TaxRate, TaxRate]:
    return (
        TaxRate.objects.create(name=VAT20.name, percentage=VAT20.percentage),
        TaxRate.objects.create(name=VAT5.name, percentage=VAT5.percentage),
    )


def two_rate_project(
    admin: User,
    customer: Customer,
    rates: tuple[TaxRate, TaxRate],
    *,
    currency: str = "USD",
    percentages: tuple[str, ...] = ("30", "30", "40"),
) -> Project:
    """Design 1,000.01 at VAT 20 %, printed matter 333.33 at VAT 5 %."""
    vat20, vat5 = rates
    quote = quote_create(
        actor=admin,
        customer_id=customer.pk,
        title="Brand book",
        currency=currency,
        lines=[
            LineInput("Design", Decimal(1), Decimal("1000.01"), vat20.pk),
            LineInput("Printed matter", Decimal(3), Decimal("111.11"), vat5.pk),
        ],
        schedule=[
            ScheduleInput(f"Step {n}", True, Decimal(p)) for n, p in enumerate(percentages, 1)
        ],
    )
    return quote_accept(actor=admin, quote_id=quote.pk)


def lines_of(invoice: Invoice) -> list[tuple[str, str, str, str, str]]:
    return [
        (line.name, f"{line.percentage:.2f}", line.net.api, line.tax.api, line.gross.api)
        for line in invoice.tax_lines.all()
    ]


def test_an_exclusive_quote_at_20_and_5_percent_bills_each_milestone_per_rate(
    admin: User, customer_a: Customer, rates: tuple[TaxRate, TaxRate]
) -> None:
    project = two_rate_project(admin, customer_a, rates)
    assert project.price_mode == "exclusive"
    assert project.contract_total == Decimal("1333.34")
    invoices = [draft_for(project, n, admin) for n in (1, 2, 3)]
    contract = {VAT20: Money(Decimal("1000.01"), "USD"), VAT5: Money(Decimal("333.33"), "USD")}
    shares = split_contract(contract, [Decimal(30), Decimal(30), Decimal(40)], currency="USD")
    for invoice, share in zip(invoices, shares, strict=True):
        expected = invoice_tax(share, currency="USD", mode=PriceMode.EXCLUSIVE)
        assert lines_of(invoice) == [
            (
                t.rate.name,
                f"{t.percentage:.2f}",
                str(t.net.amount),
                str(t.tax.amount),
                str(t.gross.amount),
            )
            for t in expected.lines
        ]
        assert (invoice.net_amount, invoice.tax_amount, invoice.amount) == (
            expected.net.amount,
            expected.tax.amount,
            expected.gross.amount,
        )
        assert invoice.contract_amount == invoice.net_amount
        assert invoice.net_amount + invoice.tax_amount == invoice.amount
    # The first milestone, worked by hand: 30 % of 1,000.01 is 300.003, so 300.00 (the
    # cent left goes to the largest remainder, the 40 % share); 30 % of 333.33 is 99.999,
    # and two cents are left over the floors, so the 30 % shares get 100.00 each.
    assert lines_of(invoices[0]) == [
        ("VAT 20 %", "20.00", "300.00", "60.00", "360.00"),
        ("VAT 5 %", "5.00", "100.00", "5.00", "105.00"),
    ]
    assert invoices[0].amount == Decimal("465.00")
    # Per rate the milestones bill the contract exactly.
    for position, rate in enumerate((VAT20, VAT5)):
        billed = sum((i.tax_lines.all()[position].net_amount for i in invoices), ZERO)
        assert billed == contract[rate].amount


def test_inclusive_prices_take_the_tax_out_of_the_gross(
    admin: User, customer_a: Customer, rates: tuple[TaxRate, TaxRate]
) -> None:
    row = business_row()
    row.price_mode = "inclusive"
    row.save()
    project = two_rate_project(admin, customer_a, rates, percentages=("100",))
    invoice = draft_for(project, 1, admin)
    assert invoice.price_mode == "inclusive"
    # 1,000.01 * 20/120 = 166.668… → 166.67; 333.33 * 5/105 = 15.872… → 15.87.
    assert lines_of(invoice) == [
        ("VAT 20 %", "20.00", "833.34", "166.67", "1000.01"),
        ("VAT 5 %", "5.00", "317.46", "15.87", "333.33"),
    ]
    assert (invoice.contract_amount, invoice.amount) == (Decimal("1333.34"), Decimal("1333.34"))
    assert (invoice.net_amount, invoice.tax_amount) == (Decimal("1150.80"), Decimal("182.54"))


def test_a_reverse_charge_customers_invoice_is_at_0_percent_with_the_legal_note(
    admin: User, customer_a: Customer, rates: tuple[TaxRate, TaxRate]
) -> None:
    customer_a.tax_treatment = TaxTreatment.REVERSE_CHARGE
    customer_a.tax_id = "DE123456789"
    customer_a.save()
    project = two_rate_project(admin, customer_a, rates, percentages=("100",))
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    assert lines_of(sent) == [
        ("VAT 20 %", "0.00", "1000.01", "0.00", "1000.01"),
        ("VAT 5 %", "0.00", "333.33", "0.00", "333.33"),
    ]
    assert [line.rate_percentage for line in sent.tax_lines.all()] == [Decimal(20), Decimal(5)]
    assert (sent.tax_amount, sent.amount) == (ZERO, Decimal("1333.34"))
    assert (sent.tax_treatment, sent.tax_note) == ("reverse_charge", DEFAULT_REVERSE_CHARGE_NOTE)
    assert sent.buyer_tax_id == "DE123456789"


def test_the_sent_invoice_follows_the_customers_treatment_at_send_time(
    admin: User, customer_a: Customer, rates: tuple[TaxRate, TaxRate]
) -> None:
    row = business_row()
    row.tax_exempt_note = "Exempt under section 12."
    row.tax_id = "GB111222333"
    row.save()
    project = two_rate_project(admin, customer_a, rates, percentages=("100",))
    draft = draft_for(project, 1, admin)
    assert (draft.tax_amount, draft.tax_note) == (Decimal("216.67"), "")
    customer_a.tax_treatment = TaxTreatment.EXEMPT
    customer_a.save()
    sent = invoice_send(actor=admin, invoice_id=draft.pk)
    assert (sent.tax_treatment, sent.tax_note, sent.tax_amount) == (
        "exempt",
        "Exempt under section 12.",
        ZERO,
    )
    assert sent.amount == sent.net_amount == Decimal("1333.34")
    assert sent.seller_tax_id == "GB111222333"
    # Once sent, the customer's later change does not reach it.
    customer_a.tax_treatment = TaxTreatment.STANDARD
    customer_a.save()
    sent.refresh_from_db()
    assert (sent.tax_amount, sent.tax_treatment) == (ZERO, "exempt")


def pdf_text(invoice: Invoice) -> str:
    reader = PdfReader(io.BytesIO(invoice_pdf(invoice)))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_pdf_shows_the_tax_lines_and_both_tax_ids(
    admin: User, customer_a: Customer, rates: tuple[TaxRate, TaxRate]
) -> None:
    row = business_row()
    row.tax_id = "GB111222333"
    row.save()
    customer_a.tax_id = "FR40303265045"
    customer_a.save()
    project = two_rate_project(admin, customer_a, rates)
    draft = draft_for(project, 1, admin)
    draft_text = pdf_text(draft)
    # A draft shows today's tax ids (it stores them only when sent).
    assert "Tax id: GB111222333" in draft_text
    assert "Tax id: FR40303265045" in draft_text
    sent = invoice_send(actor=admin, invoice_id=draft.pk)
    text = pdf_text(sent)
    for expected in (
        "VAT 20 % $300.00 $60.00 $360.00",
        "VAT 5 % $100.00 $5.00 $105.00",
        "Net $400.00",
        "Tax $65.00",
        "This invoice, including tax $465.00",
        "Contract total, before tax $1,333.34",
        "Tax id: GB111222333",
        "Tax id: FR40303265045",
    ):
        assert expected in text, expected


def test_the_pdf_of_a_reverse_charge_invoice_carries_the_note(
    admin: User, customer_a: Customer, rates: tuple[TaxRate, TaxRate]
) -> None:
    customer_a.tax_treatment = TaxTreatment.REVERSE_CHARGE
    customer_a.save()
    project = two_rate_project(admin, customer_a, rates, percentages=("100",))
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    text = " ".join(pdf_text(sent).split())
    assert "VAT 20 %, charged 0 % $1,000.01 $0.00 $1,000.01" in text
    assert "Reverse charge: the customer accounts for the VAT" in text


TAX_LINE_KEYS = {"name", "percentage", "rate_percentage", "net", "tax", "gross"}


@pytest.mark.parametrize("persona", ["admin", "alice"])
def test_the_invoice_api_gives_the_tax_to_staff_and_the_customer(
    as_: Callable[[str], Api],
    admin: User,
    customer_a: Customer,
    rates: tuple[TaxRate, TaxRate],
    persona: str,
) -> None:
    customer_a.tax_id = "FR40303265045"
    customer_a.save()
    project = two_rate_project(admin, customer_a, rates)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    api = as_(persona)
    body = api.get(f"/api/projects/{project.pk}/invoices/{sent.pk}").body
    assert {k: body[k] for k in ("amount", "contract_amount", "net_amount", "tax_amount")} == {
        "amount": "465.00",
        "contract_amount": "400.00",
        "net_amount": "400.00",
        "tax_amount": "65.00",
    }
    assert (body["price_mode"], body["tax_treatment"], body["tax_note"]) == (
        "exclusive",
        "standard",
        "",
    )
    assert (body["seller_tax_id"], body["buyer_tax_id"]) == ("", "FR40303265045")
    assert body["tax_lines"] == [
        {
            "name": "VAT 20 %",
            "percentage": "20.00",
            "rate_percentage": "20.00",
            "net": "300.00",
            "tax": "60.00",
            "gross": "360.00",
        },
        {
            "name": "VAT 5 %",
            "percentage": "5.00",
            "rate_percentage": "5.00",
            "net": "100.00",
            "tax": "5.00",
            "gross": "105.00",
        },
    ]
    listed = api.get("/api/invoices").body["items"]
    assert [i["tax_lines"] for i in listed] == [body["tax_lines"]]
    by_project = api.get(f"/api/projects/{project.pk}/invoices").body["items"]
    assert by_project[0]["tax_amount"] == "65.00"


def test_the_invoice_list_costs_the_same_queries_with_one_invoice_or_ten(
    as_: Callable[[str], Api],
    admin: User,
    customer_a: Customer,
    rates: tuple[TaxRate, TaxRate],
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = as_("admin")
    api.get("/api/invoices")  # the token's first use is stamped once
    project = two_rate_project(admin, customer_a, rates, percentages=("100",))
    draft_for(project, 1, admin)
    with CaptureQueriesContext(connection) as one:
        api.get("/api/invoices")
    big = two_rate_project(admin, customer_a, rates, percentages=("10",) * 10)
    for n in range(1, 11):
        draft_for(big, n, admin)
    with CaptureQueriesContext(connection) as eleven:
        assert len(api.get("/api/invoices").body["items"]) == 11
    assert len(one.captured_queries) == len(eleven.captured_queries)


def test_the_quote_api_takes_a_rate_per_line_and_gives_the_breakdown(
    as_: Callable[[str], Api], customer_a: Customer, rates: tuple[TaxRate, TaxRate]
) -> None:
    vat20, vat5 = rates
    response = as_("staff").post(
        "/api/quotes",
        {
            "customer_id": customer_a.pk,
            "title": "Brand book",
            "currency": "USD",
            "lines": [
                {
                    "description": "Design",
                    "quantity": "1",
                    "unit_price": "1000.01",
                    "tax_rate_id": vat20.pk,
                },
                {
                    "description": "Print",
                    "quantity": "3",
                    "unit_price": "111.11",
                    "tax_rate_id": vat5.pk,
                },
                {"description": "Coffee", "quantity": "1", "unit_price": "10"},
            ],
        },
    )
    assert response.status == 201
    body = response.body
    assert [(x["tax_rate_id"], x["tax_name"], x["tax_percentage"]) for x in body["lines"]] == [
        (vat20.pk, "VAT 20 %", "20.00"),
        (vat5.pk, "VAT 5 %", "5.00"),
        (None, "", "0.00"),
    ]
    assert (body["price_mode"], body["total"], body["net"], body["tax"], body["gross"]) == (
        "exclusive",
        "1343.34",
        "1343.34",
        "216.67",
        "1560.01",
    )
    assert [(t["name"], t["net"], t["tax"], t["gross"]) for t in body["tax_lines"]] == [
        ("VAT 20 %", "1000.01", "200.00", "1200.01"),
        ("VAT 5 %", "333.33", "16.67", "350.00"),
        ("", "10.00", "0.00", "10.00"),
    ]
    assert all(set(t) == TAX_LINE_KEYS for t in body["tax_lines"])


# --- the property ------------------------------------------------------------------------

CURRENCIES = {"USD": 2, "JPY": 0, "KWD": 3}


@st.composite
def contracts(
    draw: st.DrawFn,
) -> tuple[str, str, list[tuple[int, Decimal, Decimal]], list[Decimal]]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    places = CURRENCIES[currency]
    mode = draw(st.sampled_from(["exclusive", "inclusive"]))
    # Rate index (0 = no tax), quantity, unit price.
    lines = draw(
        st.lists(
            st.tuples(
                st.integers(0, 3),
                st.integers(1, 20).map(Decimal),
                st.integers(0, 10**7).map(lambda u: Decimal(u).scaleb(-places)),
            ),
            min_size=1,
            max_size=6,
        )
    )
    cuts = draw(st.lists(st.integers(1, 9999), min_size=0, max_size=5, unique=True))
    points = sorted({0, *cuts, 10000})
    percentages = [Decimal(b - a).scaleb(-2) for a, b in itertools.pairwise(points)]
    return currency, mode, lines, percentages


RATE_PERCENTAGES = (Decimal("20.00"), Decimal("5.50"), Decimal("7.25"))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(contract=contracts())
def test_completing_every_milestone_bills_the_contract_exactly_per_rate(
    admin: User,
    customer_a: Customer,
    contract: tuple[str, str, list[tuple[int, Decimal, Decimal]], list[Decimal]],
) -> None:
    currency, mode, lines, percentages = contract
    with transaction.atomic():
        rows = [TaxRate.objects.create(name=f"Rate {p}", percentage=p) for p in RATE_PERCENTAGES]
        row = business_row()
        row.price_mode = mode
        row.save()
        quote = quote_create(
            actor=admin,
            customer_id=customer_a.pk,
            title="Property",
            currency=currency,
            lines=[
                LineInput(f"Line {n}", qty, price, rows[r - 1].pk if r else None)
                for n, (r, qty, price) in enumerate(lines, 1)
            ],
            schedule=[ScheduleInput(f"Step {n}", True, p) for n, p in enumerate(percentages, 1)],
        )
        project = quote_accept(actor=admin, quote_id=quote.pk)
        milestones = list(project.milestones.order_by("position"))
        amounts = milestone_amounts(project, milestones)
        # A milestone whose share rounds to nothing cannot be billed (and has no invoice).
        invoices = [draft_for(project, m.position, admin) for m in milestones if amounts[m.pk]]

        contract_bases: dict[tuple[str, Decimal], Decimal] = {}
        for row_ in project.contract_bases:
            key = (row_["name"], Decimal(row_["percentage"]))
            contract_bases[key] = Decimal(row_["amount"])
        billed: dict[tuple[str, Decimal], Decimal] = {}
        for invoice in invoices:
            assert invoice.price_mode == mode
            net = tax = gross = ZERO
            for line in invoice.tax_lines.all():
                assert line.net_amount + line.tax_amount == line.gross_amount
                assert min(line.net_amount, line.tax_amount) >= 0
                basis = line.net_amount if mode == "exclusive" else line.gross_amount
                key = (line.name, line.rate_percentage)
                billed[key] = billed.get(key, ZERO) + basis
                net, tax, gross = (
                    net + line.net_amount,
                    tax + line.tax_amount,
                    gross + line.gross_amount,
                )
            assert (invoice.net_amount, invoice.tax_amount, invoice.amount) == (net, tax, gross)
            for amount in (net, tax, gross):
                assert amount == amount.quantize(Decimal(1).scaleb(-CURRENCIES[currency]))
        assert {k: v for k, v in billed.items() if v} == {
            k: v for k, v in contract_bases.items() if v
        }
        assert sum(billed.values(), ZERO) == project.contract_total
        transaction.set_rollback(True)
