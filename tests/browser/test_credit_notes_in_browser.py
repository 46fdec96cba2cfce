"""Credit notes in Chromium: an admin issues a partial credit note from the invoice page's
dialog, the customer finds it on her invoice and in her list (with its Factur-X file);
the pages and the open dialog pass the axe, phone and CSP checks, at 1366 and 390 pixels
wide."""

from __future__ import annotations

import io
from typing import Any

import facturx
import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect
from pypdf import PdfReader

from tests.billing.helpers import draft_for
from tests.browser.quality import LAPTOP, PHONE, SHOTS, check_page, signed_in_page
from tranche.accounts.models import User
from tranche.billing.models import CreditNote
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_issues_a_partial_credit_note_and_the_customer_sees_it(
    browser: Browser, live_server: Any, admin: User, alice: User, project_a: Project
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    page = signed_in_page(browser, live_server, admin, LAPTOP)
    page.goto(f"{live_server.url}/invoices/{invoice.pk}/")
    page.get_by_role("button", name=f"Issue credit note on invoice {invoice.number}").click()
    dialog = page.locator("dialog#credit")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("up to $300.00")
    page.fill("#id_credit-amount", "45.50")
    page.fill("#id_credit-reason", "Two days of delay on site")
    check_page(page, "credit-note-dialog")
    dialog.get_by_role("button", name="Issue the credit note").click()

    note = CreditNote.objects.get()
    messages = page.locator("#messages")
    expect(messages).to_contain_text(f"Credit note {note.number} for $45.50 issued")
    expect(page.locator(".summary")).to_contain_text("$254.50")
    expect(page.locator(".inv-timeline")).to_contain_text("Two days of delay on site")
    check_page(page, "credit-note-issued-admin")

    link = page.get_by_role("link", name=f"Credit note {note.number} (PDF)")
    response = page.request.get(live_server.url + (link.get_attribute("href") or ""))
    assert response.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert f"Credit note {note.number}" in text
    assert f"For invoice {invoice.number}" in text
    assert "$45.50" in text
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "credit-note.pdf").write_bytes(response.body())  # beside the screenshots

    phone = signed_in_page(browser, live_server, alice, PHONE)
    phone.goto(f"{live_server.url}/invoices/{invoice.pk}/")
    expect(phone.locator("body")).to_contain_text(note.number)
    expect(
        phone.get_by_role("link", name=f"Pay $254.50 for invoice {invoice.number}")
    ).to_be_visible()
    check_page(phone, "credit-note-customer-invoice-phone")
    phone.goto(f"{live_server.url}/credit-notes/")
    expect(phone.locator("table.list")).to_contain_text("Two days of delay on site")
    check_page(phone, "credit-note-customer-list-phone")
    einvoice = phone.get_by_role("link", name=f"Credit note {note.number} (Factur-X)")
    expect(einvoice).to_be_visible()
    response = phone.request.get(live_server.url + (einvoice.get_attribute("href") or ""))
    assert response.headers["content-type"] == "application/pdf"
    _, xml = facturx.get_facturx_xml_from_pdf(io.BytesIO(response.body()), check_xsd=True)
    assert b"<ram:TypeCode>381</ram:TypeCode>" in xml
    wide = signed_in_page(browser, live_server, alice, LAPTOP)
    wide.goto(f"{live_server.url}/credit-notes/")
    check_page(wide, "credit-note-customer-list")


def test_an_admin_records_a_bank_refund_that_credits_the_invoice(
    browser: Browser, live_server: Any, admin: User, project_a: Project
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=invoice.amount_due,
        method="bank_transfer",
        received_on=timezone.localdate(),
    )
    page = signed_in_page(browser, live_server, admin, PHONE)
    page.goto(f"{live_server.url}/invoices/{invoice.pk}/")
    page.get_by_role("button", name=f"Record a refund on invoice {invoice.number}").click()
    dialog = page.locator("dialog#refund")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Up to $300.00 was paid")
    page.fill("#id_refund-amount", "60.00")
    page.fill("#id_refund-reason", "The second coat of paint was not needed")
    page.check("#id_refund-credit_invoice")
    check_page(page, "refund-dialog-phone")
    dialog.get_by_role("button", name="Record the refund").click()

    note = CreditNote.objects.get()
    expect(page.locator("#messages")).to_contain_text(
        f"Refund of $60.00 recorded on {invoice.number}, with credit note {note.number}."
    )
    expect(page.locator("table.list").last).to_contain_text(
        f"(refund, with credit note {note.number})"
    )
    check_page(page, "refund-recorded-phone")
