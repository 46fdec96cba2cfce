"""Change orders: a draft made from the contract, sent, approved (online or on the
customer's behalf) or declined; on approval the contract becomes the next version and
the milestones not yet invoiced share what the invoiced ones leave, per rate, exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail

from tests.billing.change_order_helpers import change_order, line, sent
from tests.billing.helpers import draft_for
from tests.helpers import AfterCommit, unchanged
from tranche.accounts.models import User
from tranche.billing.contract_reads import change_order_preview, contract_history
from tranche.billing.models import Invoice
from tranche.billing.services.change_orders import change_order_approve
from tranche.core.errors import Conflict, Invalid, NotFound, PermissionDenied
from tranche.notifications.change_orders import change_order_send
from tranche.projects.amendment import ScheduleChange
from tranche.projects.contract import milestone_amounts
from tranche.projects.models import (
    ChangeOrderEvent,
    ChangeOrderStatus,
    Milestone,
    Project,
)
from tranche.projects.selectors import current_lines, milestones_of
from tranche.projects.services import milestone_create, milestone_update
from tranche.projects.services_change_orders import change_order_decline, change_order_update
from tranche.sales.services import Acceptance

D = Decimal

pytestmark = pytest.mark.django_db


def amounts(project: Project) -> list[Decimal]:
    project.refresh_from_db()
    milestones = milestones_of(project)
    found = milestone_amounts(project, milestones)
    return [found[m.pk] for m in milestones]


def test_a_new_change_order_starts_from_the_contract_and_is_numbered_in_its_project(
    project_a: Project, staff: User
) -> None:
    first = change_order(project_a, staff)
    second = change_order(project_a, staff, line("Build", "1000.00"), line("Deck", "250.00"))

    assert (first.reference, second.reference) == ("CO-1", "CO-2")
    assert [(x.description, x.line_total) for x in first.lines.all()] == [("Build", D("1000.00"))]
    assert second.lines.count() == 2
    assert first.status == ChangeOrderStatus.DRAFT
    assert [e.kind for e in ChangeOrderEvent.objects.filter(change_order=first)] == ["created"]


def test_a_customer_cannot_make_a_change_order(project_a: Project, alice: User) -> None:
    with unchanged(), pytest.raises(PermissionDenied):
        change_order(project_a, alice)


def test_staff_approval_makes_version_2_and_keeps_the_sent_invoice(
    project_a: Project, admin: User, staff: User
) -> None:
    invoice = sent(draft_for(project_a, 1, admin), admin)
    before = Invoice.objects.filter(pk=invoice.pk).values().get()
    order = change_order(project_a, staff, line("Build", "1000.00"), line("Deck", "500.00"))

    preview = change_order_preview(order)
    assert [r.after_total("USD").amount for r in preview.rows] == [
        D("300.00"),
        D("514.29"),  # 1200 left, shared 30 : 40 (renormalised)
        D("685.71"),
    ]
    change_order_approve(actor=staff, change_order_id=order.pk)

    project_a.refresh_from_db()
    order.refresh_from_db()
    assert project_a.contract_version == 2
    assert project_a.contract_total == D("1500.00")
    assert amounts(project_a) == [D("300.00"), D("514.29"), D("685.71")]
    assert Invoice.objects.filter(pk=invoice.pk).values().get() == before
    assert order.status == ChangeOrderStatus.APPROVED
    assert (order.approved_by, order.approved_name, order.approved_ip) == (staff, "", None)
    assert order.contract_version == 2
    assert [x.description for x in current_lines(project_a)] == ["Build", "Deck"]
    history = contract_history(project_a)
    assert [(v.number, str(v.total)) for v in history] == [(1, "$1,000.00"), (2, "$1,500.00")]
    assert history[1].changes == ["Added “Deck” ($500.00)"]


def test_the_next_milestone_completed_bills_its_new_share(project_a: Project, admin: User) -> None:
    order = change_order(project_a, admin, line("Build", "2000.00"))
    change_order_approve(actor=admin, change_order_id=order.pk)
    invoice = draft_for(project_a, 2, admin)
    assert invoice.contract_amount == D("600.00")


def test_the_schedule_changes_titles_percentages_adds_and_removes(
    project_a: Project, admin: User
) -> None:
    sent(draft_for(project_a, 1, admin), admin)
    _, second, third = milestones_of(project_a)
    order = change_order(
        project_a,
        admin,
        line("Build", "1000.00"),
        schedule=(
            ScheduleChange(second.pk, "Walls", True, D("50")),
            ScheduleChange(third.pk, "", False, None, remove=True),
            ScheduleChange(None, "Roof", True, D("50")),
            ScheduleChange(None, "Handover", False, None),
        ),
    )
    change_order_approve(actor=admin, change_order_id=order.pk)

    titles = [(m.title, m.position) for m in milestones_of(project_a)]
    assert titles == [("Step 1", 1), ("Walls", 2), ("Roof", 3), ("Handover", 4)]
    assert amounts(project_a) == [D("300.00"), D("350.00"), D("350.00"), D("0")]
    assert not Milestone.objects.filter(pk=third.pk).exists()


def test_an_invoiced_milestone_cannot_be_changed_by_a_change_order(
    project_a: Project, admin: User
) -> None:
    first = milestones_of(project_a)[0]
    draft_for(project_a, 1, admin)
    with unchanged(), pytest.raises(Invalid) as refused:
        change_order(
            project_a,
            admin,
            schedule=(ScheduleChange(first.pk, "Other", True, D("10")),),
        )
    assert refused.value.code == "milestone_not_changeable"


def test_a_customer_approves_online_with_name_agreement_and_address(
    project_a: Project, admin: User, alice: User
) -> None:
    order = change_order(project_a, admin, line("Build", "1100.00"))
    with pytest.raises(NotFound):  # a draft is not hers to see
        change_order_approve(
            actor=alice, change_order_id=order.pk, acceptance=Acceptance("Alice A", True, None)
        )
    change_order_send(actor=admin, change_order_id=order.pk)
    with unchanged(), pytest.raises(Invalid) as no_name:
        change_order_approve(
            actor=alice, change_order_id=order.pk, acceptance=Acceptance("A", True, "10.0.0.1")
        )
    with unchanged(), pytest.raises(Invalid) as not_agreed:
        change_order_approve(
            actor=alice,
            change_order_id=order.pk,
            acceptance=Acceptance("Alice Archer", False, "10.0.0.1"),
        )
    assert (no_name.value.code, not_agreed.value.code) == (
        "signature_required",
        "agreement_required",
    )

    change_order_approve(
        actor=alice,
        change_order_id=order.pk,
        acceptance=Acceptance("Alice Archer", True, "10.0.0.1"),
    )
    order.refresh_from_db()
    assert (order.approved_name, order.approved_ip, order.approved_by) == (
        "Alice Archer",
        "10.0.0.1",
        alice,
    )
    event = order.events.get(kind="approved")
    assert event.details["name"] == "Alice Archer"
    assert event.details["on_behalf"] is False


def test_another_customer_cannot_approve_or_decline(
    project_a: Project, admin: User, bob: User
) -> None:
    order = change_order(project_a, admin, line("Build", "1100.00"))
    change_order_send(actor=admin, change_order_id=order.pk)
    with unchanged():
        with pytest.raises(NotFound):
            change_order_approve(
                actor=bob, change_order_id=order.pk, acceptance=Acceptance("Bob B", True, None)
            )
        with pytest.raises(NotFound):
            change_order_decline(actor=bob, change_order_id=order.pk, reason="no")


def test_sending_emails_the_customer_a_link(
    project_a: Project, admin: User, after_commit: AfterCommit
) -> None:
    order = change_order(project_a, admin, line("Build", "1200.00"))
    with after_commit(execute=True):
        change_order_send(actor=admin, change_order_id=order.pk)
    [email] = mail.outbox
    assert email.to == ["accounts@acme.example"]
    assert "CO-1" in email.subject
    assert f"/change-orders/{order.pk}/" in email.body
    assert "$1,000.00 before, $1,200.00 after" in email.body


def test_a_declined_change_order_keeps_the_contract(
    project_a: Project, admin: User, alice: User
) -> None:
    order = change_order(project_a, admin, line("Build", "1200.00"))
    change_order_send(actor=admin, change_order_id=order.pk)
    change_order_decline(actor=alice, change_order_id=order.pk, reason="Too dear", ip="10.0.0.2")
    order.refresh_from_db()
    project_a.refresh_from_db()
    assert (order.status, order.decline_reason) == ("declined", "Too dear")
    assert project_a.contract_version == 1
    with unchanged(), pytest.raises(Conflict) as again:
        change_order_approve(actor=admin, change_order_id=order.pk)
    assert again.value.code == "change_order_answered"


def test_only_a_draft_can_be_edited(project_a: Project, admin: User) -> None:
    order = change_order(project_a, admin)
    change_order_update(actor=admin, change_order_id=order.pk, lines=[line("Build", "900.00")])
    assert change_order_preview(order).after_total.amount == D("900.00")
    change_order_send(actor=admin, change_order_id=order.pk)
    with unchanged(), pytest.raises(Conflict) as refused:
        change_order_update(actor=admin, change_order_id=order.pk, title="Other")
    assert refused.value.code == "change_order_not_draft"


def test_below_what_was_invoiced_approval_needs_a_credit_note(
    project_a: Project, admin: User
) -> None:
    sent(draft_for(project_a, 1, admin), admin)  # 300.00 invoiced
    order = change_order(project_a, admin, line("Build", "200.00"))
    preview = change_order_preview(order)
    assert str(preview.shortfall_total) == "$100.00"
    with unchanged(), pytest.raises(Conflict) as refused:
        change_order_approve(actor=admin, change_order_id=order.pk)
    assert refused.value.code == "credit_note_required"
    assert "$100.00" in refused.value.detail


def test_below_what_was_invoiced_approval_can_issue_the_credit_note(
    project_a: Project, admin: User
) -> None:
    invoice = sent(draft_for(project_a, 1, admin), admin)
    order = change_order(project_a, admin, line("Build", "200.00"))
    change_order_approve(actor=admin, change_order_id=order.pk, issue_credit_note=True)
    project_a.refresh_from_db()
    invoice.refresh_from_db()
    assert project_a.contract_version == 2
    assert invoice.amount_credited == D("100.00")  # one credit note for the difference
    assert amounts(project_a) == [D("200.00"), D("0"), D("0")]
    # More in test_change_order_credit.py.


def test_nothing_left_to_bill_it_with_is_refused(project_a: Project, admin: User) -> None:
    sent(draft_for(project_a, 1, admin), admin)
    _, second, third = milestones_of(project_a)
    order = change_order(
        project_a,
        admin,
        line("Build", "1000.00"),
        schedule=(
            ScheduleChange(second.pk, "", False, None, remove=True),
            ScheduleChange(third.pk, "", False, None, remove=True),
        ),
    )
    with unchanged(), pytest.raises(Conflict) as refused:
        change_order_approve(actor=admin, change_order_id=order.pk)
    assert refused.value.code == "schedule_empty"


def test_after_an_amendment_billing_changes_only_through_change_orders(
    project_a: Project, admin: User
) -> None:
    order = change_order(project_a, admin, line("Build", "1200.00"))
    change_order_approve(actor=admin, change_order_id=order.pk)
    second = milestones_of(project_a)[1]
    with unchanged(), pytest.raises(Conflict) as refused:
        milestone_update(
            actor=admin, project_id=project_a.pk, milestone_id=second.pk, billing_percentage=D(10)
        )
    assert refused.value.code == "contract_amended"
    assert "change order" in refused.value.detail
    with unchanged(), pytest.raises(Conflict):
        milestone_create(
            actor=admin,
            project_id=project_a.pk,
            title="Extra",
            is_billable=True,
            billing_percentage=D(5),
        )
    # What does not touch the money still can change.
    milestone_update(actor=admin, project_id=project_a.pk, milestone_id=second.pk, title="Walls")
    milestone_create(actor=admin, project_id=project_a.pk, title="Site visit")
    assert sum(amounts(project_a)) == D("1200.00")
