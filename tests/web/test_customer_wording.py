"""A customer's pages speak to the customer: no link to the API docs or the operations
admin, and none of the staff's words (drafts, review, completing milestones)."""

from __future__ import annotations

import pytest

from tests.billing.helpers import draft_for
from tests.web.test_pages import signed_in
from tranche.accounts.models import User
from tranche.billing.services.sending import invoice_send
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db

STAFF_ONLY = (
    'href="/api/docs"',
    ">API<",
    'href="/admin/"',
    "Operations",
    "Financials",
    "Drafts to review",
    "In draft",
    "for review",
    "Mark complete",
    "Reopen",
    "Payment link",
    "Credit owed to customers",
    "Accepting a quote creates one",
)


def test_no_page_a_customer_opens_shows_staff_links_or_words(
    admin: User, alice: User, project_a: Project
) -> None:
    sent = invoice_send(actor=admin, invoice_id=draft_for(project_a, 1, admin).pk)
    draft_for(project_a, 2, admin)
    browser = signed_in(alice)

    pages = {
        path: browser.get(path)
        for path in ("/projects/", f"/projects/{project_a.pk}/", "/financials/", sent.payment_link)
    }

    assert {path: r.status_code for path, r in pages.items()} == dict.fromkeys(pages, 200)
    shown = {
        (path, words)
        for path, r in pages.items()
        for words in STAFF_ONLY
        if words in r.content.decode()
    }
    assert shown == set()
    assert (
        f'<a href="{sent.payment_link}" aria-label="Pay $300.00 for invoice {sent.number}">'
        "Pay $300.00</a>" in pages["/financials/"].content.decode()
    )


def test_staff_keep_their_links_to_the_api_docs_and_financials(staff: User) -> None:
    page = signed_in(staff).get("/projects/").content.decode()
    assert '<a href="/api/docs">API</a>' in page
    assert '<a href="/financials/">Financials</a>' in page
