"""In Chromium: the customer downloads a sent invoice's e-invoice from its page, and staff
download last month's accounting export from the financials page; both pages pass the
axe, phone-width and CSP checks with the new link and form."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import facturx
import pytest
from django.utils import timezone
from playwright.sync_api import Browser, expect

from tests.billing.helpers import draft_for
from tests.billing.taxed import address_customer, rate, set_up_business, taxed_project
from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice
from tranche.billing.services.sending import invoice_send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def invoice(admin: User, customer_a: Customer, live_server: Any, settings: Any) -> Invoice:
    settings.BASE_URL = live_server.url
    set_up_business()
    address_customer(customer_a)
    project = taxed_project(
        admin=admin, customer=customer_a, lines=[("Build", "1000.00", rate("VAT 20 %", "20"))]
    )
    # Sent last month, so the export form's default period holds it.
    last_month = timezone.localdate().replace(day=1) - timedelta(days=3)
    when = datetime(last_month.year, last_month.month, last_month.day, 12, tzinfo=UTC)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk, now=when)
    return Invoice.objects.get(pk=sent.pk)


def test_the_customer_downloads_the_e_invoice_from_the_invoice_page(
    browser: Browser, live_server: Any, alice: User, invoice: Invoice
) -> None:
    for viewport, name in ((PHONE, "invoice-einvoice-phone"), (LAPTOP, "invoice-einvoice")):
        page = signed_in_page(browser, live_server, alice, viewport)
        page.goto(f"{live_server.url}/invoices/{invoice.pk}/")
        link = page.get_by_role("link", name="Download e-invoice (Factur-X)")
        expect(link).to_be_visible()
        check_page(page, name)

    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == f"{invoice.number}-factur-x.pdf"
    content = Path(download.path()).read_bytes()
    _name, xml = facturx.get_facturx_xml_from_pdf(io.BytesIO(content), check_xsd=True)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")


def test_staff_download_last_months_accounting_export(
    browser: Browser, live_server: Any, staff: User, invoice: Invoice
) -> None:
    phone = signed_in_page(browser, live_server, staff, PHONE)
    phone.goto(f"{live_server.url}/financials/")
    expect(phone.get_by_role("heading", name="Accounting export")).to_be_visible()
    check_page(phone, "financials-accounting-export")

    page = signed_in_page(browser, live_server, staff, LAPTOP)
    page.goto(f"{live_server.url}/financials/")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download the accounting export").click()
    download = download_info.value
    assert download.suggested_filename.startswith("accounting-")
    with open(download.path(), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["document_type"], r["number"], r["tax_name"], r["gross"]) for r in rows] == [
        ("invoice", invoice.number, "VAT 20 %", "360.00")
    ]
