"""The financial reports: the invoice list as filtered, sorted and exported, the staff
dashboard's position per currency, and a customer's own home summary."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.billing.report_data import drafts, paid, project_with, sent
from tests.factories import CustomerFactory
from tranche.accounts.models import Customer, User
from tranche.billing import reports
from tranche.billing.selectors import InvoiceFilter
from tranche.billing.services.reminders import invoices_tick

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


# --- reading the list's filters ------------------------------------------------------------


def test_filters_are_read_from_the_query_string(admin: User) -> None:
    query = reports.invoice_query(
        {
            "q": " INV-2026 ",
            "status": "overdue",
            "customer": "7",
            "project": "9",
            "issued_from": "2026-01-01",
            "issued_to": "2026-06-30",
            "due_from": "2026-02-01",
            "due_to": "2026-07-31",
            "sort": "-amount",
        },
        user=admin,
    )
    assert query.errors == {}
    assert query.filter == InvoiceFilter(
        status="overdue",
        customer_id=7,
        project_id=9,
        search="INV-2026",
        issued_from=date(2026, 1, 1),
        issued_to=date(2026, 6, 30),
        due_from=date(2026, 2, 1),
        due_to=date(2026, 7, 31),
    )
    assert query.sort == "-amount"


def test_values_that_cannot_be_read_are_named_field_by_field(admin: User) -> None:
    query = reports.invoice_query(
        {
            "status": "lost",
            "customer": "abc",
            "project": "-3",
            "issued_from": "28/11/2026",
            "due_from": "2026-05-01",
            "due_to": "2026-04-01",
            "sort": "colour",
        },
        user=admin,
    )
    assert query.errors == {
        "status": "Unknown status 'lost'; use one of draft, pending, partially_paid, paid, "
        "overdue, credited, cancelled.",
        "customer": "The customer filter must be one of the listed customers.",
        "project": "The project filter must be one of the listed projects.",
        "issued_from": "The “from” issue date must be a date written like 2026-11-28 "
        "(year-month-day).",
        "due_to": "The due date range ends before it starts: pick a later “to” date.",
        "sort": "Sort by one of the listed orders.",
    }


def test_a_customer_cannot_filter_on_drafts_nor_on_another_customer(alice: User) -> None:
    query = reports.invoice_query({"status": "draft", "customer": "99"}, user=alice)
    assert "status" in query.errors
    assert "draft" not in query.errors["status"].split("use one of ")[1]
    assert query.filter.customer_id is None


# --- the list, its sorting and its totals -----------------------------------------------


@pytest.fixture
def books(admin: User, customer_a: Customer, customer_b: Customer) -> dict[str, Any]:
    """Acme: a 1000.00 kitchen in four 250.00 steps, two sent (one overdue, one paid);
    Globex: a 3000.00 studio in two 1500.00 steps, one sent; and a JPY draft."""
    kitchen = project_with(admin, customer_a, title="Kitchen")
    k1, k2, k3, k4 = drafts(kitchen, admin)
    overdue = sent(k1, admin, days_ago=40, now=NOW)  # due 26 days ago
    settled = paid(sent(k2, admin, days_ago=10, now=NOW), admin, on=NOW)
    studio = project_with(admin, customer_b, milestones=2, total="3000.00", title="Studio")
    s1, s2 = drafts(studio, admin)
    pending = sent(s1, admin, days_ago=2, now=NOW)
    tokyo = project_with(admin, customer_b, milestones=1, total="50000", currency="JPY")
    [yen] = drafts(tokyo, admin)
    return {
        "overdue": overdue,
        "paid": settled,
        "pending": pending,
        "drafts": [k3, k4, s2, yen],
        "kitchen": kitchen,
    }


def test_the_list_is_searched_by_number_customer_or_project(
    admin: User, books: dict[str, Any]
) -> None:
    def found(q: str) -> set[int]:
        query = reports.invoice_query({"q": q}, user=admin)
        return {i.pk for i in reports.invoice_list(user=admin, query=query)}

    assert found(books["pending"].number) == {books["pending"].pk}
    assert found("globex") == {books["pending"].pk, books["drafts"][2].pk, books["drafts"][3].pk}
    assert found("KITCH") == {
        books["overdue"].pk,
        books["paid"].pk,
        books["drafts"][0].pk,
        books["drafts"][1].pk,
    }


def test_filters_narrow_the_list_and_its_totals_alike(admin: User, books: dict[str, Any]) -> None:
    overdue = books["overdue"]
    query = reports.invoice_query(
        {"status": "overdue", "due_to": (TODAY - timedelta(days=20)).isoformat()}, user=admin
    )
    assert [i.pk for i in reports.invoice_list(user=admin, query=query)] == [overdue.pk]
    [totals] = reports.invoice_list_totals(user=admin, query=query)
    assert (totals.currency, totals.overdue_amount, totals.outstanding_amount) == (
        "USD",
        overdue.amount,
        overdue.amount,
    )

    issued_lately = reports.invoice_query(
        {"issued_from": (TODAY - timedelta(days=15)).isoformat(), "status": "paid"}, user=admin
    )
    assert [i.pk for i in reports.invoice_list(user=admin, query=issued_lately)] == [
        books["paid"].pk
    ]
    by_customer = reports.invoice_query({"customer": str(books["pending"].customer_id)}, user=admin)
    assert {t.currency for t in reports.invoice_list_totals(user=admin, query=by_customer)} == {
        "USD",
        "JPY",
    }


def test_sorting_orders_the_whole_list_and_drafts_have_no_number_to_sort_by(
    admin: User, books: dict[str, Any]
) -> None:
    def order(sort: str) -> list[str]:
        query = reports.invoice_query({"sort": sort, "status": ""}, user=admin)
        return [
            f"{i.currency} {i.amount}" if sort.endswith("amount") else (i.number or "draft")
            for i in reports.invoice_list(user=admin, query=query)
        ]

    assert order("-amount") == [
        "JPY 50000.000",
        "USD 1500.000",
        "USD 1500.000",
        "USD 250.000",
        "USD 250.000",
        "USD 250.000",
        "USD 250.000",
    ]
    numbered = sorted([books["overdue"].number, books["paid"].number, books["pending"].number])
    assert order("number") == [*numbered, "draft", "draft", "draft", "draft"]
    assert order("-number") == [*reversed(numbered), "draft", "draft", "draft", "draft"]


def test_a_customer_lists_only_her_own_sent_invoices(alice: User, books: dict[str, Any]) -> None:
    query = reports.invoice_query({}, user=alice)
    assert {i.pk for i in reports.invoice_list(user=alice, query=query)} == {
        books["overdue"].pk,
        books["paid"].pk,
    }
    [totals] = reports.invoice_list_totals(user=alice, query=query)
    assert totals.draft_count == 0


def test_the_api_and_the_page_share_one_filter(as_: Any, books: dict[str, Any]) -> None:
    customer_id = books["overdue"].customer_id
    customer_id = books["overdue"].customer_id
    listed = as_("staff").get(f"/api/invoices?status=overdue&customer_id={customer_id}")
    assert [i["id"] for i in listed.body["items"]] == [books["overdue"].pk]
    refused = as_("staff").get("/api/invoices?status=lost")
    assert (refused.status, refused.body["code"]) == (422, "status_invalid")


# --- CSV ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rReturn", "'\rReturn"),
        ("Acme = fine", "Acme = fine"),
        ("1500.00", "1500.00"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_made_text(cell: str, safe: str) -> None:
    assert reports.csv_safe(cell) == safe


# --- sending several drafts: the confirmation ---------------------------------------------------


def test_the_confirmation_counts_the_drafts_and_totals_them_per_currency(
    admin: User, books: dict[str, Any]
) -> None:
    k3, k4, _s2, yen = books["drafts"]
    preview = reports.send_preview(
        user=admin, invoice_ids=[k3.pk, k4.pk, yen.pk, books["paid"].pk, 999999]
    )
    assert [d.pk for d in preview.drafts] == [k3.pk, k4.pk, yen.pk]
    assert [str(t) for t in preview.totals] == ["¥50,000", "$500.00"]
    assert preview.skipped == 2


# --- the dashboard ------------------------------------------------------------------------------


def test_the_dashboard_ages_what_is_overdue_and_counts_the_drafts(
    admin: User, customer_a: Customer
) -> None:
    project = project_with(admin, customer_a, milestones=5, total="5000.00")
    d1, d2, d3, d4, d5 = drafts(project, admin, now=NOW - timedelta(days=3))
    # Sent n days ago, due 14 days later: 5, 45, 80 and 120 days past due.
    for invoice, days in ((d1, 19), (d2, 59), (d3, 94), (d4, 134)):
        sent(invoice, admin, days_ago=days, now=NOW)
    paid(d2, admin, on=NOW - timedelta(days=1), amount="400.00")
    dashboard = reports.staff_dashboard(now=NOW)

    [usd_position] = dashboard.positions
    assert [(b.label, str(b.amount)) for b in usd_position.aging] == [
        ("1 to 30 days", "$1,000.00"),
        ("31 to 60 days", "$600.00"),
        ("61 to 90 days", "$1,000.00"),
        ("Over 90 days", "$1,000.00"),
    ]
    assert str(usd_position.overdue) == "$3,600.00"
    assert str(usd_position.outstanding) == "$3,600.00"
    assert (usd_position.draft_count, str(usd_position.draft_amount)) == (1, "$1,000.00")
    assert str(usd_position.paid_this_month) == "$400.00"

    bars = dashboard.chart["USD"]
    assert next(b.month for b in bars) == date(2025, 12, 1)
    assert [b.month for b in bars][-1] == date(2026, 11, 1)
    invoiced = {b.month.month: str(b.invoiced) for b in bars if b.invoiced.amount}
    assert invoiced == {7: "$1,000.00", 8: "$1,000.00", 9: "$1,000.00", 11: "$1,000.00"}

    # The most overdue first; the draft has waited three days.
    assert [(u.kind, u.days, u.invoice.pk) for u in dashboard.urgent] == [
        ("overdue", 120, d4.pk),
        ("overdue", 80, d3.pk),
        ("overdue", 45, d2.pk),
        ("overdue", 5, d1.pk),
        ("draft", 3, d5.pk),
    ]


def test_the_dashboard_keeps_currencies_apart(admin: User, customer_a: Customer) -> None:
    project_with(admin, customer_a, milestones=1, total="1000.00")
    yen = project_with(admin, customer_a, milestones=1, total="70000", currency="JPY")
    drafts(yen, admin)
    dashboard = reports.staff_dashboard(now=NOW)
    assert [(p.currency, p.draft_count, str(p.draft_amount)) for p in dashboard.positions] == [
        ("JPY", 1, "¥70,000"),
    ]


def _queries(run: Any) -> int:
    with CaptureQueriesContext(connection) as captured:
        run()
    return len(captured.captured_queries)


def test_the_dashboard_costs_the_same_queries_with_one_invoice_or_fifty(
    admin: User, customer_a: Customer
) -> None:
    small = project_with(admin, customer_a, milestones=1, total="100.00")
    [only] = drafts(small, admin)
    sent(only, admin, days_ago=30, now=NOW)
    one = _queries(lambda: reports.staff_dashboard(now=NOW))

    big = project_with(admin, CustomerFactory.create(), milestones=50, total="5000.00")
    many = drafts(big, admin)
    for n, invoice in enumerate(many[:20]):
        done = sent(invoice, admin, days_ago=20 + n * 10, now=NOW, tick=False)
        paid(done, admin, on=NOW, amount="50.00")
    invoices_tick(now=NOW)
    fifty = _queries(lambda: reports.staff_dashboard(now=NOW))
    assert one == fifty <= 6


# --- a customer's home ----------------------------------------------------------------------------


def test_a_customer_home_shows_only_her_balance_next_payment_and_overdue(
    admin: User, alice: User, customer_a: Customer, customer_b: Customer
) -> None:
    mine = project_with(admin, customer_a, milestones=4, total="1000.00")
    m1, m2, m3, _m4 = drafts(mine, admin)
    late = sent(m1, admin, days_ago=30, now=NOW)  # due 16 days ago
    upcoming = sent(m2, admin, days_ago=1, now=NOW)
    paid(sent(m3, admin, days_ago=2, now=NOW), admin, on=NOW)
    theirs = project_with(admin, customer_b, milestones=1, total="9999.00")
    [b1] = drafts(theirs, admin)
    sent(b1, admin, days_ago=40, now=NOW)

    home = reports.customer_home(user=alice, now=NOW)
    assert [str(b) for b in home.balances] == ["$500.00"]
    assert [i.pk for i in home.overdue] == [late.pk]
    assert home.overdue_count == 1
    assert home.next_payment is not None
    assert home.next_payment.pk == upcoming.pk
    assert [p.pk for p in home.projects] == [mine.pk]


def test_a_customer_home_costs_the_same_queries_with_one_invoice_or_fifty(
    admin: User, alice: User, customer_a: Customer
) -> None:
    small = project_with(admin, customer_a, milestones=1, total="100.00")
    [only] = drafts(small, admin)
    sent(only, admin, days_ago=30, now=NOW)
    one = _queries(lambda: reports.customer_home(user=alice, now=NOW))
    big = project_with(admin, customer_a, milestones=50, total="5000.00")
    for n, invoice in enumerate(drafts(big, admin)):
        sent(invoice, admin, days_ago=n * 3, now=NOW, tick=False)
    invoices_tick(now=NOW)
    fifty = _queries(lambda: reports.customer_home(user=alice, now=NOW))
    assert one == fifty <= 4
    home = reports.customer_home(user=alice, now=NOW)
    assert len(home.overdue) == reports.OVERDUE_SHOWN
    assert home.overdue_count > reports.OVERDUE_SHOWN
