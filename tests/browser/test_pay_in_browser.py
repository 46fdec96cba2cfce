"""End to end in a real browser: an admin sends a draft, the customer opens the payment
link and pays with the sandbox card, the invoice is paid once and one receipt leaves."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import Page

from tests.billing.helpers import draft_for
from tests.factories import PASSWORD, make_project
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice, InvoiceStatus, Payment
from tranche.notifications.models import OutboxEmail

pytestmark = pytest.mark.django_db(transaction=True)


def test_send_then_pay_on_the_pay_page(
    page: Page, live_server: Any, admin: User, customer_a: Customer, settings: Any
) -> None:
    settings.BASE_URL = live_server.url
    project = make_project(actor=admin, customer=customer_a, title="Conservatory")
    draft = draft_for(project, 1, admin)

    # Anything the Content-Security-Policy blocks shows up as a console error.
    blocked: list[str] = []
    page.on(
        "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
    )

    # The admin signs in and presses Send in the global financials view.
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", admin.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/financials/")
    page.click("button[aria-label^='Send draft for']")
    page.click("dialog#send-confirm button:has-text('Send 1 invoice')")
    page.wait_for_selector("text=Invoice sent")

    invoice = Invoice.objects.get(pk=draft.pk)
    assert invoice.status == InvoiceStatus.PENDING
    [sent_email] = [m for m in mail.outbox if m.subject.startswith("Invoice ")]
    assert invoice.payment_link
    assert invoice.payment_link in sent_email.body

    # The customer follows the emailed link: first a declined card, then the test card.
    customer = page.context.browser.new_page()  # type: ignore[union-attr]
    customer.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    customer.goto(invoice.payment_link)
    assert customer.is_visible("text=Sandbox — no real money")
    assert customer.is_visible(f"text=Invoice {invoice.number}")
    customer.fill("#card_number", "4000 0000 0000 0002")
    customer.click("button:has-text('Pay $300.00')")
    customer.wait_for_selector("text=Your card was declined")
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PENDING

    customer.fill("#card_number", "4242 4242 4242 4242")
    customer.click("button:has-text('Pay $300.00')")
    customer.wait_for_selector("text=Paid on")
    assert not customer.is_visible("#card_number")
    customer.screenshot(path=str(settings.VAR_DIR / "pay-page-paid.png"))

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert Payment.objects.filter(invoice=invoice).count() == 1
    receipts = OutboxEmail.objects.filter(kind="invoice_paid")
    assert receipts.count() == 1
    assert [m.subject for m in mail.outbox if m.subject.startswith("Receipt")] == [
        receipts.get().subject
    ]

    # Reloading and paying again is impossible.
    customer.reload()
    assert customer.is_visible("text=Paid on")
    assert customer.locator("#card_number").count() == 0
    customer.close()
    assert blocked == []
