"""Quotes in a real browser: staff write a quote with a 30/30/40 schedule while the live
summary (htmx) shows the total and each step's amount, send it, and the customer accepts
it online with her typed name. Every page visited passes the axe, overflow and CSP checks
at a phone's and a laptop's width."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.quality import LAPTOP, PHONE, axe_violations, check_page, signed_in_page
from tests.factories import make_quote
from tranche.accounts.models import Customer, User
from tranche.notifications.models import OutboxEmail
from tranche.notifications.quotes import quote_send
from tranche.projects.models import Project
from tranche.sales.models import Quote

pytestmark = pytest.mark.django_db(transaction=True)


def add_step(page: Page, n: int, title: str, percentage: str) -> None:
    page.get_by_role("button", name="Add a schedule step").click()
    page.wait_for_load_state()
    page.fill(f"#item-{n}-title", title)
    page.fill(f"#item-{n}-percentage", percentage)


def test_staff_write_and_send_a_quote_and_alice_accepts_it_online(
    browser: Browser,
    live_server: Any,
    staff: User,
    alice: User,
    customer_a: Customer,
    settings: Any,
) -> None:
    settings.BASE_URL = live_server.url
    page = signed_in_page(browser, live_server, staff, LAPTOP)
    page.goto(f"{live_server.url}/quotes/new")
    page.select_option("#customer", label="Acme Builders")
    page.fill("#title", "Garden studio")
    page.fill("#line-1-description", "Design and build")
    page.fill("#line-1-unit_price", "1000.01")
    summary = page.locator("#quote-summary")
    expect(page.get_by_test_id("quote-total")).to_have_text("$1,000.01")

    add_step(page, 1, "Deposit", "30")
    add_step(page, 2, "Structure", "30")
    expect(page.get_by_test_id("percent-sum")).to_have_text("Billable shares add up to 60 %")
    expect(summary).to_contain_text(
        "Billable percentages add up to 60 %; they must add up to 100 %."
    )
    add_step(page, 3, "Handover", "40")
    expect(page.get_by_test_id("percent-sum")).to_have_text("Billable shares add up to 100 %")
    # Exactly as allocate() bills them: the leftover cent goes to the largest remainder.
    expect(page.get_by_test_id("step-1-amount")).to_have_text("$300.00")
    expect(page.get_by_test_id("step-2-amount")).to_have_text("$300.00")
    expect(page.get_by_test_id("step-3-amount")).to_have_text("$400.01")
    expect(summary).not_to_contain_text("must add up to 100 %")
    # A typo is pointed out before saving.
    page.fill("#line-1-unit_price", "1000.001")
    expect(summary).to_contain_text("has more decimal places than USD allows")
    page.fill("#line-1-unit_price", "1000.01")
    expect(summary).not_to_contain_text("decimal places")
    check_page(page, "quote-editor")

    page.get_by_role("button", name="Save draft", exact=True).last.click()
    expect(page.locator("#messages")).to_contain_text("Quote “Garden studio” created as a draft.")
    quote = Quote.objects.get()
    page.get_by_role("link", name="Send to customer").click()
    dialog = page.locator("#send-dialog")
    expect(dialog).to_contain_text("accounts@acme.example")
    dialog.get_by_role("button", name="Send the quote").click()
    expect(page.locator("#messages")).to_contain_text("sent to accounts@acme.example")
    email = OutboxEmail.objects.get()
    assert email.to == "accounts@acme.example"
    # The HTML email is accessible too. It is read in a mail program, so it is shown on
    # a blank page: written into the portal's page it would meet the portal's CSP, which
    # refuses the inline styles every email needs.
    page.goto("about:blank")
    page.set_content(email.body_html)
    assert axe_violations(page) == []
    page.context.close()

    customer = signed_in_page(browser, live_server, alice, PHONE)
    customer.goto(f"{live_server.url}/quotes/")
    expect(customer.get_by_role("link", name="Garden studio")).to_be_visible()
    check_page(customer, "quotes-customer-list")
    customer.get_by_role("link", name="Garden studio").click()
    expect(customer.locator("main")).to_contain_text("$400.01")
    check_page(customer, "quote-customer")
    customer.fill("#name", "Alice Anders")
    customer.check("#agree")
    customer.get_by_role("button", name="Accept the quote").click()
    expect(customer.locator("#messages")).to_contain_text("you accepted “Garden studio”")
    customer.get_by_role("link", name="See your project").click()
    expect(customer.locator("h1")).to_have_text("Garden studio")
    project = Project.objects.get(origin_quote=quote)
    assert project.milestones.count() == 3
    quote.refresh_from_db()
    assert quote.accepted_name == "Alice Anders"
    assert quote.accepted_ip == "127.0.0.1"
    customer.context.close()


def test_the_quote_pages_at_the_other_widths(
    browser: Browser, live_server: Any, staff: User, alice: User, admin: User, customer_a: Customer
) -> None:
    quote = make_quote(actor=admin, customer=customer_a, title="Kitchen extension")
    quote_send(actor=admin, quote_id=quote.pk)

    page = signed_in_page(browser, live_server, staff, PHONE)
    page.goto(f"{live_server.url}/quotes/")
    check_page(page, "quotes-staff-list")
    page.goto(f"{live_server.url}/quotes/{quote.pk}/")
    check_page(page, "quote-staff")
    page.get_by_role("link", name="Accept for the customer").click()
    expect(page.locator("#accept-dialog")).to_contain_text("with 3 milestones")
    page.locator("#accept-dialog").get_by_role("link", name="Cancel").click()
    page.goto(f"{live_server.url}/quotes/new")
    check_page(page, "quote-editor")
    page.context.close()

    customer = signed_in_page(browser, live_server, alice, LAPTOP)
    customer.goto(f"{live_server.url}/quotes/")
    check_page(customer, "quotes-customer-list")
    customer.goto(f"{live_server.url}/quotes/{quote.pk}/")
    check_page(customer, "quote-customer")
    customer.get_by_role("link", name="Decline…").click()
    expect(customer.locator("#decline-dialog")).to_be_visible()
    check_page(customer, "quote-customer-decline")
    customer.context.close()
