"""The whole job in a real browser, as a new agency would do it, both sides.

An admin signs in, creates a customer, invites its first portal user (who follows the
emailed link and chooses a password), writes a quote with a 30/30/40 schedule, sends it;
the customer accepts it online with her typed name; staff complete milestone 1 through
its confirmation dialog, review the draft and send it; the customer finds it on her home
and in her invoices, downloads the PDF, pays on the sandbox; both sides see it paid with
its receipt. Shorter journeys: declining a quote with a comment, recording a bank
transfer, cancelling with a reason, bulk sending from global financials, the CSV export,
and a forgotten password reset through the email caught in the test.

Every page visited passes `check_page` (axe, no sideways scroll, no CSP violation,
screenshot) at the width it was opened at; each test then re-visits every address it saw
at the other width, as the same person (`Tour.revisit`). A state an address does not
bring back (an open dialog, a link that works once, the pay page before paying) is
checked at both widths on the spot (`Tour.check_now`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import pytest
from playwright.sync_api import Browser, Page, expect
from pypdf import PdfReader

from tests.billing.helpers import draft_for
from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page, watch
from tests.factories import PASSWORD, make_project, make_quote
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice, InvoiceStatus, Payment
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail
from tranche.notifications.quotes import quote_send
from tranche.projects.models import Project
from tranche.sales.models import Quote, QuoteStatus

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "a long and new passphrase"
SANDBOX_CARD = "4242 4242 4242 4242"


@dataclass
class Tour:
    """The pages a test visits: each is checked where it is opened, and remembered (who,
    address, name) so that `revisit` can check it again at the other width."""

    browser: Browser
    live_server: Any
    viewport: dict[str, int] = field(default_factory=lambda: LAPTOP)
    prefix: str = "journey"  # screenshots are var/screenshots/<prefix>-<name>-<width>.png
    seen: list[tuple[str | None, str, str]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.live_server.url}{path}"

    def sign_in(self, user: User) -> Page:
        return signed_in_page(self.browser, self.live_server, user, self.viewport)

    def guest(self) -> Page:
        """A browser with nobody signed in."""
        page = self.browser.new_context(viewport=self.viewport).new_page()  # type: ignore[arg-type]
        page.set_default_timeout(15_000)
        page.csp_blocked = watch(page)  # type: ignore[attr-defined]
        return page

    def check(self, page: Page, name: str, who: User | None) -> None:
        name = f"{self.prefix}-{name}"
        check_page(page, name)
        entry = (who.email if who else None, page.url, name)
        if entry not in self.seen:
            self.seen.append(entry)

    def check_now(self, page: Page, name: str) -> None:
        """A state the address alone does not bring back (an open dialog, a link used
        once, a form half filled): checked at both widths here and now."""
        name = f"{self.prefix}-{name}"
        check_page(page, name)
        page.set_viewport_size(PHONE if self.viewport == LAPTOP else LAPTOP)  # type: ignore[arg-type]
        check_page(page, name)
        page.set_viewport_size(self.viewport)  # type: ignore[arg-type]

    def visit(self, page: Page, path: str, name: str, who: User | None) -> None:
        page.goto(path if path.startswith("http") else self.url(path))
        self.check(page, name, who)

    def revisit(self, password: dict[str, str] | None = None) -> None:
        """Every page seen, again at the other width, signed in as whoever saw it first
        (`password` gives the ones that are not the test PASSWORD)."""
        other = PHONE if self.viewport == LAPTOP else LAPTOP
        pages: dict[str | None, Page] = {}
        for email, url, name in self.seen:
            if email not in pages:
                context = self.browser.new_context(viewport=other)  # type: ignore[arg-type]
                page = context.new_page()
                page.set_default_timeout(15_000)
                page.csp_blocked = watch(page)  # type: ignore[attr-defined]
                if email is not None:
                    page.goto(self.url("/login/"))
                    page.fill("#id_username", email)
                    page.fill("#id_password", (password or {}).get(email, PASSWORD))
                    page.click("button[type=submit]")
                    page.wait_for_load_state()
                    assert "/login/" not in page.url, f"{email} could not sign in again"
                pages[email] = page
            page = pages[email]
            response = page.goto(url)
            assert response is not None
            assert response.status == 200, (url, response.status)
            assert page.url == url, f"{url} now redirects to {page.url}"
            check_page(page, name)
        for page in pages.values():
            page.context.close()


def pdf_text(page: Page, href: str) -> str:
    """The text of the PDF at `href`, fetched with the page's own session."""
    response = page.request.get(urljoin(page.url, href))
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)


