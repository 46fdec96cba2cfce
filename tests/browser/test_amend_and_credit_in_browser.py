"""The money model's whole story in Chromium: a contract with a sent invoice is amended by
a change order the customer approves online, and an admin then issues a credit note on
the invoice already sent. The sent invoice never changes; the project reads version 2;
what the customer owes falls by the credit note."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.billing.helpers import draft_for
from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page
from tests.factories import make_project
from tranche.accounts.models import Customer, User
from tranche.billing.models import CreditNote, Invoice
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import ChangeOrder

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_contract_amended_by_the_customer_then_an_invoice_credited(
    browser: Browser,
    live_server: Any,
    admin: User,
    alice: User,
    customer_a: Customer,
    settings: Any,
) -> None:
    settings.BASE_URL = live_server.url
    project = make_project(actor=admin, customer=customer_a, title="Garden office")
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    before: dict[str, Any] = dict(Invoice.objects.filter(pk=sent.pk).values().get())

    # Staff amend the contract: a $500.00 deck on top of the $1,000.00 build.
    page = signed_in_page(browser, live_server, admin, LAPTOP)
    page.goto(f"{live_server.url}/projects/{project.pk}/contract")
    page.fill("#co-title", "Add a deck")
    page.get_by_role("button", name="Draft the change order").click()
    page.fill("#line-1-description", "Timber deck")
    page.fill("#line-1-quantity", "1")
    page.fill("#line-1-unit_price", "500.00")
    page.get_by_role("button", name="Save and preview").click()
    expect(page.locator(".co-totals .co-total")).to_contain_text("$1,500.00")
    page.get_by_role("button", name="Send to Acme Builders").click()
    expect(page.locator("#messages")).to_contain_text("Sent CO-1")

    # Alice approves it on her phone with her typed name.
    phone = signed_in_page(browser, live_server, alice, PHONE)
    phone.goto(f"{live_server.url}/projects/{project.pk}/")
    phone.get_by_role("link", name="CO-1: Add a deck").click()
    phone.fill("#name", "Alice Anders")
    phone.check("#agree")
    phone.get_by_role("button", name="Approve the change order").click()
    expect(phone.locator("main")).to_contain_text("The contract is now version 2")
    check_page(phone, "amend-and-credit-approved")

    # The admin credits $50.00 on the invoice sent before the amendment.
    page.goto(f"{live_server.url}/invoices/{sent.pk}/")
    page.get_by_role("button", name=f"Issue credit note on invoice {sent.number}").click()
    page.fill("#id_credit-amount", "50.00")
    page.fill("#id_credit-reason", "Deck boards delivered late")
    page.locator("dialog#credit").get_by_role("button", name="Issue the credit note").click()
    note = CreditNote.objects.get()
    expect(page.locator("#messages")).to_contain_text(f"Credit note {note.number} for $50.00")
    expect(page.locator(".summary")).to_contain_text("$250.00")
    check_page(page, "amend-and-credit-invoice")

    # Alice sees the credit note on her invoice and pays only what is left.
    phone.goto(f"{live_server.url}/invoices/{sent.pk}/")
    expect(phone.locator("body")).to_contain_text(note.number)
    expect(phone.get_by_role("link", name=f"Pay $250.00 for invoice {sent.number}")).to_be_visible()

    order = ChangeOrder.objects.get()
    project.refresh_from_db()
    assert (project.contract_version, project.contract_total) == (2, Decimal("1500.00"))
    assert (order.approved_name, note.invoice_id, note.amount) == (
        "Alice Anders",
        sent.pk,
        Decimal("50.00"),
    )
    after: dict[str, Any] = dict(Invoice.objects.filter(pk=sent.pk).values().get())
    changed = {key for key in before if before[key] != after[key]}
    assert changed == {"amount_credited", "updated_at"}
