"""Tax in a real browser: an admin adds a rate on the settings' Tax tab, staff pick rates
per line in the quote editor and watch the live summary, and an invoice with two rates
reads per rate; each page passes axe, fits 1366 and 390 px, and is screenshotted."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.billing.helpers import draft_for
from tests.browser.quality import VIEWPORTS, check_page, signed_in_page
from tranche.accounts.business import business_row
from tranche.accounts.models import Customer, TaxRate, User
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.sending import invoice_send
from tranche.notifications.quotes import quote_send
from tranche.sales.services import LineInput, ScheduleInput, quote_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_adds_a_rate_and_staff_quote_with_two_rates(
    browser: Browser, live_server: Any, admin: User, customer_a: Customer
) -> None:
    TaxRate.objects.create(name="VAT 20 %", percentage=Decimal(20))
    row = business_row()
    row.tax_id = "GB123456789"
    row.save()
    page = signed_in_page(browser, live_server, admin, VIEWPORTS["laptop"])
    page.goto(f"{live_server.url}/settings/tax/")
    page.fill("#id_rate_name", "VAT 5 %")
    page.fill("#id_rate_percentage", "5")
    page.click("text=Add rate")
    expect(page.locator("#messages")).to_contain_text("Tax rate “VAT 5 %” added")
    page.select_option("#id_country", "GB")
    page.click("text=Save tax settings")
    expect(page.locator("#messages")).to_contain_text("Tax settings saved")
    assert business_row().country == "GB"
    vat5 = TaxRate.objects.get(name="VAT 5 %")

    page.goto(f"{live_server.url}/quotes/new")
    page.select_option("#customer", str(customer_a.pk))
    page.fill("#title", "Brand book")
    page.fill("#line-1-description", "Design")
    page.fill("#line-1-unit_price", "1000")
    page.select_option("#line-1-tax_rate", label="VAT 20 %")
    page.click("#add-line")
    page.fill("#line-2-description", "Print")
    page.fill("#line-2-unit_price", "500")
    page.select_option("#line-2-tax_rate", str(vat5.pk))
    summary = page.locator("#quote-summary")
    expect(summary).to_contain_text("$1,725.00")  # 1,000 + 200 + 500 + 25
    expect(summary).to_contain_text("Prices exclude tax")

    for name, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)  # type: ignore[arg-type]
        page.goto(f"{live_server.url}/settings/tax/")
        check_page(page, f"tax-settings-{name}")
    page.set_viewport_size(VIEWPORTS["laptop"])  # type: ignore[arg-type]


def test_an_invoice_with_two_rates_reads_per_rate_on_laptop_and_phone(
    browser: Browser, live_server: Any, admin: User, alice: User, customer_a: Customer
) -> None:
    vat20 = TaxRate.objects.create(name="VAT 20 %", percentage=Decimal(20))
    vat5 = TaxRate.objects.create(name="VAT 5 %", percentage=Decimal(5))
    row = business_row()
    row.tax_id = "GB123456789"
    row.save()
    customer_a.tax_id = "FR40303265045"
    customer_a.save()
    quote = quote_create(
        actor=admin,
        customer_id=customer_a.pk,
        title="Brand book",
        currency="EUR",
        lines=[
            LineInput("Design and art direction", Decimal(1), Decimal("1000.01"), vat20.pk),
            LineInput("Printed matter", Decimal(3), Decimal("111.11"), vat5.pk),
        ],
        schedule=[
            ScheduleInput("Concepts", True, Decimal(30)),
            ScheduleInput("Final files", True, Decimal(70)),
        ],
    )
    # Another draft like it, for the editor (an accepted quote is no longer edited).
    editing = quote_create(
        actor=admin,
        customer_id=customer_a.pk,
        title="Brand book, second edition",
        currency="EUR",
        lines=[
            LineInput("Design and art direction", Decimal(1), Decimal("1000.01"), vat20.pk),
            LineInput("Printed matter", Decimal(3), Decimal("111.11"), vat5.pk),
        ],
        schedule=[ScheduleInput("All", True, Decimal(100))],
    )
    quote_send(actor=admin, quote_id=quote.pk)
    project = quote_accept(actor=admin, quote_id=quote.pk)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    draft = draft_for(project, 2, admin)

    for name, viewport in VIEWPORTS.items():
        page = signed_in_page(browser, live_server, admin, viewport)
        page.goto(f"{live_server.url}/quotes/{editing.pk}/edit")
        expect(page.locator("#quote-summary")).to_contain_text("VAT 5 %")
        check_page(page, f"tax-quote-editor-{name}")
        page.goto(f"{live_server.url}/invoices/{draft.pk}/")
        expect(page.get_by_label("Amount billed, before tax")).to_be_visible()
        expect(page.locator("main")).to_contain_text("Tax id: FR40303265045")
        check_page(page, f"tax-invoice-draft-{name}")
        page.goto(f"{live_server.url}/projects/{project.pk}/financials")
        check_page(page, f"tax-project-financials-{name}")
        page.context.close()

        customer = signed_in_page(browser, live_server, alice, viewport)
        customer.goto(f"{live_server.url}/invoices/{sent.pk}/")
        main = customer.locator("main")
        expect(main).to_contain_text("VAT 20 %")
        expect(main).to_contain_text("VAT 5 %")
        expect(main).to_contain_text("Tax id: GB123456789")
        check_page(customer, f"tax-invoice-{name}")
        customer.goto(f"{live_server.url}/quotes/{quote.pk}/")
        check_page(customer, f"tax-quote-portal-{name}")
        customer.context.close()
