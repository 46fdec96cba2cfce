"""The reads behind the project pages: a project's status and progress, what a milestone
allows, and the customer's timeline."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.factories import make_project
from tranche.accounts.models import Customer, User
from tranche.billing.project_reads import (
    milestone_board,
    milestone_timeline,
    project_facts,
    project_rows,
)
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.drafts import milestone_complete
from tranche.billing.services.payments import payment_record_manual
from tranche.billing.services.retainage import retainage_release
from tranche.billing.services.sending import invoice_send
from tranche.core.errors import Invalid
from tranche.projects.models import Project
from tranche.projects.selectors import milestones_of
from tranche.projects.services import milestone_create, project_set_retainage
from tranche.sales.services import LineInput, ScheduleInput, quote_create

pytestmark = pytest.mark.django_db


def status_of(user: User, project: Project) -> tuple[str, int, int]:
    row = project_rows(user=user).get(pk=project.pk)
    return row.status, row.done_count, row.milestone_count  # type: ignore[attr-defined]


def pay(admin: User, invoice_id: int, amount: str) -> None:
    payment_record_manual(
        actor=admin,
        invoice_id=invoice_id,
        amount=Decimal(amount),
        method="bank_transfer",
        received_on=timezone.localdate(),
    )


def test_a_project_is_active_then_completed_then_paid(
    admin: User, alice: User, customer_a: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a, percentages=("40", "60"))
    assert status_of(admin, project) == ("active", 0, 2)

    first = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    pay(admin, first.pk, "400.00")
    assert status_of(admin, project) == ("active", 1, 2)

    second = draft_for(project, 2, admin)
    # Every milestone is done, but a draft is still to be sent: money is still to come,
    # for the customer too (who is not told a draft exists, only that it is not paid).
    assert status_of(admin, project) == ("completed", 2, 2)
    assert status_of(alice, project) == ("completed", 2, 2)

    invoice_send(actor=admin, invoice_id=second.pk)
    pay(admin, second.pk, "500.00")
    assert status_of(admin, project) == ("completed", 2, 2)
    pay(admin, second.pk, "100.00")
    assert status_of(admin, project) == ("paid", 2, 2)


def test_the_list_filters_by_status_and_customer_and_refuses_an_unknown_status(
    admin: User, customer_a: Customer, customer_b: Customer
) -> None:
    done = make_project(actor=admin, customer=customer_a, title="Done", percentages=("100",))
    draft_for(done, 1, admin)
    open_a = make_project(actor=admin, customer=customer_a, title="Open A")
    open_b = make_project(actor=admin, customer=customer_b, title="Open B")

    assert list(project_rows(user=admin, status="active")) == [open_b, open_a]
    assert list(project_rows(user=admin, status="completed")) == [done]
    assert list(project_rows(user=admin, status="paid")) == []
    assert list(project_rows(user=admin, customer_id=customer_b.pk)) == [open_b]
    assert list(project_rows(user=admin, customer_id=-1)) == []
    with pytest.raises(Invalid) as refused:
        project_rows(user=admin, status="finished")
    assert refused.value.code == "status_invalid"


def test_a_customer_filtering_by_another_customer_still_sees_only_her_own(
    admin: User, alice: User, customer_a: Customer, customer_b: Customer
) -> None:
    make_project(actor=admin, customer=customer_b, title="Theirs")
    mine = make_project(actor=admin, customer=customer_a, title="Mine")
    assert list(project_rows(user=alice)) == [mine]
    assert list(project_rows(user=alice, customer_id=customer_b.pk)) == []


def test_a_milestone_whose_invoice_was_sent_cannot_be_reopened_and_says_why(
    admin: User, customer_a: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    draft_for(project, 2, admin)

    rows = milestone_board(project, user=admin).rows
    assert rows[0].reopen_refusal == (
        f"Invoice {sent.number} was already sent for this milestone. Cancel the invoice "
        "first, then reopen the milestone."
    )
    assert rows[1].reopen_refusal is None  # its draft is cancelled by reopening
    assert rows[2].reopen_refusal is None
    assert [(r.first, r.last) for r in rows] == [(True, False), (False, False), (False, True)]


def test_a_milestone_whose_invoice_has_payments_says_to_refund_first_not_to_cancel(
    admin: User, customer_a: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a)
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    payment_record_manual(
        actor=admin,
        invoice_id=sent.pk,
        amount=Decimal("10.00"),
        method="bank_transfer",
        received_on=timezone.localdate(),
    )

    [first, *_] = milestone_board(project, user=admin).rows
    assert first.reopen_refusal == (
        f"Invoice {sent.number} for this milestone has payments, so the milestone cannot be "
        "reopened: refund the payments, cancel the invoice, then reopen it."
    )


def test_the_customer_timeline_shows_upcoming_completed_invoiced_and_paid(
    admin: User, alice: User, customer_a: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a, percentages=("25", "25", "25", "25"))
    paid = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    pay(admin, paid.pk, "250.00")
    invoice_send(actor=admin, invoice_id=draft_for(project, 2, admin).pk)
    draft_for(project, 3, admin)

    steps = milestone_timeline(project, user=alice)
    assert [s.state for s in steps] == ["paid", "invoiced", "completed", "upcoming"]
    assert [s.label for s in steps] == ["Paid", "Invoiced", "Completed", "Upcoming"]
    # The customer is never handed the draft itself.
    assert steps[2].row.invoice is None
    assert [str(s.row.amount) for s in steps] == ["$250.00"] * 4


def test_a_non_billable_milestone_completes_without_an_invoice_on_the_timeline(
    admin: User, alice: User, customer_a: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a, percentages=("100",))
    survey = milestone_create(actor=admin, project_id=project.pk, title="Survey")
    milestone_complete(actor=admin, project_id=project.pk, milestone_id=survey.pk)
    steps = milestone_timeline(project, user=alice)
    assert [(s.row.milestone.title, s.state) for s in steps] == [
        ("Step 1", "upcoming"),
        ("Survey", "completed"),
    ]


def test_the_facts_a_page_works_out_from_what_it_read_are_the_queried_ones(
    admin: User, customer_a: Customer
) -> None:
    """The financials tab has every invoice of the project and its milestones in hand
    and works out the deposit and retainage facts from them, without a query."""
    quote = quote_create(
        actor=admin,
        customer_id=customer_a.pk,
        title="Kitchen",
        currency="USD",
        lines=[LineInput("Build", Decimal(1), Decimal("1000.00"))],
        schedule=[
            ScheduleInput("Deposit", True, Decimal(30), True),
            ScheduleInput("Cabinets", True, Decimal(30), False),
            ScheduleInput("Handover", True, Decimal(40), False),
        ],
    )
    project = quote_accept(actor=admin, quote_id=quote.pk)
    project_set_retainage(actor=admin, project_id=project.pk, percentage=Decimal("10"))

    def same() -> bool:
        read = project_facts(
            project, milestones=milestones_of(project), invoices=list(project.invoices.all())
        )
        assert read == project_facts(project)
        return read.waiting_for_deposit

    assert same()  # the deposit is only a draft
    deposit = invoice_send(actor=admin, invoice_id=project.invoices.get().pk)
    assert same()
    pay(admin, deposit.pk, str(deposit.amount))
    assert not same()
    cabinets = draft_for(project, 2, admin)
    assert not same()
    invoice_send(actor=admin, invoice_id=cabinets.pk)
    retainage_release(actor=admin, project_id=project.pk)
    assert not same()
    invoice_cancel(actor=admin, invoice_id=cabinets.pk, reason="Wrong cabinets")
    assert not same()
