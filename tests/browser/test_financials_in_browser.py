"""Global financials, the dashboard and the customer home in a real browser: an admin
filters the list, ticks two drafts, confirms in the dialog and reads what happened to
each; downloads the filtered CSV; staff and customer home pages pass the page checks at
phone and laptop widths."""

from __future__ import annotations

import csv
from datetime import UTC
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Browser

from tests.billing.report_data import drafts, project_with, sent
from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page
from tests.factories import CustomerFactory
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice, InvoiceStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def books(
    admin: User, customer_a: Customer, customer_b: Customer, live_server: Any, settings: Any
) -> dict[str, Any]:
    settings.BASE_URL = live_server.url
    now = timezone.now().astimezone(UTC)
    kitchen = project_with(admin, customer_a, milestones=2, total="1000.00", title="Kitchen")
    k1, k2 = drafts(kitchen, admin)
    overdue = sent(k1, admin, days_ago=40, now=now)
    upcoming = sent(k2, admin, days_ago=1, now=now)
    studio = project_with(admin, customer_b, milestones=2, total="3000.00", title="Studio")
    s1, _s2 = drafts(studio, admin)
    nomail = CustomerFactory.create(name="Quiet Co", billing_email="")
    shed = project_with(admin, nomail, milestones=1, total="400.00", title="Shed")
    [q1] = drafts(shed, admin)
    return {"overdue": overdue, "upcoming": upcoming, "studio_draft": s1, "quiet_draft": q1}


def test_an_admin_filters_sends_two_drafts_and_exports_the_list(
    browser: Browser, live_server: Any, admin: User, books: dict[str, Any]
) -> None:
    page = signed_in_page(browser, live_server, admin, LAPTOP)
    page.goto(f"{live_server.url}/financials/")
    page.select_option("#f-status", "draft")
    page.click("button:has-text('Show invoices')")
    page.wait_for_url("**/financials/?*status=draft*")
    check_page(page, "financials-drafts")

    studio, quiet = books["studio_draft"], books["quiet_draft"]
    page.get_by_label(f"Select draft for Globex Studio: {studio.description}, $1,500.00").check()
    page.get_by_label(f"Select draft for Quiet Co: {quiet.description}, $400.00").check()
    page.click("button:has-text('Send selected')")
    dialog = page.locator("dialog#send-confirm")
    dialog.get_by_text("Send 2 drafts?").wait_for()
    assert "$1,900.00" in dialog.inner_text()
    check_page(page, "financials-send-confirm")
    dialog.get_by_role("button", name="Send 2 invoices").click()

    summary = page.locator(".send-summary")
    summary.wait_for()
    studio.refresh_from_db()
    quiet.refresh_from_db()
    assert (studio.status, quiet.status) == (InvoiceStatus.PENDING, InvoiceStatus.DRAFT)
    assert "1 invoice sent, 1 not sent" in page.locator("#messages").inner_text()
    assert page.evaluate("document.activeElement.id") == "messages"
    assert studio.number in summary.inner_text()
    assert "Quiet Co has no billing email" in summary.inner_text()
    fix = summary.get_by_role("link", name="Add a billing email to Quiet Co")
    assert fix.get_attribute("href") == f"/customers/{quiet.customer_id}/edit"
    assert "status=draft" in page.url  # back on the filtered view
    check_page(page, "financials-sent-summary")

    # The export of this filter: the drafts still waiting, newest first.
    with page.expect_download() as download_info:
        page.click("text=Export CSV")
    download = download_info.value
    assert download.suggested_filename.startswith("invoices-")
    with open(download.path(), newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["number", "status", "customer"]
    assert [(r[1], r[2], r[7]) for r in rows[1:]] == [
        ("draft", "Quiet Co", "400.00"),
        ("draft", "Globex Studio", "1500.00"),
    ]

    phone = signed_in_page(browser, live_server, admin, PHONE)
    phone.goto(f"{live_server.url}/financials/")
    phone.get_by_role("button", name="Send selected").wait_for()
    check_page(phone, "financials")


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
def test_the_dashboard_and_the_customer_home_pass_the_page_checks(
    viewport: dict[str, int],
    browser: Browser,
    live_server: Any,
    staff: User,
    alice: User,
    books: dict[str, Any],
) -> None:
    page = signed_in_page(browser, live_server, staff, viewport)
    page.goto(f"{live_server.url}/")
    page.get_by_role("img", name="Bar chart of the amounts invoiced and paid in USD").wait_for()
    overdue: Invoice = books["overdue"]
    link = page.locator(".urgent-list").get_by_role("link", name=overdue.number or "")
    assert link.get_attribute("href") == f"/invoices/{overdue.pk}/"
    check_page(page, "dashboard")

    home = signed_in_page(browser, live_server, alice, viewport)
    home.goto(f"{live_server.url}/")
    pay = home.get_by_role("link", name=f"Pay $500.00 for invoice {overdue.number}")
    assert pay.get_attribute("href") == overdue.payment_link
    assert "Globex" not in home.content()
    check_page(home, "customer-home")