def emailed_link(email: OutboxEmail, path: str) -> str:
    found = re.search(rf"(https?://\S+{path}\S*)", email.body_text)
    assert found, email.body_text
    return found.group(1)


def test_a_new_agency_quotes_bills_and_gets_paid_all_in_the_browser(
    browser: Browser, live_server: Any, admin: User, settings: Any
) -> None:
    settings.BASE_URL = live_server.url
    tour = Tour(browser, live_server)
    messages = "#messages"

    # The admin creates the customer.
    office = tour.sign_in(admin)
    tour.check(office, "dashboard", admin)
    office.get_by_role("link", name="Customers", exact=True).click()
    tour.check(office, "customers", admin)
    office.get_by_role("link", name="New customer").click()
    tour.check(office, "customer-new", admin)
    office.fill("#id_name", "Harbour Lane Dental")
    office.fill("#id_contact_name", "Dana Dent")
    office.fill("#id_billing_email", "accounts@harbour.example")
    office.click("form.customer-form button[type=submit]")
    expect(office.locator("h1")).to_contain_text("Harbour Lane Dental")
    tour.check(office, "customer", admin)
    customer = Customer.objects.get(name="Harbour Lane Dental")
    assert customer.billing_email == "accounts@harbour.example"

    # ... invites Dana, who follows the emailed link and chooses her password.
    office.fill("#id_email", "dana@harbour.example")
    office.fill("#id_full_name", "Dana Dent")
    office.click("form.invite-form button[type=submit]")
    expect(office.locator(messages)).to_contain_text("Invitation sent to dana@harbour.example.")
    tour.check(office, "customer-invited", admin)
    invitation = OutboxEmail.objects.get(kind="invitation", to="dana@harbour.example")
    dana_page = tour.guest()
    dana_page.goto(emailed_link(invitation, "/account/set-password/"))
    tour.check_now(dana_page, "set-password")  # the link is spent once used
    dana_page.fill("#id_password1", NEW_PASSWORD)
    dana_page.fill("#id_password2", NEW_PASSWORD)
    dana_page.click("button[type=submit]")
    expect(dana_page.locator(messages)).to_contain_text(
        "Your password is set and you are signed in."
    )
    dana = User.objects.get(email="dana@harbour.example")
    tour.check(dana_page, "customer-home-empty", dana)

    # The admin writes the quote in the editor and sends it.
    office.get_by_role("link", name="Quotes", exact=True).click()
    tour.check(office, "quotes-staff", admin)
    office.get_by_role("link", name="New quote").first.click()
    office.select_option("#customer", label="Harbour Lane Dental")
    office.fill("#title", "Clinic refit")
    office.fill("#line-1-description", "Design and build")
    office.fill("#line-1-unit_price", "10000")
    for n, (title, share) in enumerate(
        (("Deposit", "30"), ("Fit-out", "30"), ("Handover", "40")), start=1
    ):
        office.get_by_role("button", name="Add a schedule step").click()
        office.fill(f"#item-{n}-title", title)
        office.fill(f"#item-{n}-percentage", share)
    expect(office.get_by_test_id("percent-sum")).to_have_text("Billable shares add up to 100 %")
    expect(office.get_by_test_id("step-3-amount")).to_have_text("$4,000.00")
    tour.check(office, "quote-editor", admin)
    office.get_by_role("button", name="Save draft", exact=True).last.click()
    expect(office.locator(messages)).to_contain_text("Quote “Clinic refit” created as a draft.")
    tour.check(office, "quote-draft", admin)
    office.get_by_role("link", name="Send to customer").click()
    dialog = office.locator("#send-dialog")
    expect(dialog).to_contain_text("accounts@harbour.example")
    tour.check_now(office, "quote-send-dialog")
    dialog.get_by_role("button", name="Send the quote").click()
    expect(office.locator(messages)).to_contain_text("sent to accounts@harbour.example")
    quote = Quote.objects.get(title="Clinic refit")
    assert quote.status == QuoteStatus.SENT

    # Dana reads it and accepts it with her typed name.
    dana_page.get_by_role("link", name="Quotes", exact=True).click()
    tour.check(dana_page, "quotes-customer", dana)
    dana_page.get_by_role("link", name="Clinic refit").click()
    expect(dana_page.locator("main")).to_contain_text("$4,000.00")
    tour.check(dana_page, "quote-customer", dana)
    dana_page.fill("#name", "Dana Dent")
    dana_page.check("#agree")
    dana_page.get_by_role("button", name="Accept the quote").click()
    expect(dana_page.locator(messages)).to_contain_text("you accepted “Clinic refit”")
    dana_page.get_by_role("link", name="See your project").click()
    expect(dana_page.locator("h1")).to_have_text("Clinic refit")
    tour.check(dana_page, "project-customer", dana)
    project = Project.objects.get(origin_quote=quote)
    assert project.milestones.count() == 3
    quote.refresh_from_db()
    assert quote.accepted_name == "Dana Dent"

    # Back at the office: milestone 1 is done, through its confirmation dialog.
    office.get_by_role("link", name="Projects", exact=True).click()
    tour.check(office, "projects", admin)
    office.get_by_role("link", name="Clinic refit").click()
    tour.check(office, "project", admin)
    office.get_by_role("button", name="Complete milestone Deposit").click()
    dialog = office.get_by_role("dialog", name="Complete “Deposit”?")
    expect(dialog).to_contain_text("$3,000.00")
    tour.check_now(office, "project-complete-dialog")
    dialog.get_by_role("button", name="Complete milestone").click()
    expect(office.locator(messages)).to_contain_text(
        "Completed 'Deposit'. A draft invoice for $3,000.00 is waiting for an admin to send it."
    )
    draft = Invoice.objects.get(project=project)
    assert draft.status == InvoiceStatus.DRAFT

    # The admin reviews the draft on its page and sends it.
    office.get_by_role("link", name="Financials", exact=True).first.click()
    tour.check(office, "financials-drafts", admin)
    office.get_by_role("link", name=re.compile("^Draft for Harbour Lane Dental")).click()
    expect(office.locator(".page-head h1")).to_contain_text("Draft invoice")
    tour.check(office, "invoice-draft", admin)
    assert "DRAFT" in pdf_text(
        office, office.get_by_role("link", name="Preview the PDF").first.get_attribute("href") or ""
    )
    office.click("#send-button")
    dialog = office.locator("dialog#send")
    expect(dialog).to_contain_text("accounts@harbour.example")
    tour.check_now(office, "invoice-send-dialog")
    dialog.get_by_role("button", name="Send $3,000.00 to accounts@harbour.example").click()
    expect(office.locator(messages)).to_contain_text(
        "sent to accounts@harbour.example for $3,000.00"
    )
    draft.refresh_from_db()
    number = draft.number
    assert number
    assert draft.status == InvoiceStatus.PENDING
    expect(office.locator(".page-head h1")).to_contain_text(f"Invoice {number}")
    tour.check(office, "invoice-sent", admin)
    assert OutboxEmail.objects.filter(kind="invoice_sent", to="accounts@harbour.example").exists()

    # Dana sees it on her home and in her invoices, downloads the PDF, pays.
    dana_page.get_by_role("link", name="Home", exact=True).click()
    pay = dana_page.get_by_role("link", name=f"Pay $3,000.00 for invoice {number}")
    expect(pay.first).to_be_visible()
    tour.check(dana_page, "customer-home", dana)
    dana_page.get_by_role("link", name="Your invoices", exact=True).click()
    tour.check(dana_page, "invoices-customer", dana)
    dana_page.get_by_role("link", name=number, exact=True).click()
    expect(dana_page.locator(".page-head h1")).to_contain_text(f"Invoice {number}")
    tour.check(dana_page, "invoice-customer", dana)
    # The PDF opens in the browser's viewer (inline): fetched with her session.
    text = pdf_text(
        dana_page, dana_page.get_by_role("link", name="Download PDF").get_attribute("href") or ""
    )
    assert number in text
    assert "$3,000.00" in text
    assert "Harbour Lane Dental" in text
    assert "DRAFT" not in text

    dana_page.get_by_role("link", name="Pay $3,000.00").click()
    expect(dana_page.get_by_text("Sandbox — no real money")).to_be_visible()
    tour.check_now(dana_page, "pay")
    dana_page.fill("#card_number", SANDBOX_CARD)
    dana_page.get_by_role("button", name="Pay $3,000.00").click()
    expect(dana_page.get_by_text("Paid on")).to_be_visible()
    tour.check_now(dana_page, "pay-paid")
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.PAID
    payment = Payment.objects.get(invoice=draft)
    assert OutboxEmail.objects.filter(kind="invoice_paid").count() == 1

    # Both sides see it paid, with its receipt.
    for page, who, name in (
        (dana_page, dana, "invoice-customer-paid"),
        (office, admin, "invoice-paid"),
    ):
        page.goto(tour.url(f"/invoices/{draft.pk}/"))
        expect(page.locator(".page-head h1 .badge")).to_have_text("Paid")
        tour.check(page, name, who)
        receipt = page.get_by_role("link", name=re.compile("^Receipt \\(PDF\\)"))
        text = pdf_text(page, receipt.get_attribute("href") or "")
        assert f"For invoice {number}" in text
        assert "Harbour Lane Dental" in text
        assert "$3,000.00" in text
        assert "Left to pay $0.00" in text
    assert payment.amount == draft.total.amount
    dana_page.get_by_role("link", name="Home", exact=True).click()
    expect(dana_page.get_by_text("You are all paid up. Thank you!")).to_be_visible()
    tour.check(dana_page, "customer-home-paid", dana)
    office.context.close()
    dana_page.context.close()

    tour.revisit(password={"dana@harbour.example": NEW_PASSWORD})


