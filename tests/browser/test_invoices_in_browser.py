"""The invoice page in Chromium: the Send dialog and its preview, manual payments until
paid with a receipt, cancelling with a reason, and the customer's view; every page and
open dialog passes the axe, phone and CSP checks."""

from __future__ import annotations

import io
from typing import Any

import pytest
from playwright.sync_api import Browser, expect
from pypdf import PdfReader

from tests.billing.helpers import draft_for
from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page
from tranche.accounts.models import User
from tranche.billing.models import Invoice
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_sends_a_draft_records_two_transfers_and_cancels_another(
    browser: Browser, live_server: Any, admin: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    other = invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk)
    page = signed_in_page(browser, live_server, admin, LAPTOP)
    page.goto(f"{live_server.url}/invoices/{draft.pk}/")
    check_page(page, "invoice-admin-draft")

    page.click("#send-button")
    dialog = page.locator("dialog#send")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("accounts@acme.example")
    expect(dialog).to_contain_text("$300.00")
    expect(dialog.locator(".inv-email-text")).to_contain_text("Hello Casey Contact,")
    check_page(page, "invoice-admin-send-dialog")
    dialog.get_by_role("button", name="Send $300.00 to accounts@acme.example").click()
    messages = page.locator("#messages")
    expect(messages).to_contain_text("sent to accounts@acme.example for $300.00")
    draft.refresh_from_db()
    assert draft.number
    expect(page.locator(".page-head h1")).to_contain_text(f"Invoice {draft.number}")

    # A bank transfer for part of it, then the rest (the amount defaults to what is due).
    page.get_by_role("button", name=f"Record a payment on invoice {draft.number}").click()
    page.fill("#id_amount", "100.00")
    page.fill("#id_reference", "TRX-001")
    page.get_by_role("button", name="Record the payment").click()
    expect(messages).to_contain_text("$200.00 is still due.")
    page.get_by_role("button", name=f"Record a payment on invoice {draft.number}").click()
    expect(page.locator("#id_amount")).to_have_value("200.00")
    page.fill("#id_reference", "TRX-002")
    page.get_by_role("button", name="Record the payment").click()
    expect(messages).to_contain_text("It is paid in full.")
    expect(page.locator(".page-head h1 .badge")).to_have_text("Paid")
    check_page(page, "invoice-admin-paid")

    receipt = page.locator("a", has_text="Receipt (PDF)").last
    response = page.request.get(live_server.url + (receipt.get_attribute("href") or ""))
    assert response.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert f"For invoice {draft.number}" in text
    assert "Acme Builders" in text
    assert "Left to pay $0.00" in text

    page.goto(f"{live_server.url}/invoices/{other.pk}/")
    page.get_by_role("button", name=f"Cancel invoice {other.number}").click()
    page.fill("#id_reason", "The client paused the project")
    check_page(page, "invoice-admin-cancel-dialog")
    page.get_by_role("button", name="Cancel the invoice").click()
    expect(messages).to_contain_text(f"Invoice {other.number} cancelled.")
    expect(page.locator(".inv-timeline")).to_contain_text("The client paused the project")
    other.refresh_from_db()
    assert other.status == "cancelled"


def test_the_invoice_pages_hold_up_on_a_phone_for_staff_and_the_customer(
    browser: Browser, live_server: Any, admin: User, alice: User, project_a: Project
) -> None:
    draft = draft_for(project_a, 1, admin)
    sent: Invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 2, admin).pk)

    staff_phone = signed_in_page(browser, live_server, admin, PHONE)
    staff_phone.goto(f"{live_server.url}/invoices/{draft.pk}/#send")  # opens the dialog
    expect(staff_phone.locator("dialog#send")).to_be_visible()
    check_page(staff_phone, "invoice-admin-send-dialog-phone")
    staff_phone.goto(f"{live_server.url}/invoices/{sent.pk}/")
    check_page(staff_phone, "invoice-admin-sent-phone")

    for viewport, name in ((PHONE, "invoice-customer-phone"), (LAPTOP, "invoice-customer")):
        customer = signed_in_page(browser, live_server, alice, viewport)
        customer.goto(f"{live_server.url}/invoices/{sent.pk}/")
        expect(customer.locator(".page-head h1")).to_contain_text(f"Invoice {sent.number}")
        expect(customer.get_by_role("link", name="Pay $300.00")).to_be_visible()
        expect(customer.get_by_role("link", name="Download PDF")).to_be_visible()
        assert customer.locator(".inv-timeline").count() == 0
        check_page(customer, name)
