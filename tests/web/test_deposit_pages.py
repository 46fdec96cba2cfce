"""Deposits on the pages: the quote editor marks a step billed on acceptance, the quote
(staff page, the customer's portal, the email) says so, and accepting it on the page makes
the deposit's draft at once; the project says "Waiting for deposit" to staff and customer
until the deposit is paid."""

from __future__ import annotations

import html
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tests.web.test_quotes_pages import form_body, sent
from tranche.accounts.models import Customer, User
from tranche.billing.models import InvoiceStatus
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.notifications.models import OutboxEmail
from tranche.projects.models import Project
from tranche.sales.models import Quote
from tranche.sales.services import LineInput, ScheduleInput, quote_create

pytestmark = pytest.mark.django_db

DEPOSIT = "billed on acceptance (deposit)"


def text(response: object) -> str:
    return html.unescape(response.content.decode())  # type: ignore[attr-defined]


def deposit_quote(admin: User, customer: Customer) -> Quote:
    return quote_create(
        actor=admin,
        customer_id=customer.pk,
        title="Kitchen",
        currency="USD",
        lines=[LineInput("Build", Decimal(1), Decimal("1000.00"))],
        schedule=[
            ScheduleInput("Deposit", True, Decimal(30), True),
            ScheduleInput("Handover", True, Decimal(70)),
        ],
    )


def test_the_editor_saves_a_step_billed_on_acceptance(staff: User, customer_a: Customer) -> None:
    response = signed_in(staff).post(
        "/quotes/new", form_body(customer_a, **{"item-1-deposit": "on"}), follow=True
    )
    quote = Quote.objects.get()
    assert [i.bill_on_acceptance for i in quote.schedule.all()] == [True, False, False]
    assert DEPOSIT in text(response)


def test_a_deposit_that_bills_nothing_is_refused_beside_the_step(
    staff: User, customer_a: Customer
) -> None:
    body = form_body(
        customer_a,
        **{"item-1-deposit": "on", "item-1-billable": None, "item-1-percentage": ""},
    )
    client = signed_in(staff)
    with unchanged():
        response = client.post("/quotes/new", body)
    page = text(response)
    assert 'aria-describedby="item-1-deposit-error"' in page
    assert "so it cannot be billed on acceptance" in page


def test_the_edit_form_shows_the_deposit_ticked(admin: User, customer_a: Customer) -> None:
    quote = deposit_quote(admin, customer_a)
    page = text(signed_in(admin).get(f"/quotes/{quote.pk}/edit"))
    assert 'id="item-1-deposit" name="item-1-deposit" checked' in page
    assert 'id="item-2-deposit" name="item-2-deposit">' in page


def test_the_customer_reads_the_deposit_on_the_quote_and_in_its_email(
    admin: User, alice: User, customer_a: Customer
) -> None:
    quote = sent(deposit_quote(admin, customer_a), admin)
    assert DEPOSIT in text(signed_in(alice).get(f"/quotes/{quote.pk}/"))
    email = OutboxEmail.objects.get(kind="quote_sent")
    assert "Deposit (30 %): billed on acceptance (deposit)" in email.body_text
    assert "billed on acceptance (deposit)" in email.body_html


def test_accepting_on_the_page_makes_the_deposit_draft_and_the_project_waits(
    admin: User, alice: User, customer_a: Customer
) -> None:
    quote = sent(deposit_quote(admin, customer_a), admin)

    signed_in(alice).post(
        f"/quotes/{quote.pk}/accept", {"name": "Alice Example", "agree": "on"}, follow=True
    )

    project = Project.objects.get(origin_quote=quote)
    invoice = project.invoices.get()
    assert invoice.status == InvoiceStatus.DRAFT
    staff_page = text(signed_in(admin).get(f"/projects/{project.pk}/"))
    assert "Waiting for deposit" in staff_page
    customer_page = text(signed_in(alice).get(f"/projects/{project.pk}/"))
    assert "Waiting for deposit" in customer_page
    listed = text(signed_in(admin).get("/projects/?status=waiting_for_deposit"))
    assert "Kitchen" in listed

    invoice_send(actor=admin, invoice_id=invoice.pk)
    invoice.refresh_from_db()
    payment_record_manual(
        actor=admin,
        invoice_id=invoice.pk,
        amount=invoice.amount,
        method="bank_transfer",
        received_on=timezone.localdate(),
    )
    assert "Waiting for deposit" not in text(signed_in(alice).get(f"/projects/{project.pk}/"))


def test_staff_accepting_on_the_quote_page_bills_the_deposit(
    admin: User, customer_a: Customer
) -> None:
    quote = deposit_quote(admin, customer_a)
    dialog = text(signed_in(admin).get(f"/quotes/{quote.pk}/?confirm=accept"))
    assert (
        "“Deposit” is billed on acceptance (deposit): its milestone is completed and a draft "
        "invoice for $300.00 is made at once." in dialog
    )
    signed_in(admin).post(f"/quotes/{quote.pk}/accept", follow=True)
    assert Project.objects.get(origin_quote=quote).invoices.count() == 1


def test_quote_accept_with_no_deposits_leaves_no_invoice(admin: User, customer_a: Customer) -> None:
    quote = quote_create(
        actor=admin,
        customer_id=customer_a.pk,
        title="Plain",
        currency="USD",
        lines=[LineInput("Build", Decimal(1), Decimal("10.00"))],
        schedule=[ScheduleInput("All", True, Decimal(100))],
    )
    project = quote_accept(actor=admin, quote_id=quote.pk)
    assert not project.invoices.exists()