def test_the_customer_declines_a_quote_with_a_comment_and_staff_read_why(
    browser: Browser, live_server: Any, admin: User, staff: User, alice: User, customer_a: Customer
) -> None:
    quote = make_quote(actor=admin, customer=customer_a, title="Loft conversion")
    quote_send(actor=admin, quote_id=quote.pk)
    tour = Tour(browser, live_server, PHONE, "decline")

    page = tour.sign_in(alice)
    tour.visit(page, f"/quotes/{quote.pk}/", "quote-customer", alice)
    page.get_by_role("link", name="Decline…").click()
    page.fill("#reason", "We found a cheaper builder")
    tour.check_now(page, "quote-customer-decline")
    page.get_by_role("button", name="Decline the quote").click()
    expect(page.locator("main")).to_contain_text("Your comment: “We found a cheaper builder”")
    tour.check(page, "quote-customer-declined", alice)
    quote.refresh_from_db()
    assert quote.status == QuoteStatus.DECLINED
    assert not Project.objects.filter(origin_quote=quote).exists()

    office = tour.sign_in(staff)
    tour.visit(office, f"/quotes/{quote.pk}/", "quote-staff-declined", staff)
    expect(office.locator("main")).to_contain_text(
        "The customer's comment: “We found a cheaper builder”"
    )
    tour.revisit()


