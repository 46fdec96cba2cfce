"""The staff dashboard reads the same few rows at 100 or 100,000 invoices (issue 11): its
"do these first" lists (the five most overdue open invoices, the five oldest drafts) are
read from partial indexes in their order and stopped after five, and its 12-month chart
from an index holding the invoiced amounts (billing 0015). Measured at 100,000 invoices
(`make bench`'s data): 94 → 49 ms of database time for the page's reads.

The plans are asked of PostgreSQL with sequential scans off, as a large table would make
the planner choose: on a handful of rows any plan is cheap, so the question is only
whether an index serves each read without a sort of every matching invoice."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.factories import make_project
from tranche.accounts.models import Customer, User
from tranche.billing.reports import staff_dashboard
from tranche.billing.services.sending import invoice_send

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="query plans are PostgreSQL's; SQLite has its own"
    ),
]


def plans_of_the_dashboard() -> dict[str, str]:
    """Each of the dashboard's invoice reads, by what it reads, with its plan."""
    with CaptureQueriesContext(connection) as reads:
        staff_dashboard(now=timezone.now())
    plans = {}
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in reads.captured_queries:
            sql = query["sql"]
            if 'FROM "billing_invoice"' not in sql:
                continue
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            if "DATE_TRUNC" in sql:
                plans["chart"] = plan
            elif "'draft'" in sql and "ORDER BY" in sql and "created_at" in sql:
                plans["oldest drafts"] = plan
            elif "ORDER BY" in sql and "due_date" in sql:
                plans["most overdue"] = plan
    return plans


def test_the_dashboards_lists_and_chart_read_their_indexes(
    admin: User, customer_a: Customer
) -> None:
    for _ in range(3):
        project = make_project(actor=admin, customer=customer_a)
        invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
        draft_for(project, 2, admin)

    plans = plans_of_the_dashboard()

    assert sorted(plans) == ["chart", "most overdue", "oldest drafts"]
    assert "invoice_open_by_due_date" in plans["most overdue"], plans["most overdue"]
    assert "invoice_draft_by_age" in plans["oldest drafts"], plans["oldest drafts"]
    assert "invoice_issued_amounts" in plans["chart"], plans["chart"]
    for name in ("most overdue", "oldest drafts"):
        assert "Sort" not in plans[name], plans[name]  # read in order, stopped after five
