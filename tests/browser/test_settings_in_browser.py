"""The settings page and the emails in a real browser: an admin brands the business (a
logo included) and the header and the invoice PDF show it; the HTML emails pass axe and
fit a 390 px phone."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from playwright.sync_api import Browser, Page
from pypdf import PdfReader

from tests.billing.helpers import draft_for
from tests.browser.quality import (
    LAPTOP,
    PHONE,
    axe_violations,
    check_page,
    horizontal_overflow,
    screenshot,
    signed_in_page,
)
from tests.factories import make_project, make_quote
from tests.web.test_settings_pages import image
from tranche.accounts.business import business_profile, business_row
from tranche.accounts.models import Customer, User
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.emails import drafts_digest_queue
from tranche.billing.services.payments import (
    SANDBOX_CARD_DECLINED,
    PaymentDeclined,
    sandbox_pay,
)
from tranche.billing.services.reminders import invoices_tick
from tranche.billing.services.sending import invoice_send
from tranche.notifications.invitations import password_reset_request, user_invite
from tranche.notifications.models import OutboxEmail
from tranche.notifications.quotes import quote_send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any, live_server: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BASE_URL = live_server.url  # so the emails' logo and links load in the page


def test_an_admin_brands_the_business_and_the_header_and_pdf_show_it(
    browser: Browser, live_server: Any, admin: User, customer_a: Customer
) -> None:
    page = signed_in_page(browser, live_server, admin, LAPTOP)
    page.goto(f"{live_server.url}/settings/")
    check_page(page, "settings")

    page.fill("#id_name", "Harbour & Sons Ltd")
    page.fill("#id_address", "1 Quay Street\nPortsmouth PO1 2AB")
    page.fill("#id_tax_id", "GB123456789")
    page.fill("#id_bank_details", "IBAN GB33BUKB20201555555555")
    page.fill("#id_invoice_number_format", "HB-{year}")
    page.wait_for_selector("#number-preview >> text=must contain {seq}")
    page.fill("#id_invoice_number_format", "HB-{year}-{seq:04d}")
    page.wait_for_selector("#number-preview >> text=-0001")
    page.set_input_files(
        "#id_logo", {"name": "logo.png", "mimeType": "image/png", "buffer": image("PNG")}
    )
    page.click("button:has-text('Save settings')")
    page.wait_for_selector("#messages >> text=Settings saved")
    assert page.inner_text("header.top .brand") == "Harbour & Sons Ltd"
    logo = page.locator("header.top img.brand-logo")
    # The page is shown before its image has arrived: wait for the image, not a fixed time.
    page.wait_for_function(
        "() => document.querySelector('header.top img.brand-logo')?.complete === true"
    )
    assert logo.evaluate("img => img.naturalWidth") == 120
    check_page(page, "settings-saved")

    project = make_project(actor=admin, customer=customer_a, title="Boathouse")
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    assert (sent.number or "").startswith("HB-")
    pdf = page.request.get(f"{live_server.url}/pay/{sent.pay_token}/invoice.pdf").body()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    for expected in ("Harbour & Sons Ltd", "1 Quay Street", "GB123456789", "GB33BUKB2020"):
        assert expected in text
    assert any(p.images for p in PdfReader(io.BytesIO(pdf)).pages)
    page.context.close()

    phone = signed_in_page(browser, live_server, admin, PHONE)
    phone.goto(f"{live_server.url}/settings/")
    phone.fill("#id_reminder_days", "-3, soon")
    phone.click("button:has-text('Save settings')")
    phone.wait_for_selector(".error-summary")
    assert phone.is_visible("#id_reminder_days-error")
    assert business_profile().reminder_days == (-3, 0, 7, 14)
    check_page(phone, "settings-error")
    phone.context.close()


def test_the_html_emails_pass_axe_and_fit_a_phone(
    page: Page, live_server: Any, admin: User, customer_a: Customer
) -> None:
    row = business_row()
    row.address = "1 Quay Street\nPortsmouth PO1 2AB"
    row.bank_details = "IBAN GB33BUKB20201555555555"
    row.logo.save("logo-email.png", ContentFile(image("PNG")), save=False)
    row.save()
    project = make_project(actor=admin, customer=customer_a, title="Boathouse")
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    invoices_tick(now=timezone.now() + (sent.due_date - timezone.localdate()) + timedelta(days=7))
    with pytest.raises(PaymentDeclined):
        sandbox_pay(invoice_id=sent.pk, card_number=SANDBOX_CARD_DECLINED)
    sandbox_pay(invoice_id=sent.pk, card_number="4242424242424242")
    second = invoice_send(actor=admin, invoice_id=draft_for(project, 2, admin).pk)
    invoice_cancel(actor=admin, invoice_id=second.pk, reason="Agreed with the customer")
    draft_for(project, 3, admin)
    drafts_digest_queue(now=timezone.localtime().replace(hour=9))
    user_invite(actor=admin, email="ada@acme.example", role="customer", customer_id=customer_a.pk)
    password_reset_request(email=admin.email)
    quote = make_quote(actor=admin, customer=customer_a, title="Garden studio")
    quote_send(actor=admin, quote_id=quote.pk)

    kinds = set(OutboxEmail.objects.values_list("kind", flat=True))
    assert kinds == {
        "invitation",
        "password_reset",
        "quote_sent",
        "invoice_sent",
        "invoice_reminder",
        "invoice_paid",
        "invoice_cancelled",
        "admin_payment_received",
        "admin_payment_failed",
        "admin_drafts_digest",
    }
    for email in OutboxEmail.objects.order_by("pk"):
        for viewport, width in ((PHONE, 390), (LAPTOP, 1366)):
            page.set_viewport_size(viewport)  # type: ignore[arg-type]
            page.set_content(email.body_html)
            screenshot(page, f"email-{email.kind}")
            assert axe_violations(page) == [], (email.kind, width)
            assert horizontal_overflow(page) == 0, (email.kind, width)
