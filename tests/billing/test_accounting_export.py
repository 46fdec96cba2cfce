"""The accounting export: for a period, every sent invoice (by issue date) and every
payment and refund (by the day received), one row per document per tax rate, whose
figures add up to the documents' own; CSV safe from formula injection, JSON alike;
admins and staff only."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.billing.taxed import address_customer, rate, set_up_business, taxed_project
from tests.helpers import Api, unchanged
from tranche.accounts.models import Customer, User
from tranche.billing.exports import COLUMNS, _Rate, payment_parts, spread
from tranche.billing.models import Invoice, Payment
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.crediting import credit_note_issue
from tranche.billing.services.payments import payment_record_manual, sandbox_pay, settle_refund
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

NOVEMBER = datetime(2026, 11, 10, 12, tzinfo=UTC)
PATH = "/api/exports/accounting"


def send_on(project: Project, admin: User, position: int, when: datetime) -> Invoice:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project, position, admin).pk, now=when)
    return Invoice.objects.get(pk=invoice.pk)


def pay(invoice: Invoice, admin: User, amount: str, on: date, reference: str = "") -> Payment:
    recorded = payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal(amount),
        method="bank_transfer",
        received_on=on,
        reference=reference,
    )
    assert recorded.payment is not None
    return recorded.payment


def export(api: Api, date_from: str, date_to: str, fmt: str = "csv") -> Any:
    return api.client.get(
        PATH, {"date_from": date_from, "date_to": date_to, "format": fmt}, headers=api.headers
    )


def csv_rows(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response.streaming
    content = b"".join(response.streaming_content).decode()
    reader = csv.reader(io.StringIO(content))
    header = next(reader)
    assert header == COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


@pytest.fixture
def books(admin: User, customer_a: Customer, customer_b: Customer) -> dict[str, Any]:
    """November: Acme's two-rate invoice (sent 10th, part paid 12th and 20th) and a
    reverse-charge invoice to Globex (sent 15th); one invoice sent in October, one draft."""
    set_up_business()
    address_customer(customer_a)
    address_customer(customer_b, country="BE", tax_id="BE0123456789", treatment="reverse_charge")
    vat, reduced = rate("VAT 20 %", "20"), rate("VAT 5.5 %", "5.5")
    two_rates = taxed_project(
        admin=admin,
        customer=customer_a,
        lines=[("Build", "1000.00", vat), ("Books", "333.33", reduced)],
        percentages=("30", "30", "40"),
    )
    october = send_on(two_rates, admin, 1, NOVEMBER - timedelta(days=20))
    november = send_on(two_rates, admin, 2, NOVEMBER)
    draft = draft_for(two_rates, 3, admin)
    first = pay(november, admin, "100.00", date(2026, 11, 12), "BANK-1")
    rest = pay(november, admin, str(november.amount - 100), date(2026, 11, 20), "BANK-2")
    reverse = taxed_project(admin=admin, customer=customer_b, lines=[("Studio", "2000.00", vat)])
    globex = send_on(reverse, admin, 1, NOVEMBER + timedelta(days=5))
    return {
        "october": october,
        "november": november,
        "draft": draft,
        "globex": globex,
        "payments": [first, rest],
    }


def test_rows_per_tax_rate_add_up_to_each_documents_totals(
    as_: Callable[[str], Api], books: dict[str, Any]
) -> None:
    rows = csv_rows(export(as_("staff"), "2026-11-01", "2026-11-30"))

    november, globex = books["november"], books["globex"]
    invoices = [r for r in rows if r["document_type"] == "invoice"]
    assert [(r["number"], r["tax_name"], r["tax_rate"]) for r in invoices] == [
        (november.number, "VAT 20 %", "20.00"),
        (november.number, "VAT 5.5 %", "5.50"),
        (globex.number, "VAT 20 %", "0.00"),
    ]
    by_invoice: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in invoices:
        by_invoice[row["number"]].append(row)
    for invoice in (november, globex):
        mine = by_invoice[invoice.number]
        assert sum(Decimal(r["net"]) for r in mine) == invoice.net_amount
        assert sum(Decimal(r["tax"]) for r in mine) == invoice.tax_amount
        assert sum(Decimal(r["gross"]) for r in mine) == invoice.amount
        for r in mine:
            assert Decimal(r["net"]) + Decimal(r["tax"]) == Decimal(r["gross"])
            assert r["date"] == invoice.issue_date.isoformat()
            assert r["due_date"] == invoice.due_date.isoformat()
            assert r["currency"] == "USD"
    # The figures themselves: 30 % of 1000.00 at 20 % and of 333.33 at 5.5 %.
    assert [(r["net"], r["tax"], r["gross"]) for r in by_invoice[november.number]] == [
        ("300.00", "60.00", "360.00"),
        ("100.00", "5.50", "105.50"),
    ]
    reverse = by_invoice[globex.number][0]
    assert (reverse["customer"], reverse["customer_tax_id"], reverse["tax_treatment"]) == (
        "Globex Studio",
        "BE0123456789",
        "reverse_charge",
    )
    assert (reverse["net"], reverse["tax"], reverse["gross"]) == ("600.00", "0.00", "600.00")
    assert invoices[0]["customer_tax_id"] == "DE123456789"
    assert invoices[0]["status"] == "paid"

    payments = [r for r in rows if r["document_type"] == "payment"]
    assert [(r["date"], r["reference"], r["method"]) for r in payments] == [
        ("2026-11-12", "BANK-1", "bank_transfer"),
        ("2026-11-12", "BANK-1", "bank_transfer"),
        ("2026-11-20", "BANK-2", "bank_transfer"),
        ("2026-11-20", "BANK-2", "bank_transfer"),
    ]
    for payment in books["payments"]:
        mine = [r for r in payments if r["reference"] == payment.reference]
        assert sum(Decimal(r["gross"]) for r in mine) == payment.amount
        assert all(Decimal(r["net"]) + Decimal(r["tax"]) == Decimal(r["gross"]) for r in mine)
        assert {r["number"] for r in mine} == {november.number}


def test_only_the_period_counts_and_drafts_never_do(
    as_: Callable[[str], Api], books: dict[str, Any]
) -> None:
    rows = csv_rows(export(as_("admin"), "2026-11-12", "2026-11-12"))

    assert [(r["document_type"], r["number"], r["reference"]) for r in rows] == [
        ("payment", books["november"].number, "BANK-1"),
        ("payment", books["november"].number, "BANK-1"),
    ]
    october = csv_rows(export(as_("admin"), "2026-10-01", "2026-10-31"))
    assert {r["number"] for r in october} == {books["october"].number}
    assert all(r["number"] for r in csv_rows(export(as_("admin"), "2000-01-01", "2099-12-31")))


def test_a_cancelled_invoice_keeps_its_rows_with_its_status(
    as_: Callable[[str], Api], admin: User, books: dict[str, Any]
) -> None:
    invoice_cancel(actor=admin, invoice_id=books["globex"].pk, reason="Wrong customer")

    rows = csv_rows(export(as_("staff"), "2026-11-01", "2026-11-30"))

    assert [r["status"] for r in rows if r["number"] == books["globex"].number] == ["cancelled"]


def test_a_refund_is_negative_and_spread_like_a_payment(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    set_up_business()
    project = taxed_project(
        admin=admin,
        customer=customer_a,
        lines=[
            ("Build", "1000.00", rate("VAT 20 %", "20")),
            ("Books", "333.33", rate("VAT 5.5 %", "5.5")),
        ],
    )
    invoice = send_on(project, admin, 1, datetime.now(UTC))
    sandbox_pay(invoice_id=invoice.pk, card_number="4242 4242 4242 4242")
    settle_refund(
        intent_id=invoice.provider_reference or "",
        charge_id="ch_1",
        refunded_total=Decimal("100.00"),
        currency="USD",
    )
    today = timezone.localdate().isoformat()

    rows = csv_rows(export(as_("staff"), today, today))

    refunds = [r for r in rows if r["document_type"] == "refund"]
    assert sum(Decimal(r["gross"]) for r in refunds) == Decimal("-100.00")
    # Negative amounts are numbers we wrote, not text to neutralise.
    assert all(Decimal(r["gross"]) < 0 and Decimal(r["tax"]) <= 0 for r in refunds)
    assert all(r["gross"].startswith("-") for r in refunds)
    payments = [r for r in rows if r["document_type"] == "payment"]
    assert sum(Decimal(r["gross"]) for r in payments) == invoice.amount
    assert {r["method"] for r in payments + refunds} == {"sandbox"}


def test_json_holds_the_same_rows_as_text(as_: Callable[[str], Api], books: dict[str, Any]) -> None:
    api = as_("staff")
    from_csv = csv_rows(export(api, "2026-11-01", "2026-11-30"))

    response = export(api, "2026-11-01", "2026-11-30", "json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        'attachment; filename="accounting-2026-11-01-to-2026-11-30.json"'
    )
    body = json.loads(b"".join(response.streaming_content))
    assert body["date_from"] == "2026-11-01"
    assert body["date_to"] == "2026-11-30"
    assert body["columns"] == COLUMNS
    assert body["rows"] == from_csv


def test_csv_cells_a_spreadsheet_would_run_are_made_text(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    set_up_business()
    customer_a.name = '=HYPERLINK("http://evil.example","Click")'
    customer_a.save()
    address_customer(customer_a, tax_id="+33 1 23")
    project = taxed_project(
        admin=admin, customer=customer_a, lines=[("Build", "1000.00", rate("@Rate 20 %", "20"))]
    )
    invoice = send_on(project, admin, 1, datetime.now(UTC))
    pay(invoice, admin, "10.00", timezone.localdate(), reference="-2+3")
    today = timezone.localdate().isoformat()
    api = as_("staff")

    rows = csv_rows(export(api, today, today))

    assert {r["customer"] for r in rows} == {'\'=HYPERLINK("http://evil.example","Click")'}
    assert {r["customer_tax_id"] for r in rows} == {"'+33 1 23"}
    assert {r["tax_name"] for r in rows} == {"'@Rate 20 %"}
    assert [r["reference"] for r in rows if r["document_type"] == "payment"] == ["'-2+3"]
    body = json.loads(b"".join(export(api, today, today, "json").streaming_content))
    assert body["rows"][0]["customer"] == '=HYPERLINK("http://evil.example","Click")'


def test_jpy_and_kwd_amounts_keep_their_precision(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    set_up_business()
    vat = rate("VAT 10 %", "10")
    jpy = taxed_project(
        admin=admin, customer=customer_a, currency="JPY", lines=[("Build", "123457", vat)]
    )
    kwd = taxed_project(
        admin=admin, customer=customer_a, currency="KWD", lines=[("Build", "1234.567", vat)]
    )
    now = datetime.now(UTC)
    yen, dinar = send_on(jpy, admin, 1, now), send_on(kwd, admin, 1, now)
    today = timezone.localdate().isoformat()

    rows = csv_rows(export(as_("staff"), today, today))

    assert [(r["currency"], r["net"], r["tax"], r["gross"]) for r in rows] == [
        ("JPY", "37037", "3704", "40741"),
        ("KWD", "370.370", "37.037", "407.407"),
    ]
    assert (yen.amount, dinar.amount) == (Decimal("40741"), Decimal("407.407"))


def test_the_number_of_queries_does_not_grow_with_the_documents(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    set_up_business()
    vat = rate("VAT 20 %", "20")
    api = as_("staff")
    today = timezone.localdate().isoformat()

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            csv_rows(export(api, today, today))
        return len(captured)

    now = datetime.now(UTC)
    few = taxed_project(admin=admin, customer=customer_a, lines=[("A", "100.00", vat)])
    invoice = send_on(few, admin, 1, now)
    pay(invoice, admin, "1.00", timezone.localdate())
    credit_note_issue(actor=admin, invoice_id=invoice.pk, amount=Decimal(1), reason="r")
    queries()  # the first use of the token also stamps it
    baseline = queries()
    for _ in range(3):
        more = taxed_project(admin=admin, customer=customer_a, lines=[("B", "100.00", vat)])
        for position in (1, 2):
            sent = send_on(more, admin, position, now)
            pay(sent, admin, "1.00", timezone.localdate())
            credit_note_issue(actor=admin, invoice_id=sent.pk, amount=Decimal(1), reason="r")

    assert queries() == baseline


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status", "code"),
    [
        ("alice", 403, "staff_only"),
        ("bob", 403, "staff_only"),
        ("anonymous", 401, "not_authenticated"),
    ],
)
def test_only_admins_and_staff_may_export(
    as_: Callable[[str], Api], books: dict[str, Any], persona: str, status: int, code: str
) -> None:
    api = as_(persona)

    with unchanged():
        response = api.get(f"{PATH}?date_from=2026-11-01&date_to=2026-11-30&format=csv")

    assert response.status == status
    assert response.body["code"] == code


@pytest.mark.parametrize("persona", ["admin", "staff"])
def test_admins_and_staff_may_export(
    as_: Callable[[str], Api], books: dict[str, Any], persona: str
) -> None:
    response = export(as_(persona), "2026-11-01", "2026-11-30")

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="accounting-2026-11-01-to-2026-11-30.csv"'
    )
    assert len(csv_rows(response)) == 7


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("date_from=2026-11-30&date_to=2026-11-01", "export_period_reversed"),
        ("date_from=2026-11-01", "validation_error"),
        ("date_from=2026-11-01&date_to=November", "validation_error"),
        ("date_from=2026-11-01&date_to=2026-11-30&format=xlsx", "validation_error"),
    ],
)
def test_a_period_that_cannot_be_read_is_refused(
    as_: Callable[[str], Api], books: dict[str, Any], query: str, code: str
) -> None:
    api = as_("staff")

    with unchanged():
        response = api.get(f"{PATH}?{query}")

    assert response.status == 422
    assert response.body["code"] == code


# --- the arithmetic of spreading a payment over rates ---------------------------------------


def test_a_payment_is_spread_over_the_rates_exactly() -> None:
    rates = [
        _Rate("A", Decimal(20), Decimal("300.00"), Decimal("60.00"), Decimal("360.00")),
        _Rate("B", Decimal("5.5"), Decimal("100.00"), Decimal("5.50"), Decimal("105.50")),
    ]
    parts = payment_parts(Decimal("100.00"), rates, "USD")
    assert sum(p.gross for p in parts) == Decimal("100.00")
    assert [(p.net, p.tax, p.gross) for p in parts] == [
        (Decimal("64.45"), Decimal("12.89"), Decimal("77.34")),
        (Decimal("21.48"), Decimal("1.18"), Decimal("22.66")),
    ]
    refund = payment_parts(Decimal("-100.00"), rates, "USD")
    assert [p.gross for p in refund] == [-p.gross for p in parts]
    assert spread(7, [0, 0]) == [7, 0]
    assert spread(10, [1, 1, 1]) == [4, 3, 3]
