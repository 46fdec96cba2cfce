"""A project's pages in a real browser: staff add a milestone, move it, complete a
billable milestone through its confirmation dialog (which names the amount); an admin
reopens it through another dialog; the customer follows the milestone timeline. Every tab
and the customer's page pass the axe, phone-width and CSP checks at both widths."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.billing.helpers import draft_for
from tests.browser.quality import LAPTOP, PHONE, check_page, signed_in_page
from tests.factories import make_project
from tranche.accounts.models import Customer, User
from tranche.billing.models import Invoice
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db(transaction=True)


def announced(page: Page, sentence: str) -> None:
    expect(page.locator("#messages")).to_have_text(sentence)
    expect(page.locator("#messages")).to_be_focused()


def test_staff_shape_the_schedule_and_complete_a_milestone_through_the_dialog(
    browser: Browser, live_server: Any, staff: User, admin: User, customer_a: Customer
) -> None:
    project = make_project(
        actor=admin, customer=customer_a, title="Garden office", total="10000.00"
    )
    base = f"{live_server.url}/projects/{project.pk}/"
    page = signed_in_page(browser, live_server, staff, LAPTOP)
    page.goto(base)
    check_page(page, "project-milestones")

    page.fill("#add-title", "Site survey")
    page.fill("#add-planned", "2027-03-01")
    page.click("button:has-text('Add milestone')")
    announced(page, "Added milestone 'Site survey' at the end of the schedule.")

    page.get_by_role("button", name="Move Site survey up").click()
    announced(page, "Moved 'Site survey' to position 3.")
    titles = page.locator("table.milestones td[data-label=Milestone]").all_inner_texts()
    assert titles == ["Step 1", "Step 2", "Site survey", "Step 3"]

    page.get_by_role("button", name="Complete milestone Step 1").click()
    dialog = page.get_by_role("dialog", name="Complete “Step 1”?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(
        "Completing 'Step 1' creates a draft invoice for $3,000.00 (30 % of the contract). "
        "Nobody is emailed until an admin sends it."
    )
    check_page(page, "project-complete-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert not Invoice.objects.exists()

    page.get_by_role("button", name="Complete milestone Step 1").click()
    dialog.get_by_role("button", name="Complete milestone").click()
    announced(
        page,
        "Completed 'Step 1'. A draft invoice for $3,000.00 is waiting for an admin to send it.",
    )
    assert Invoice.objects.get().status == "draft"
    expect(page.get_by_text("Only an admin can reopen it.")).to_be_visible()

    for width, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        if width == "phone":
            page.close()
            page = signed_in_page(browser, live_server, staff, viewport)
            page.goto(base)
            check_page(page, "project-milestones")
        for tab in ("Financials", "Activity"):
            page.get_by_role("navigation", name="Project sections").get_by_role(
                "link", name=tab
            ).click()
            expect(page.locator("[aria-current=page]")).to_have_text(tab)
            check_page(page, f"project-{tab.lower()}")
    expect(page.get_by_text("creating a draft invoice for $3,000.00")).to_be_visible()


def test_an_admin_reopens_a_milestone_and_the_customer_follows_the_timeline(
    browser: Browser, live_server: Any, admin: User, alice: User, customer_a: Customer
) -> None:
    project: Project = make_project(
        actor=admin, customer=customer_a, title="Boathouse", total="1000.00"
    )
    invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    draft_for(project, 2, admin)

    page = signed_in_page(browser, live_server, admin, PHONE)
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    expect(page.get_by_text("was already sent for this milestone")).to_be_visible()
    page.get_by_role("button", name="Reopen milestone Step 2").click()
    dialog = page.get_by_role("dialog", name="Reopen “Step 2”?")
    expect(dialog).to_contain_text("cancels its draft invoice for $300.00")
    check_page(page, "project-reopen-dialog")
    dialog.get_by_role("button", name="Reopen milestone").click()
    announced(page, "Reopened 'Step 2'. Any draft invoice for it was cancelled.")
    page.goto(f"{live_server.url}/projects/{project.pk}/financials")
    check_page(page, "project-financials-admin")

    for viewport in (PHONE, LAPTOP):
        customer = signed_in_page(browser, live_server, alice, viewport)
        customer.goto(f"{live_server.url}/projects/{project.pk}/")
        steps = customer.locator("ol.timeline .step-head").all_inner_texts()
        assert [" ".join(s.split()) for s in steps] == [
            "Step 1 Invoiced",
            "Step 2 Upcoming",
            "Step 3 Upcoming",
        ]
        expect(customer.get_by_role("link", name="Pay $300.00 for invoice")).to_be_visible()
        check_page(customer, "project-customer")
        customer.close()
