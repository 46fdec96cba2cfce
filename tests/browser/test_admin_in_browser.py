"""The operations admin in a real browser under Tranche's strict Content-Security-Policy:
an admin signs in, looks through the lists, and retries a failed email with the action
menu; the browser reports no blocked script or style along the way."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.billing.helpers import draft_for
from tests.factories import PASSWORD, make_project
from tests.fakes.smtp_server import SmtpServer
from tranche.accounts.models import Customer, User
from tranche.billing.services.sending import invoice_send
from tranche.notifications.delivery import outbox_deliver_due
from tranche.notifications.models import OutboxEmail, OutboxStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_retries_a_failed_email_from_the_admin_in_a_browser(
    page: Page, live_server: Any, admin: User, customer_a: Customer, smtp: SmtpServer
) -> None:
    project = make_project(actor=admin, customer=customer_a, title="Boathouse")
    smtp.stop()
    invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    email = OutboxEmail.objects.get()
    while email.status != OutboxStatus.FAILED:
        outbox_deliver_due(now=email.next_attempt_at)
        email.refresh_from_db()
    smtp.start()

    blocked: list[str] = []
    page.on(
        "console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None
    )

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", admin.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Tranche operations")
    for name in ("Stripe events", "Invoice events", "Invoices", "Payments", "Customers"):
        page.click(f"#content-main a:has-text('{name}')")
        page.wait_for_selector("#changelist")
        page.goto(f"{live_server.url}/admin/")

    page.click("#content-main a:has-text('Outbox emails')")
    page.click("#changelist-filter a:has-text('Failed')")
    page.check(f"input[name=_selected_action][value='{email.pk}']")
    assert page.is_visible("text=1 of 1 selected")  # the admin's own script runs
    page.select_option("select[name=action]", "retry")
    page.click("button[name=index]")
    page.wait_for_selector("text=1 failed email(s) will be sent again.")

    email.refresh_from_db()
    assert email.status == OutboxStatus.SENT
    assert [m["To"] for m in smtp.messages] == ["accounts@acme.example"]
    assert blocked == []
