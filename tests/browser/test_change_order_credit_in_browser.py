"""A change order below what was invoiced in a real browser: Alice's portal says staff
approve it (no signature form), staff approve it with the credit note from the change
order's page. Every page visited passes the axe, overflow and CSP checks."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.billing.change_order_helpers import change_order, line, sent
from tests.billing.helpers import draft_for
from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page
from tests.factories import make_project
from tranche.accounts.models import Customer, User
from tranche.billing.models import CreditNote
from tranche.notifications.change_orders import change_order_send

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_approve_a_lower_contract_with_a_credit_note(
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
    sent(draft_for(project, 1, admin), admin)  # 300.00 invoiced
    order = change_order(project, admin, line("Build", "200.00"), title="Smaller office")
    change_order_send(actor=admin, change_order_id=order.pk)

    customer = signed_in_page(browser, live_server, alice, PHONE)
    customer.goto(f"{live_server.url}/change-orders/{order.pk}/")
    expect(customer.locator("main")).to_contain_text("cannot be approved online")
    expect(customer.locator("#name")).to_have_count(0)
    check_page(customer, "change-order-customer-shortfall")
    customer.context.close()

    page = signed_in_page(browser, live_server, staff, LAPTOP)
    page.goto(f"{live_server.url}/change-orders/{order.pk}/")
    check_page(page, "change-order-staff-shortfall")
    page.get_by_role("button", name="Record approval and credit $100.00").click()
    expect(page.locator("#messages")).to_contain_text("credit notes were issued")
    expect(page.locator(".co-milestones")).to_contain_text("Invoiced, less credit notes")
    check_page(page, "change-order-staff-credited")
    assert CreditNote.objects.get().amount == 100
