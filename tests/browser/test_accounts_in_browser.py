"""Customers, users and accounts in a real browser. An admin on a phone invites a
customer's user, the invitation is caught from the outbox, the invited person follows
the link, chooses a password and lands signed in; on a laptop, staff deactivate a user
through the confirmation dialog. Every page visited passes the quality checks (axe, no
sideways scroll, CSP) at the width it was opened at, so each page is checked at both."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.billing.helpers import draft_for
from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page, watch
from tests.factories import make_project
from tranche.accounts.models import Customer, User
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "a brand new passphrase"


def visit(page: Page, url: str, name: str) -> None:
    page.goto(url)
    check_page(page, name)


def owing(admin: User, customer: Customer) -> None:
    project = make_project(actor=admin, customer=customer, title="Kitchen and garden studio")
    invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)


def test_an_admin_invites_a_customer_user_who_sets_a_password_and_lands_signed_in(
    browser: Browser, live_server: Any, admin: User, customer_a: Customer, settings: Any
) -> None:
    settings.BASE_URL = live_server.url
    owing(admin, customer_a)
    page = signed_in_page(browser, live_server, admin, PHONE)
    visit(page, f"{live_server.url}/customers/", "customers")
    visit(page, f"{live_server.url}/settings/users/", "users")
    visit(page, f"{live_server.url}/account/", "account")
    visit(page, f"{live_server.url}/customers/{customer_a.pk}/", "customer")

    page.fill("#id_email", "carol@acme.example")
    page.fill("#id_full_name", "Carol Client")
    page.click("form.invite-form button[type=submit]")
    page.wait_for_selector("text=Invitation sent to carol@acme.example.")
    assert page.evaluate("document.activeElement.id") == "messages"
    check_page(page, "customer-invited")

    email = OutboxEmail.objects.get(kind="invitation")
    link = re.search(r"(https?://\S+/account/set-password/\S+/)", email.body_text)
    assert link
    context = browser.new_context(viewport=LAPTOP)  # type: ignore[arg-type]
    guest = context.new_page()
    guest.csp_blocked = watch(guest)  # type: ignore[attr-defined]
    visit(guest, link.group(1), "set-password")
    guest.fill("#id_password1", NEW_PASSWORD)
    guest.fill("#id_password2", NEW_PASSWORD)
    guest.click("button[type=submit]")
    guest.wait_for_selector("text=Your password is set and you are signed in.")
    assert guest.url == f"{live_server.url}/"
    assert "carol@acme.example" in guest.inner_text("header")
    visit(guest, f"{live_server.url}/account/", "account-customer")
    context.close()


def test_staff_deactivate_a_user_after_confirming_in_a_dialog(
    browser: Browser, live_server: Any, admin: User, staff: User, alice: User, customer_a: Customer
) -> None:
    owing(admin, customer_a)
    page = signed_in_page(browser, live_server, staff, LAPTOP)
    visit(page, f"{live_server.url}/customers/", "customers")
    visit(page, f"{live_server.url}/account/", "account")

    page.goto(f"{live_server.url}/customers/new/")
    page.fill("#id_payment_terms_days", "400")
    page.click("form.customer-form button[type=submit]")
    page.wait_for_selector("#id_name-error")
    check_page(page, "customer-new-errors")

    visit(page, f"{live_server.url}/customers/{customer_a.pk}/", "customer")
    page.click("button[aria-label='Deactivate alice@acme.example']")
    dialog = page.locator(f"dialog#deactivate-{alice.pk}")
    assert dialog.is_visible()
    check_page(page, "customer-deactivate-dialog")
    dialog.locator("button[data-dialog-close]").click()
    assert not dialog.is_visible()
    alice.refresh_from_db()
    assert alice.is_active

    page.click("button[aria-label='Deactivate alice@acme.example']")
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector("text=alice@acme.example is deactivated")
    alice.refresh_from_db()
    assert not alice.is_active
    assert page.is_visible("button[aria-label='Reactivate alice@acme.example']")
