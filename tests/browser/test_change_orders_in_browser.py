"""A change order in a real browser: staff draft one from the project's Contract tab,
add a line, check the preview and send it; the customer approves it online with her
typed name; the project's contract is then version 2. Every page visited passes the
axe, overflow and CSP checks (screenshots in var/screenshots/)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page
from tests.factories import make_project
from tranche.accounts.models import Customer, User
from tranche.projects.models import ChangeOrder

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_amend_the_contract_and_alice_approves_it_online(
    browser: Browser,
    live_server: Any,
    staff: User,
    admin: User,
    alice: User,
    customer_a: Customer,
    settings: Any,
) -> None:
    settings.BASE_URL = live_server.url
    project = make_project(actor=admin, customer=customer_a, title="Garden office")

    page = signed_in_page(browser, live_server, staff, LAPTOP)
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    page.get_by_role("link", name="Contract", exact=True).click()
    expect(page.locator("main")).to_contain_text("Version 1")
    check_page(page, "contract-tab")
    page.fill("#co-title", "Add a deck")
    page.fill("#co-summary", "A timber deck in front of the office.")
    page.get_by_role("button", name="Draft the change order").click()
    expect(page.locator("#messages")).to_contain_text("Change order drafted")
    page.fill("#line-1-description", "Timber deck")
    page.fill("#line-1-quantity", "1")
    page.fill("#line-1-unit_price", "500.00")
    page.get_by_role("button", name="Save and preview").click()
    expect(page.locator("#messages")).to_contain_text("Saved CO-1")
    expect(page.locator(".co-totals .co-total")).to_contain_text("$1,500.00")
    expect(page.locator(".co-milestones")).to_contain_text("$600.00")
    check_page(page, "change-order-staff-draft")
    page.get_by_role("button", name="Send to Acme Builders").click()
    expect(page.locator("#messages")).to_contain_text("Sent CO-1")
    page.context.close()

    customer = signed_in_page(browser, live_server, alice, PHONE)
    customer.goto(f"{live_server.url}/projects/{project.pk}/")
    customer.get_by_role("link", name="CO-1: Add a deck").click()
    expect(customer.locator("main")).to_contain_text("from $1,000.00 to $1,500.00")
    check_page(customer, "change-order-customer")
    customer.get_by_role("link", name="Decline…").click()
    expect(customer.locator("#decline-dialog")).to_be_visible()
    check_page(customer, "change-order-customer-decline")
    customer.locator("#decline-dialog").get_by_role("link", name="Keep it").click()
    customer.fill("#name", "Alice Anders")
    customer.check("#agree")
    customer.get_by_role("button", name="Approve the change order").click()
    expect(customer.locator("#messages")).to_contain_text("you approved CO-1")
    expect(customer.locator("main")).to_contain_text("The contract is now version 2")
    check_page(customer, "change-order-customer-approved")
    customer.context.close()

    order = ChangeOrder.objects.get()
    assert (order.approved_name, order.approved_ip) == ("Alice Anders", "127.0.0.1")
    project.refresh_from_db()
    assert project.contract_version == 2

    page = signed_in_page(browser, live_server, staff, PHONE)
    page.goto(f"{live_server.url}/projects/{project.pk}/contract")
    expect(page.locator("main")).to_contain_text("Version 2")
    expect(page.locator(".contract-history")).to_contain_text("approved by Alice Anders online")
    expect(page.locator(".contract-history")).to_contain_text("Added “Timber deck” ($500.00)")
    check_page(page, "contract-tab-version-2")
    page.goto(f"{live_server.url}/change-orders/{order.pk}/")
    check_page(page, "change-order-staff-approved")
    page.context.close()
