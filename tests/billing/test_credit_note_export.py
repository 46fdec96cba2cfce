"""Credit notes in the accounting export: one row per credit note per tax rate it
credits, `credit_note`, by issue date, amounts negative and adding up to the credit
note's own net, tax and gross negated, the credited invoice's number in
`credited_invoice` (blank on every other row); CSV and JSON alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from tests.billing.taxed import address_customer, rate, set_up_business, taxed_project
from tests.billing.test_accounting_export import csv_rows, export, pay, send_on
from tests.helpers import Api
from tranche.accounts.models import Customer, User
from tranche.billing.exports import COLUMNS
from tranche.billing.models import CreditNote, Invoice
from tranche.billing.services.crediting import credit_note_issue

pytestmark = pytest.mark.django_db

NOVEMBER = datetime(2026, 11, 10, 12, tzinfo=UTC)


def credit(invoice: Invoice, admin: User, amount: str, on: datetime) -> CreditNote:
    note = credit_note_issue(
        actor=admin, invoice_id=invoice.pk, amount=Decimal(amount), reason="Goodwill", now=on
    )
    return CreditNote.objects.get(pk=note.pk)


@pytest.fixture
def credited(admin: User, customer_a: Customer, customer_b: Customer) -> dict[str, Any]:
    """November: Acme's two-rate invoice (sent 10th, 465.50) credited 77.77 on the 14th
    and 100.00 on the 21st; Globex's reverse-charge invoice (600.00) credited in full on
    the 25th."""
    set_up_business()
    address_customer(customer_a)
    address_customer(customer_b, country="BE", tax_id="BE0123456789", treatment="reverse_charge")
    vat, reduced = rate("VAT 20 %", "20"), rate("VAT 5.5 %", "5.5")
    two_rates = taxed_project(
        admin=admin,
        customer=customer_a,
        lines=[("Build", "1000.00", vat), ("Books", "333.33", reduced)],
    )
    acme = send_on(two_rates, admin, 1, NOVEMBER)
    reverse = taxed_project(admin=admin, customer=customer_b, lines=[("Studio", "2000.00", vat)])
    globex = send_on(reverse, admin, 1, NOVEMBER)
    notes = [
        credit(acme, admin, "77.77", datetime(2026, 11, 14, 12, tzinfo=UTC)),
        credit(acme, admin, "100.00", datetime(2026, 11, 21, 12, tzinfo=UTC)),
        credit(globex, admin, "600.00", datetime(2026, 11, 25, 12, tzinfo=UTC)),
    ]
    return {"acme": acme, "globex": globex, "notes": notes}


def test_the_columns_are_exactly_these() -> None:
    assert COLUMNS == [
        "document_type",
        "number",
        "date",
        "due_date",
        "status",
        "customer",
        "customer_tax_id",
        "currency",
        "tax_treatment",
        "tax_name",
        "tax_rate",
        "net",
        "tax",
        "gross",
        "method",
        "reference",
        "credited_invoice",
    ]


def test_credit_note_rows_are_negative_per_rate_and_add_up_to_each_credit_note(
    as_: Callable[[str], Api], credited: dict[str, Any]
) -> None:
    rows = csv_rows(export(as_("staff"), "2026-11-01", "2026-11-30"))

    acme, globex = credited["acme"], credited["globex"]
    first, second, full = credited["notes"]
    # Invoices, then credit notes (by issue date), grouped by kind.
    assert [r["document_type"] for r in rows] == ["invoice"] * 3 + ["credit_note"] * 5
    notes = [r for r in rows if r["document_type"] == "credit_note"]
    assert [(r["number"], r["date"], r["tax_name"], r["tax_rate"]) for r in notes] == [
        (first.number, "2026-11-14", "VAT 20 %", "20.00"),
        (first.number, "2026-11-14", "VAT 5.5 %", "5.50"),
        (second.number, "2026-11-21", "VAT 20 %", "20.00"),
        (second.number, "2026-11-21", "VAT 5.5 %", "5.50"),
        (full.number, "2026-11-25", "VAT 20 %", "0.00"),
    ]
    for note in (first, second, full):
        mine = [r for r in notes if r["number"] == note.number]
        assert sum(Decimal(r["net"]) for r in mine) == -note.net_amount
        assert sum(Decimal(r["tax"]) for r in mine) == -note.tax_amount
        assert sum(Decimal(r["gross"]) for r in mine) == -note.amount
        assert [(-Decimal(r["net"]), -Decimal(r["tax"]), -Decimal(r["gross"])) for r in mine] == [
            (line.net_amount, line.tax_amount, line.gross_amount) for line in note.tax_lines.all()
        ]
        for r in mine:
            assert Decimal(r["gross"]) < 0
            assert Decimal(r["net"]) + Decimal(r["tax"]) == Decimal(r["gross"])
            assert r["gross"].startswith("-")  # a number we wrote, never prefixed with '
            assert (r["due_date"], r["status"], r["method"], r["reference"]) == ("", "", "", "")
            assert r["currency"] == "USD"
    acme_rows = [r for r in notes if r["number"] in (first.number, second.number)]
    assert {(r["customer"], r["customer_tax_id"], r["tax_treatment"]) for r in acme_rows} == {
        ("Acme Builders", "DE123456789", "standard")
    }
    assert {r["credited_invoice"] for r in acme_rows} == {acme.number}
    reverse = [r for r in notes if r["number"] == full.number]
    assert [(r["customer_tax_id"], r["tax_treatment"], r["credited_invoice"]) for r in reverse] == [
        ("BE0123456789", "reverse_charge", globex.number)
    ]
    assert [(r["net"], r["tax"], r["gross"]) for r in reverse] == [("-600.00", "0.00", "-600.00")]
    # Every other row leaves the column blank.
    assert {r["credited_invoice"] for r in rows if r["document_type"] != "credit_note"} == {""}
    # The invoice and its credit notes together: what is still billed.
    billed = sum(
        Decimal(r["gross"]) for r in rows if acme.number in (r["number"], r["credited_invoice"])
    )
    assert billed == acme.amount - Decimal("177.77")


def test_only_credit_notes_issued_in_the_period_count(
    as_: Callable[[str], Api], admin: User, credited: dict[str, Any]
) -> None:
    acme, first = credited["acme"], credited["notes"][0]
    pay(acme, admin, "10.00", date(2026, 11, 14), "BANK-9")

    rows = csv_rows(export(as_("admin"), "2026-11-14", "2026-11-14"))

    assert [(r["document_type"], r["number"], r["gross"], r["credited_invoice"]) for r in rows] == [
        ("credit_note", first.number, "-60.14", acme.number),
        ("credit_note", first.number, "-17.63", acme.number),
        ("payment", acme.number, "7.73", ""),
        ("payment", acme.number, "2.27", ""),
    ]
    assert sum(Decimal(r["gross"]) for r in rows[:2]) == -first.amount


def test_json_holds_the_same_credit_note_rows(
    as_: Callable[[str], Api], credited: dict[str, Any]
) -> None:
    api = as_("staff")
    from_csv = csv_rows(export(api, "2026-11-01", "2026-11-30"))

    body = json.loads(b"".join(export(api, "2026-11-01", "2026-11-30", "json").streaming_content))

    assert body["columns"] == COLUMNS
    assert body["rows"] == from_csv
    assert sum(1 for r in body["rows"] if r["document_type"] == "credit_note") == 5


def test_jpy_and_kwd_credit_notes_keep_their_precision(
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
    on = datetime(2026, 11, 20, 12, tzinfo=UTC)
    yen = credit(send_on(jpy, admin, 1, NOVEMBER), admin, "11000", on)
    dinar = credit(send_on(kwd, admin, 1, NOVEMBER), admin, "100.001", on)

    rows = csv_rows(export(as_("staff"), "2026-11-20", "2026-11-20"))

    assert [(r["currency"], r["net"], r["tax"], r["gross"]) for r in rows] == [
        ("JPY", "-10000", "-1000", "-11000"),
        ("KWD", "-90.910", "-9.091", "-100.001"),
    ]
    assert (yen.net_amount, yen.tax_amount) == (Decimal(10000), Decimal(1000))
    assert (dinar.net_amount, dinar.tax_amount) == (Decimal("90.910"), Decimal("9.091"))
