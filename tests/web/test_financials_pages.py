"""The global financials page: filters in the URL, sorting with paging, totals for the
filter, sending selected drafts with a summary of each, and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.billing.report_data import drafts, project_with, sent
from tests.factories import CustomerFactory
from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.models import Customer, User
from tranche.billing.models import InvoiceStatus
from tranche.billing.services.sending import invoice_send

pytestmark = pytest.mark.django_db


def now() -> datetime:
    return timezone.now().astimezone(UTC)


def text(response: Any) -> str:
    return str(response.content.decode())


@pytest.fixture
def books(admin: User, customer_a: Customer, customer_b: Customer) -> dict[str, Any]:
    kitchen = project_with(admin, customer_a, title="Kitchen")
    k1, k2, k3, k4 = drafts(kitchen, admin)
    overdue = sent(k1, admin, days_ago=40, now=now())
    studio = project_with(admin, customer_b, milestones=2, total="3000.00", title="Studio")
    s1, s2 = drafts(studio, admin)
    pending = sent(s1, admin, days_ago=2, now=now())
    return {"overdue": overdue, "pending": pending, "drafts": [k2, k3, k4, s2]}


def test_staff_see_every_column_and_the_totals_per_currency(
    staff: User, books: dict[str, Any]
) -> None:
    page = text(signed_in(staff).get("/financials/"))
    for heading in ("Number", "Customer", "Project", "Milestone", "Status", "Amount", "Amount due"):
        assert f"<th>{heading}</th>" in page or f">{heading}</th>" in page
    overdue = books["overdue"]
    assert f'<a href="/invoices/{overdue.pk}/">{overdue.number}</a>' in page
    assert '<span class="badge inv-overdue">Overdue</span>' in page
    assert "<span>Overdue</span><strong>$250.00</strong>" in page
    assert "<span>Drafts to review</span><strong>4 · $2,250.00</strong>" in page
    assert "Send selected" not in page  # staff may not send
    assert 'type="checkbox"' not in page


def test_a_filtered_view_is_a_bookmarkable_address(staff: User, books: dict[str, Any]) -> None:
    overdue = books["overdue"]
    address = f"/financials/?q=kitchen&status=overdue&customer={overdue.customer_id}&sort=amount"
    page = text(signed_in(staff).get(address))
    assert page.count("<tr>") == 2  # the heading and one invoice
    assert overdue.number in page
    assert books["pending"].number not in page
    assert '<option value="overdue" selected>' in page
    assert f'<option value="{overdue.customer_id}" selected>' in page
    assert 'value="kitchen"' in page
    # The totals are the filter's, and the export link carries the same filter.
    assert "<span>Outstanding</span><strong>$250.00</strong>" in page
    assert "/financials/export.csv?q=kitchen&amp;status=overdue" in page


def test_invalid_filters_say_what_to_fix_and_list_nothing(
    staff: User, books: dict[str, Any]
) -> None:
    response = signed_in(staff).get(
        "/financials/?issued_from=yesterday&due_from=2026-05-02&due_to=2026-05-01&sort=x"
    )
    assert response.status_code == 400
    page = text(response)
    sentence = "The “from” issue date must be a date written like 2026-11-28 (year-month-day)."
    assert page.count(sentence) == 2  # in the live region and beside the field
    assert 'aria-describedby="e-issued-from"' in page
    assert "The due date range ends before it starts" in page
    assert "Sort by one of the listed orders." in page
    assert books["overdue"].number not in page


def test_a_customer_sees_her_invoices_and_never_a_draft_nor_anyone_else(
    alice: User, books: dict[str, Any]
) -> None:
    browser = signed_in(alice)
    page = text(browser.get("/financials/"))
    assert "<h1>Your invoices</h1>" in page
    overdue = books["overdue"]
    # Each number opens her invoice page, where the PDF and the receipts are.
    assert f'<a href="/invoices/{overdue.pk}/">{overdue.number}</a>' in page
    assert books["pending"].number not in page
    assert "Draft" not in page
    assert 'name="customer"' not in page
    assert "Export CSV" not in page
    # A filter on bob's customer or on drafts shows her nothing of theirs.
    other = text(browser.get(f"/financials/?customer={books['pending'].customer_id}"))
    assert books["pending"].number not in other
    assert browser.get("/financials/?status=draft").status_code == 400


def _queries(client: Client, path: str) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    return len(captured.captured_queries), text(response)


def test_a_page_of_the_list_costs_the_same_queries_with_one_invoice_or_fifty(
    admin: User, customer_a: Customer
) -> None:
    browser = signed_in(admin)
    small = project_with(admin, customer_a, milestones=1, total="100.00")
    [only] = drafts(small, admin)
    sent(only, admin, days_ago=3, now=now())
    one, _ = _queries(browser, "/financials/?sort=amount")

    big = project_with(admin, CustomerFactory.create(), milestones=50, total="5000.00")
    for n, invoice in enumerate(drafts(big, admin)[:30]):
        sent(invoice, admin, days_ago=n, now=now(), tick=False)
    fifty, page = _queries(browser, "/financials/?sort=amount")
    assert one == fifty
    assert "Page 1 of 3 · 51 invoices" in page


def test_paging_follows_the_sort_without_repeating_or_skipping_a_row(
    staff: User, admin: User, customer_a: Customer
) -> None:
    project = project_with(admin, customer_a, milestones=50, total="5000.00")
    made = drafts(project, admin)
    browser = signed_in(staff)
    seen: list[str] = []
    for number in (1, 2):
        page = text(browser.get(f"/financials/?sort=-amount&q=Boathouse&page={number}"))
        seen += [
            line.split("/invoices/")[1].split("/")[0]
            for line in page.splitlines()
            if 'class="number"' in line
        ]
    assert sorted(map(int, seen)) == sorted(i.pk for i in made)
    # Equal amounts: the newest id first, page after page.
    assert seen == [str(i.pk) for i in sorted(made, key=lambda i: -i.pk)]


# --- sending selected drafts --------------------------------------------------------------


def test_the_confirmation_says_how_many_drafts_and_their_total(
    admin: User, books: dict[str, Any]
) -> None:
    k2, k3, _k4, s2 = books["drafts"]
    browser = signed_in(admin)
    page = text(browser.get("/financials/"))
    assert f'aria-label="Select draft for Acme Builders: {k2.description}, $250.00"' in page
    assert "Send selected</button>" in page
    assert '<dialog id="send-confirm"' in page
    preview = text(
        browser.get(
            f"/financials/send-preview?invoice={k2.pk}&invoice={s2.pk}"
            f"&invoice={books['overdue'].pk}&next=/financials/%3Fstatus%3Ddraft"
        )
    )
    assert "Send 2 drafts?" in preview
    assert "<strong>$1,750.00</strong>" in preview
    assert "1 of the selected invoices is no longer a draft" in preview
    assert f'<input type="hidden" name="invoice" value="{k2.pk}">' in preview
    assert '<input type="hidden" name="next" value="/financials/?status=draft">' in preview
    assert "Nothing to send" in text(browser.get("/financials/send-preview"))
    assert k3.status == InvoiceStatus.DRAFT


def test_an_admin_sends_selected_drafts_and_reads_what_happened_to_each(
    admin: User, books: dict[str, Any], customer_a: Customer, after_commit: Any
) -> None:
    k2, k3, _k4, s2 = books["drafts"]
    k2 = invoice_send(actor=admin, invoice_id=k2.pk)
    # A draft is sent to its customer's billing email as it is when sent.
    Customer.objects.filter(pk=customer_a.pk).update(billing_email="")
    browser = signed_in(admin)
    with after_commit(execute=True):
        response = browser.post(
            "/financials/send",
            {"invoice": [s2.pk, k3.pk], "next": "/financials/?status=draft"},
        )
    assert response.status_code == 302
    assert response["Location"] == "/financials/?status=draft"

    page = text(browser.get(response["Location"]))
    k2.refresh_from_db()
    s2.refresh_from_db()
    k3.refresh_from_db()
    assert (k2.status, s2.status, k3.status) == ("pending", "pending", "draft")
    assert "1 invoice sent, 1 not sent: see below what stopped each one" in page
    assert "What happened to each invoice" in page
    assert f'<a href="/invoices/{s2.pk}/">{s2.number}</a>' in page
    assert (
        "Acme Builders has no billing email, so the invoice cannot be sent. Add one to the "
        "customer, then send again."
    ) in page
    assert (
        f'<a href="/customers/{customer_a.pk}/edit">Add a billing email to Acme Builders</a>'
        in page
    )
    # The summary is shown once.
    assert "What happened to each invoice" not in text(browser.get("/financials/"))


def test_sending_a_draft_already_sent_is_refused_with_its_reason(
    admin: User, books: dict[str, Any]
) -> None:
    overdue = books["overdue"]
    browser = signed_in(admin)
    with unchanged():
        browser.post("/financials/send", {"invoice": [overdue.pk]})
    page = text(browser.get("/financials/"))
    assert f"{overdue.number} is overdue; only a draft can be sent." in page
    assert f'<a href="/invoices/{overdue.pk}/">Open the invoice</a>' in page


@pytest.mark.parametrize("persona", ["staff", "alice", "bob"])
def test_only_an_admin_may_send_selected_drafts(
    persona: str, request: pytest.FixtureRequest, books: dict[str, Any]
) -> None:
    browser = signed_in(request.getfixturevalue(persona))
    ids = [i.pk for i in books["drafts"]]
    with unchanged():
        assert browser.post("/financials/send", {"invoice": ids}).status_code == 404
        preview = browser.get(f"/financials/send-preview?invoice={ids[0]}")
        assert preview.status_code == 404


def test_sending_nothing_says_to_select_drafts(admin: User) -> None:
    browser = signed_in(admin)
    with unchanged():
        response = browser.post("/financials/send", {"invoice": ["x"]})
    assert "Select at least one draft to send." in text(browser.get(response["Location"]))


# --- CSV -------------------------------------------------------------------------------------


def _csv(response: Any) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_the_export_streams_the_filtered_list_as_safe_csv(
    staff: User, admin: User, books: dict[str, Any]
) -> None:
    shady = CustomerFactory.create(name='=HYPERLINK("http://evil.example","Click")')
    project = project_with(admin, shady, milestones=1, total="1234.50", title="+Shed")
    [draft] = drafts(project, admin)

    response = signed_in(staff).get("/financials/export.csv?status=draft&sort=-amount")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="invoices-')
    rows = _csv(response)
    assert rows[0] == [
        "number",
        "status",
        "customer",
        "project",
        "milestone",
        "description",
        "currency",
        "amount",
        "amount_paid",
        "amount_credited",
        "amount_due",
        "issue_date",
        "due_date",
    ]
    assert len(rows) == 1 + 5  # four drafts of the books and the shady one
    assert [row[7] for row in rows[1:]] == ["1500.00", "1234.50", "250.00", "250.00", "250.00"]
    first = dict(zip(rows[0], rows[2], strict=True))
    assert first["customer"] == '\'=HYPERLINK("http://evil.example","Click")'
    assert first["project"] == "'+Shed"
    assert (first["currency"], first["amount"], first["amount_paid"], first["amount_due"]) == (
        "USD",
        "1234.50",
        "0.00",
        "1234.50",
    )
    assert first["issue_date"] == draft.issue_date.isoformat()
    assert {row[1] for row in rows[1:]} == {"draft"}


def test_the_export_is_staff_only_and_refuses_a_filter_it_cannot_read(
    alice: User, staff: User, books: dict[str, Any]
) -> None:
    assert signed_in(alice).get("/financials/export.csv").status_code == 404
    refused = signed_in(staff).get("/financials/export.csv?due_from=soon")
    assert refused.status_code == 400
    assert "The “from” due date must be a date" in text(refused)


def test_the_export_reads_the_rows_in_chunks(staff: User, books: dict[str, Any]) -> None:
    """Constant memory: the rows come from a server-side iterator, not a list."""
    from unittest import mock

    from django.db.models.query import QuerySet

    with mock.patch.object(
        QuerySet, "iterator", autospec=True, side_effect=QuerySet.iterator
    ) as it:
        rows = _csv(signed_in(staff).get("/financials/export.csv"))
    assert it.call_count == 1
    assert it.call_args.kwargs == {"chunk_size": 500}
    assert len(rows) == 1 + 6


def test_the_customer_filter_lists_every_customer_escaped_and_keeps_the_chosen_one(
    staff: User, customer_a: Customer
) -> None:
    """The customer select is built in one pass (a book has thousands of customers): a
    name is still text, never markup, and the chosen customer stays selected."""
    odd = CustomerFactory.create(name='Bobby "Tables" <script>alert(1)</script> & Co')
    browser = signed_in(staff)

    page = browser.get(f"/financials/?customer={odd.pk}").content.decode()

    assert "<script>alert(1)</script>" not in page
    assert (
        f'<option value="{odd.pk}" selected>'
        "Bobby &quot;Tables&quot; &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co</option>"
    ) in page
    assert f'<option value="{customer_a.pk}">{customer_a.name}</option>' in page
