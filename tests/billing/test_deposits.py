"""Deposits: a schedule item billed on acceptance. Accepting the quote completes its
milestone and makes its draft invoice in the acceptance's transaction (or sends it, if the
business sends deposit invoices automatically); the project waits for its deposit until
every deposit invoice is paid."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.stripe_server import FakeStripe
from tests.helpers import REFUSED_STAFF_ONLY, AfterCommit, Api, unchanged
from tranche.accounts.models import Business, Customer, User
from tranche.billing.models import EventKind, Invoice, InvoiceStatus
from tranche.billing.project_reads import ProjectStatus, project_rows
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.drafts import milestone_reopen
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.sending import invoice_send
from tranche.core.errors import Conflict
from tranche.notifications.models import OutboxEmail
from tranche.notifications.quotes import quote_send
from tranche.projects.contract import milestone_amounts
from tranche.projects.models import MilestoneStatus, Project
from tranche.sales.models import Quote, ScheduleItem
from tranche.sales.services import Acceptance, LineInput, ScheduleInput, quote_create

pytestmark = pytest.mark.django_db

# (title, percentage, billed on acceptance)
KITCHEN = (("Deposit", "30", True), ("Cabinets", "30", False), ("Handover", "40", False))


def deposit_quote(
    actor: User,
    customer: Customer,
    schedule: tuple[tuple[str, str, bool], ...] = KITCHEN,
    *,
    total: str = "1000.00",
    currency: str = "USD",
) -> Quote:
    return quote_create(
        actor=actor,
        customer_id=customer.pk,
        title="Kitchen",
        currency=currency,
        lines=[LineInput("Build", Decimal(1), Decimal(total))],
        schedule=[ScheduleInput(t, True, Decimal(p), d) for t, p, d in schedule],
    )


def send_quote(quote: Quote, actor: User) -> None:
    quote_send(actor=actor, quote_id=quote.pk)


def status_of(project: Project, user: User) -> str:
    return project_rows(user=user).get(pk=project.pk).status  # type: ignore[attr-defined, no-any-return]


def test_staff_accept_a_quote_with_a_deposit_and_its_draft_is_made_at_once(
    as_: Callable[[str], Api], staff: User, admin: User, customer_a: Customer
) -> None:
    quote = deposit_quote(admin, customer_a)

    response = as_("staff").post(f"/api/quotes/{quote.pk}/accept")

    assert response.status == 201
    project = Project.objects.get(origin_quote=quote)
    deposit, cabinets, handover = project.milestones.order_by("position")
    assert deposit.bill_on_acceptance
    assert deposit.status == MilestoneStatus.COMPLETED
    assert deposit.completed_by == staff
    assert (cabinets.status, handover.status) == (MilestoneStatus.PENDING,) * 2
    [invoice] = Invoice.objects.all()
    assert (invoice.milestone, invoice.status, invoice.amount) == (
        deposit,
        InvoiceStatus.DRAFT,
        Decimal("300.000"),
    )
    assert [i["id"] for i in response.body["deposit_invoices"]] == [invoice.pk]
    assert response.body["deposit_invoices"][0]["amount"] == "300.00"
    body = response.body["project"]
    assert body["waiting_for_deposit"] is True
    assert [m["bill_on_acceptance"] for m in body["milestones"]] == [True, False, False]
    assert status_of(project, staff) == ProjectStatus.WAITING_FOR_DEPOSIT
    assert list(project_rows(user=staff, status="waiting_for_deposit")) == [project]


def test_a_customer_accepting_online_gets_the_same_deposit_draft(
    admin: User, alice: User, customer_a: Customer
) -> None:
    quote = deposit_quote(admin, customer_a)
    send_quote(quote, admin)

    project = quote_accept(
        actor=alice, quote_id=quote.pk, acceptance=Acceptance("Alice Example", True, "10.0.0.1")
    )

    [invoice] = project.invoices.all()
    assert invoice.status == InvoiceStatus.DRAFT
    assert invoice.milestone == project.milestones.get(bill_on_acceptance=True)
    assert status_of(project, alice) == ProjectStatus.WAITING_FOR_DEPOSIT


def test_a_retried_acceptance_is_refused_and_bills_nothing_twice(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    quote = deposit_quote(admin, customer_a)
    assert as_("staff").post(f"/api/quotes/{quote.pk}/accept").status == 201
    api = as_("admin")

    with unchanged():
        again = api.post(f"/api/quotes/{quote.pk}/accept")

    assert again.status == 409
    assert Invoice.objects.count() == 1


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_who_may_not_accept_on_the_customers_behalf(
    as_: Callable[[str], Api],
    admin: User,
    customer_a: Customer,
    persona: str,
    status: int,
    code: str,
) -> None:
    quote = deposit_quote(admin, customer_a)
    api = as_(persona)
    with unchanged():
        response = api.post(f"/api/quotes/{quote.pk}/accept")
    assert (response.status, response.body["code"]) == (status, code)


def test_a_schedule_without_deposits_makes_no_invoice_and_does_not_wait(
    admin: User, customer_a: Customer
) -> None:
    quote = deposit_quote(admin, customer_a, (("One", "50", False), ("Two", "50", False)))
    project = quote_accept(actor=admin, quote_id=quote.pk)
    assert not Invoice.objects.exists()
    assert status_of(project, admin) == ProjectStatus.ACTIVE


def test_the_project_waits_until_every_deposit_invoice_is_paid(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    schedule = (("Deposit", "20", True), ("Materials", "30", True), ("Handover", "50", False))
    project = quote_accept(actor=admin, quote_id=deposit_quote(admin, customer_a, schedule).pk)
    first, second = project.invoices.order_by("milestone__position")
    today = timezone.localdate()
    for invoice in (first, second):
        invoice_send(actor=admin, invoice_id=invoice.pk)

    payment_record_manual(
        actor=admin,
        invoice_id=first.pk,
        amount=first.amount,
        method="bank_transfer",
        received_on=today,
    )
    assert status_of(project, admin) == ProjectStatus.WAITING_FOR_DEPOSIT
    assert as_("alice").get(f"/api/projects/{project.pk}").body["waiting_for_deposit"] is True

    payment_record_manual(
        actor=admin,
        invoice_id=second.pk,
        amount=second.amount,
        method="bank_transfer",
        received_on=today,
    )
    assert status_of(project, admin) == ProjectStatus.ACTIVE
    assert as_("alice").get(f"/api/projects/{project.pk}").body["waiting_for_deposit"] is False
    assert as_("admin").get(f"/api/projects/{project.pk}").body["waiting_for_deposit"] is False


def test_deposit_invoices_are_sent_after_the_commit_when_the_business_says_so(
    admin: User, customer_a: Customer, after_commit: AfterCommit
) -> None:
    Business.objects.create(pk=1, send_deposits_automatically=True)
    schedule = (("Deposit", "20", True), ("Materials", "30", True), ("Handover", "50", False))
    quote = deposit_quote(admin, customer_a, schedule)

    with after_commit(execute=True):
        project = quote_accept(actor=admin, quote_id=quote.pk)

    invoices = list(project.invoices.order_by("pk"))
    assert [i.status for i in invoices] == [InvoiceStatus.PENDING] * 2
    assert all(i.number and i.payment_link for i in invoices)
    assert OutboxEmail.objects.filter(kind="invoice_sent").count() == 2


def test_without_the_setting_nothing_is_sent(
    admin: User, customer_a: Customer, after_commit: AfterCommit
) -> None:
    with after_commit(execute=True):
        project = quote_accept(actor=admin, quote_id=deposit_quote(admin, customer_a).pk)
    assert project.invoices.get().status == InvoiceStatus.DRAFT
    assert not OutboxEmail.objects.filter(kind="invoice_sent").exists()


def test_a_deposit_that_cannot_be_sent_stays_a_draft_with_the_reason_and_acceptance_stands(
    admin: User, after_commit: AfterCommit
) -> None:
    Business.objects.create(pk=1, send_deposits_automatically=True)
    no_email = Customer.objects.create(name="No Email Ltd", billing_email="")
    quote = deposit_quote(admin, no_email)

    with after_commit(execute=True):
        project = quote_accept(actor=admin, quote_id=quote.pk)

    invoice = project.invoices.get()
    assert invoice.status == InvoiceStatus.DRAFT
    assert invoice.number is None
    failed = invoice.events.get(kind=EventKind.SEND_FAILED)
    assert failed.details["automatic"] is True
    assert "billing email" in failed.details["error"]
    assert Quote.objects.get(pk=quote.pk).status == "accepted"


def test_a_provider_failure_leaves_the_deposit_draft_and_one_failure_event(
    admin: User, customer_a: Customer, after_commit: AfterCommit, fake_stripe: FakeStripe
) -> None:
    Business.objects.create(pk=1, send_deposits_automatically=True)
    fake_stripe.mode = "error"

    with after_commit(execute=True):
        project = quote_accept(actor=admin, quote_id=deposit_quote(admin, customer_a).pk)

    invoice = project.invoices.get()
    assert invoice.status == InvoiceStatus.DRAFT
    assert invoice.events.filter(kind=EventKind.SEND_FAILED).count() == 1


def test_a_deposit_must_be_billable(as_: Callable[[str], Api], customer_a: Customer) -> None:
    body = {
        "customer_id": customer_a.pk,
        "title": "Kitchen",
        "currency": "USD",
        "lines": [{"description": "Build", "quantity": "1", "unit_price": "1000"}],
        "schedule": [
            {"title": "Survey", "is_billable": False, "bill_on_acceptance": True},
            {"title": "All", "is_billable": True, "billing_percentage": "100"},
        ],
    }
    api = as_("staff")
    with unchanged():
        response = api.post("/api/quotes", body)
    assert (response.status, response.body["code"]) == (422, "deposit_not_billable")


def test_a_deposit_that_would_bill_nothing_is_refused_when_the_quote_is_made(
    as_: Callable[[str], Api], customer_a: Customer
) -> None:
    """30 % of $0.01 is nothing: accepting such a quote could only ever fail (an invoice
    bills more than zero), so the quote is refused before anyone can send it."""
    body = {
        "customer_id": customer_a.pk,
        "title": "Kitchen",
        "currency": "USD",
        "lines": [{"description": "Build", "quantity": "1", "unit_price": "0.01"}],
        "schedule": [
            {
                "title": "Deposit",
                "is_billable": True,
                "billing_percentage": "30",
                "bill_on_acceptance": True,
            },
            {"title": "Rest", "is_billable": True, "billing_percentage": "70"},
        ],
    }
    api = as_("staff")
    with unchanged():
        response = api.post("/api/quotes", body)
    assert (response.status, response.body["code"]) == (422, "deposit_amount_zero")
    assert response.body["detail"] == (
        "Deposit 'Deposit' would bill nothing: 30 % of $0.01 rounds to $0.00. Raise its "
        "percentage or the total, or bill it later."
    )


def test_the_database_refuses_a_deposit_that_bills_nothing(
    admin: User, customer_a: Customer
) -> None:
    quote = deposit_quote(admin, customer_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        ScheduleItem.objects.create(quote=quote, position=9, title="x", bill_on_acceptance=True)


def test_the_quote_api_says_which_items_are_billed_on_acceptance(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    quote = deposit_quote(admin, customer_a)
    body = as_("staff").get(f"/api/quotes/{quote.pk}").body
    assert [item["bill_on_acceptance"] for item in body["schedule"]] == [True, False, False]


def test_making_a_deposit_milestone_non_billable_drops_the_deposit(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    schedule = (("Deposit", "30", True), ("Rest", "70", False))
    project = quote_accept(actor=admin, quote_id=deposit_quote(admin, customer_a, schedule).pk)
    deposit = project.milestones.get(position=1)
    milestone_reopen(actor=admin, project_id=project.pk, milestone_id=deposit.pk)

    response = as_("staff").patch(
        f"/api/projects/{project.pk}/milestones/{deposit.pk}", {"is_billable": False}
    )

    assert response.status == 200
    assert response.body["bill_on_acceptance"] is False


schedules = st.lists(
    st.tuples(st.integers(min_value=1, max_value=40), st.booleans()), min_size=1, max_size=5
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=schedules,
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
    total=st.integers(min_value=100, max_value=10_000_000),
)
def test_acceptance_makes_exactly_one_draft_per_deposit_for_its_share(
    admin: User, customer_a: Customer, items: list[tuple[int, bool]], currency: str, total: int
) -> None:
    percentages = [p for p, _ in items]
    rest = 100 - sum(percentages)
    if rest < 0:
        return
    schedule = [(f"Step {n}", str(p), d) for n, (p, d) in enumerate(items, 1)]
    if rest:
        schedule.append(("Rest", str(rest), False))
    with transaction.atomic():
        quote = deposit_quote(
            admin, customer_a, tuple(schedule), total=str(total), currency=currency
        )
        project = quote_accept(actor=admin, quote_id=quote.pk)
        milestones = list(project.milestones.order_by("position"))
        amounts = milestone_amounts(project, milestones)
        deposits = [m for m in milestones if m.bill_on_acceptance]
        invoices = list(project.invoices.order_by("milestone__position"))
        assert [i.milestone_id for i in invoices] == [m.pk for m in deposits]
        assert [i.contract_amount for i in invoices] == [amounts[m.pk] for m in deposits]
        assert all(m.status == MilestoneStatus.COMPLETED for m in deposits)
        # A second acceptance is refused and makes nothing.
        with pytest.raises(Conflict), transaction.atomic():
            quote_accept(actor=admin, quote_id=quote.pk)
        assert project.invoices.count() == len(deposits)
        transaction.set_rollback(True)