def test_an_admin_records_a_bank_transfer_and_the_invoice_is_paid(
    browser: Browser, live_server: Any, admin: User, project_a: Project
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    tour = Tour(browser, live_server, LAPTOP, "transfer")
    page = tour.sign_in(admin)
    tour.visit(page, f"/invoices/{invoice.pk}/", "invoice-sent", admin)
    page.get_by_role("button", name=f"Record a payment on invoice {invoice.number}").click()
    expect(page.locator("#id_amount")).to_have_value("300.00")
    page.fill("#id_reference", "BANK-2211")
    tour.check_now(page, "invoice-payment-dialog")
    page.get_by_role("button", name="Record the payment").click()
    expect(page.locator("#messages")).to_contain_text("It is paid in full.")
    expect(page.locator(".page-head h1 .badge")).to_have_text("Paid")
    expect(page.locator("main")).to_contain_text("BANK-2211")
    tour.check(page, "invoice-paid-by-transfer", admin)
    [payment] = Payment.objects.filter(invoice=invoice)
    assert payment.reference == "BANK-2211"
    tour.revisit()


def test_an_admin_cancels_an_invoice_with_a_reason(
    browser: Browser, live_server: Any, admin: User, alice: User, project_a: Project
) -> None:
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    tour = Tour(browser, live_server, PHONE, "cancel")
    page = tour.sign_in(admin)
    tour.visit(page, f"/invoices/{invoice.pk}/", "invoice-sent", admin)
    page.get_by_role("button", name=f"Cancel invoice {invoice.number}").click()
    page.fill("#id_reason", "Billed to the wrong project")
    tour.check_now(page, "invoice-cancel-dialog")
    page.get_by_role("button", name="Cancel the invoice").click()
    expect(page.locator("#messages")).to_contain_text(f"Invoice {invoice.number} cancelled.")
    expect(page.locator("main")).to_contain_text("Reason: Billed to the wrong project")
    tour.check(page, "invoice-cancelled", admin)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.CANCELLED
    customer = tour.sign_in(alice)
    tour.visit(customer, f"/invoices/{invoice.pk}/", "invoice-customer-cancelled", alice)
    expect(customer.locator("main")).to_contain_text("This invoice was cancelled")
    expect(customer.locator("main")).not_to_contain_text("wrong project")
    tour.revisit()


def test_an_admin_sends_drafts_in_bulk_and_reads_what_happened_to_each(
    browser: Browser,
    live_server: Any,
    admin: User,
    customer_a: Customer,
    customer_b: Customer,
    settings: Any,
) -> None:
    settings.BASE_URL = live_server.url
    kitchen = make_project(actor=admin, customer=customer_a, title="Kitchen")
    studio = make_project(actor=admin, customer=customer_b, title="Studio")
    first, second = draft_for(kitchen, 1, admin), draft_for(studio, 1, admin)
    tour = Tour(browser, live_server, LAPTOP, "bulk")
    page = tour.sign_in(admin)
    tour.visit(page, "/financials/?status=draft", "financials-drafts", admin)
    for invoice in (first, second):
        page.get_by_label(re.compile(f"^Select draft for {invoice.customer.name}")).check()
    page.click("button:has-text('Send selected')")
    dialog = page.locator("dialog#send-confirm")
    dialog.get_by_text("Send 2 drafts?").wait_for()
    tour.check_now(page, "financials-send-confirm")
    dialog.get_by_role("button", name="Send 2 invoices").click()
    summary = page.locator(".send-summary")
    expect(summary).to_be_visible()
    expect(page.locator("#messages")).to_contain_text("2 invoices sent")
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == second.status == InvoiceStatus.PENDING
    expect(summary).to_contain_text(first.number or "")
    expect(summary).to_contain_text(second.number or "")
    tour.check(page, "financials-sent-summary", admin)
    assert OutboxEmail.objects.filter(kind="invoice_sent").count() == 2
    tour.revisit()


def test_staff_export_the_invoices_as_csv(
    browser: Browser, live_server: Any, admin: User, staff: User, project_a: Project
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    draft_for(project_a, 2, admin)
    tour = Tour(browser, live_server, PHONE, "csv")
    page = tour.sign_in(staff)
    tour.visit(page, "/financials/", "financials", staff)
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("^Export CSV")).click()
    with open(download.value.path(), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["number"], r["status"], r["customer"]) for r in rows) == sorted(
        [(sent.number, "pending", "Acme Builders"), ("", "draft", "Acme Builders")]
    )
    tour.revisit()


def test_a_forgotten_password_is_reset_through_the_emailed_link(
    browser: Browser, live_server: Any, alice: User, settings: Any
) -> None:
    settings.BASE_URL = live_server.url
    tour = Tour(browser, live_server, PHONE, "reset")
    page = tour.guest()
    tour.visit(page, "/login/", "login", None)
    page.get_by_role("link", name="Forgot your password?").click()
    tour.check(page, "forgot-password", None)
    page.fill("#id_email", alice.email)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.locator("#messages")).to_contain_text("email")
    tour.check(page, "login-after-forgot", None)
    email = OutboxEmail.objects.get(to=alice.email)
    page.goto(emailed_link(email, "/account/set-password/"))
    tour.check_now(page, "reset-password")
    page.fill("#id_password1", NEW_PASSWORD)
    page.fill("#id_password2", NEW_PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("#messages")).to_contain_text("Your password is set and you are signed in.")
    assert page.url == tour.url("/")
    assert alice.email in page.inner_text("header")
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    tour.revisit()
