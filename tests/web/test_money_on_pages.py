"""The pages print amounts as Money: at the currency's precision, with its symbol or code."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.factories import PASSWORD, make_project
from tranche.accounts.models import Customer, User
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    assert client.post("/login/", {"username": user.email, "password": PASSWORD}).status_code == 302
    return client


def test_staff_and_the_customer_see_dinars_to_three_places(
    staff: User, admin: User, alice: User, customer_a: Customer
) -> None:
    project = make_project(
        actor=admin, customer=customer_a, currency="KWD", total="2468.013", percentages=("50", "50")
    )
    invoice = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=Decimal("1000"),
        method="bank_transfer",
        received_on=timezone.localdate(),
    )

    for user in (staff, alice):
        browser = signed_in(user)
        home = browser.get("/projects/").content.decode()
        assert '<td class="num" data-label="Contract total">KWD2,468.013</td>' in home
        page = browser.get(f"/projects/{project.pk}/").content.decode()
        if user.is_staff_member:  # the staff's totals are on the project's Financials tab
            page += browser.get(f"/projects/{project.pk}/financials").content.decode()
        for shown in (
            "KWD2,468.013",  # the contract total
            # milestone 1's share, and its invoice
            '<td class="num" data-label="Amount">KWD1,234.007</td>',
            "KWD1,234.006",  # milestone 2's share
            "<span>Invoiced</span><strong>KWD1,234.007</strong>",
            "<span>Paid</span><strong>KWD1,000.000</strong>",
            "<span>Outstanding</span><strong>KWD234.007</strong>",
            "<span>Not yet billed</span><strong>KWD1,234.006</strong>",
            '<td class="num" data-label="Amount due">KWD234.007</td>',  # the invoice's amount due
        ):
            assert shown in page, (user.email, shown)
        financials = browser.get("/financials/").content.decode()
        for shown in (
            "<span>Outstanding</span><strong>KWD234.007</strong>",
            "<span>Paid</span><strong>KWD1,000.000</strong>",
            '<td class="num" data-label="Amount">KWD1,234.007</td>',
        ):
            assert shown in financials, (user.email, shown)
    staff_page = signed_in(staff).get(f"/projects/{project.pk}/financials").content.decode()
    assert "<span>In draft</span><strong>KWD0.000</strong>" in staff_page
