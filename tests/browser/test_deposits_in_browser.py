"""Deposits and retainage in a real browser: staff write a quote whose first step is billed
on acceptance (the live summary says so), send it; the customer accepts it online on a
phone and her project says "Waiting for deposit"; staff see the deposit's draft and the
project's retainage on the Financials tab. Every page passes the axe, overflow and CSP
checks, with a screenshot to look at."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page
from tests.browser.test_quotes_in_browser import add_step
from tranche.accounts.models import Customer, User
from tranche.billing.models import InvoiceStatus
from tranche.projects.models import Project
from tranche.projects.services import project_set_retainage
from tranche.sales.models import Quote

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_a_quote_with_a_deposit_is_accepted_and_the_project_waits_for_it(
    browser: Browser,
    live_server: Any,
    admin: User,
    staff: User,
    alice: User,
    customer_a: Customer,
    settings: Any,
) -> None:
    settings.BASE_URL = live_server.url
    page = signed_in_page(browser, live_server, staff, LAPTOP)
    page.goto(f"{live_server.url}/quotes/new")
    page.select_option("#customer", label="Acme Builders")
    page.fill("#title", "Kitchen refit")
    page.fill("#line-1-description", "Kitchen")
    page.fill("#line-1-unit_price", "8000")
    add_step(page, 1, "Deposit", "25")
    page.check("#item-1-deposit")
    add_step(page, 2, "Handover", "75")
    summary = page.locator("#quote-summary")
    expect(summary).to_contain_text("billed on acceptance (deposit)")
    expect(page.get_by_test_id("step-1-amount")).to_have_text("$2,000.00")
    check_page(page, "deposit-quote-editor")
    page.get_by_role("button", name="Save draft", exact=True).last.click()
    expect(page.locator("#messages")).to_contain_text("created as a draft")
    expect(page.locator("main")).to_contain_text("billed on acceptance (deposit)")
    page.get_by_role("link", name="Send to customer").click()
    page.locator("#send-dialog").get_by_role("button", name="Send the quote").click()
    expect(page.locator("#messages")).to_contain_text("sent to")
    quote = Quote.objects.get()
    page.context.close()

    customer = signed_in_page(browser, live_server, alice, PHONE)
    customer.goto(f"{live_server.url}/quotes/{quote.pk}/")
    expect(customer.locator("main")).to_contain_text("billed on acceptance (deposit)")
    check_page(customer, "deposit-quote-customer")
    customer.fill("#name", "Alice Anders")
    customer.check("#agree")
    customer.get_by_role("button", name="Accept the quote").click()
    expect(customer.locator("#messages")).to_contain_text("you accepted “Kitchen refit”")
    customer.get_by_role("link", name="See your project").click()
    expect(customer.locator("h1")).to_contain_text("Waiting for deposit")
    check_page(customer, "deposit-project-customer")
    customer.context.close()

    project = Project.objects.get(origin_quote=quote)
    invoice = project.invoices.get()
    assert (invoice.status, invoice.amount) == (InvoiceStatus.DRAFT, Decimal("2000.000"))
    project_set_retainage(actor=admin, project_id=project.pk, percentage=Decimal(10))

    office = signed_in_page(browser, live_server, admin, LAPTOP)
    office.goto(f"{live_server.url}/projects/{project.pk}/")
    expect(office.locator("h1")).to_contain_text("Waiting for deposit")
    check_page(office, "deposit-project-staff")
    office.goto(f"{live_server.url}/projects/?status=waiting_for_deposit")
    expect(office.get_by_role("link", name="Kitchen refit")).to_be_visible()
    check_page(office, "deposit-project-list")
    office.goto(f"{live_server.url}/projects/{project.pk}/financials")
    expect(office.get_by_test_id("retainage-held")).to_have_text("$0.00")
    expect(office.locator("#retainage-percentage")).to_have_value("10")
    check_page(office, "retainage-financials")
    office.context.close()
