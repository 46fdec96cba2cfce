"""Retainage: each milestone invoice bills its whole gross (tax on the whole supply),
withholds round_half_up(gross x p / 100) and asks for the rest now. The project tracks what
is held; completing the last billable milestone makes a release draft for exactly that
(staff may release early), and held + released = withheld, held >= 0, always."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.billing.change_order_helpers import change_order, line
from tests.billing.helpers import draft_for
from tests.factories import make_project
from tests.helpers import REFUSED_ADMIN_ONLY, REFUSED_STAFF_ONLY, Api, unchanged
from tranche.accounts.models import Customer, TaxRate, User
from tranche.billing.models import CreditNote, Invoice, InvoiceStatus, InvoiceType
from tranche.billing.retainage import project_retainage, withhold
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.cancelling import invoice_cancel
from tranche.billing.services.change_orders import change_order_approve
from tranche.billing.services.drafts import (
    invoice_update_draft,
    milestone_complete,
    milestone_reopen,
    unbilled_amount,
)
from tranche.billing.services.retainage import retainage_release
from tranche.billing.services.sending import invoice_send
from tranche.billing.taxes import invoice_bases
from tranche.core.errors import Conflict
from tranche.core.money import ZERO
from tranche.projects.amendment import ScheduleChange
from tranche.projects.contract import milestone_amounts
from tranche.projects.models import Project, ProjectEventKind
from tranche.projects.services import project_set_retainage
from tranche.sales.services import LineInput, ScheduleInput, quote_create

pytestmark = pytest.mark.django_db


def with_retainage(project: Project, admin: User, percentage: str) -> Project:
    return project_set_retainage(actor=admin, project_id=project.pk, percentage=Decimal(percentage))


def live(project: Project, kind: str) -> list[Invoice]:
    return list(
        project.invoices.filter(invoice_type=kind)
        .exclude(status=InvoiceStatus.CANCELLED)
        .order_by("pk")
    )


def check_invariants(project: Project) -> None:
    """held + released = withheld, held >= 0, from the invoice rows themselves."""
    withheld = sum((i.retainage_amount for i in live(project, InvoiceType.MILESTONE)), ZERO)
    released = sum((i.amount for i in live(project, InvoiceType.RETAINAGE_RELEASE)), ZERO)
    r = project_retainage(project)
    assert r.withheld.amount == withheld
    assert r.released.amount == released
    assert r.held.amount + r.released.amount == r.withheld.amount
    assert r.held.amount >= 0


# --- the arithmetic -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gross", "percentage", "currency", "withheld"),
    [
        ("1000.00", "10", "USD", "100.00"),
        ("333.33", "5", "USD", "16.67"),  # 16.6665 rounds half up
        ("0.10", "5", "USD", "0.01"),  # 0.005 rounds half up
        ("1001", "2.5", "JPY", "25"),  # 25.025
        ("1.001", "50", "KWD", "0.501"),  # 0.5005
        ("0.01", "99.99", "USD", "0.00"),  # never the whole gross: one cent is still due
        ("500.00", "0", "USD", "0"),
    ],
)
def test_the_retainage_withheld_is_the_gross_share_rounded_half_up(
    gross: str, percentage: str, currency: str, withheld: str
) -> None:
    assert withhold(Decimal(gross), Decimal(percentage), currency) == Decimal(withheld)


# --- setting it ---------------------------------------------------------------------------


def test_an_admin_sets_the_projects_retainage(
    as_: Callable[[str], Api], project_a: Project
) -> None:
    response = as_("admin").patch(f"/api/projects/{project_a.pk}", {"retainage_percentage": "5"})
    assert response.status == 200
    assert response.body["retainage_percentage"] == "5.00"
    assert response.body["retainage_held"] == "0.00"
    project_a.refresh_from_db()
    assert project_a.retainage_percentage == Decimal("5.00")
    [event] = project_a.events.all()
    assert (event.kind, event.actor, event.details) == (
        ProjectEventKind.RETAINAGE_CHANGED,
        User.objects.get(email="admin@tranche.example"),
        {"before": "0.00", "after": "5.00"},
    )
    # Saving the same percentage again records nothing.
    again = as_("admin").patch(f"/api/projects/{project_a.pk}", {"retainage_percentage": "5"})
    assert again.status == 200
    assert project_a.events.count() == 1
    # Staff read who changed it on the project's activity tab.
    client = Client()
    client.force_login(User.objects.get(email="admin@tranche.example"))
    page = client.get(f"/projects/{project_a.pk}/activity").content.decode()
    assert "changed the retainage on invoices made from then on from 0 % to 5 %" in page


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_ADMIN_ONLY)
def test_who_may_not_set_the_retainage(
    as_: Callable[[str], Api], project_a: Project, persona: str, status: int, code: str
) -> None:
    api = as_(persona)
    with unchanged():
        response = api.patch(f"/api/projects/{project_a.pk}", {"retainage_percentage": "5"})
    assert (response.status, response.body["code"]) == (status, code)


@pytest.mark.parametrize("value", ["100", "-1", "1.234", "NaN", "abc"])
def test_a_retainage_outside_0_to_under_100_is_refused(
    as_: Callable[[str], Api], project_a: Project, value: str
) -> None:
    api = as_("admin")
    with unchanged():
        response = api.patch(f"/api/projects/{project_a.pk}", {"retainage_percentage": value})
    assert response.status == 422


def test_another_customers_project_is_missing_to_its_customer(
    as_: Callable[[str], Api], project_b: Project
) -> None:
    api = as_("alice")
    with unchanged():
        response = api.post(f"/api/projects/{project_b.pk}/retainage/release")
    assert response.status in (403, 404)


# --- milestone invoices -------------------------------------------------------------------


def taxed_project(admin: User, customer: Customer, *, retainage: str) -> Project:
    vat = TaxRate.objects.create(name="VAT 20 %", percentage=Decimal(20))
    quote = quote_create(
        actor=admin,
        customer_id=customer.pk,
        title="Fit-out",
        currency="USD",
        lines=[LineInput("Build", Decimal(1), Decimal("1000.00"), vat.pk)],
        schedule=[
            ScheduleInput("Walls", True, Decimal("33.33")),
            ScheduleInput("Rest", True, Decimal("66.67")),
        ],
    )
    project = quote_accept(actor=admin, quote_id=quote.pk)
    return with_retainage(project, admin, retainage)


def test_a_milestone_invoice_bills_its_gross_withholds_the_retainage_and_asks_the_rest(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = taxed_project(admin, customer_a, retainage="10")

    invoice = draft_for(project, 1, admin)

    # 33.33 % of 1000.00 = 333.30 net, VAT 66.66, gross 399.96; 10 % of it is 39.996.
    assert (invoice.net_amount, invoice.tax_amount) == (Decimal("333.30"), Decimal("66.66"))
    assert invoice.gross_amount == sum(line.gross_amount for line in invoice.tax_lines.all())
    assert invoice.gross_amount == Decimal("399.96")
    assert invoice.retainage_amount == Decimal("40.00")
    assert invoice.amount == Decimal("359.96")
    body = as_("admin").get(f"/api/projects/{project.pk}/invoices/{invoice.pk}").body
    assert (body["gross_amount"], body["retainage_amount"], body["amount"]) == (
        "399.96",
        "40.00",
        "359.96",
    )
    assert as_("admin").get(f"/api/projects/{project.pk}").body["retainage_held"] == "40.00"
    check_invariants(project)


def test_a_new_percentage_affects_only_invoices_made_afterwards(
    admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    first = draft_for(project, 1, admin)
    with_retainage(project, admin, "5")
    second = draft_for(project, 2, admin)

    first.refresh_from_db()
    assert (first.retainage_amount, second.retainage_amount) == (Decimal("30.00"), Decimal("15.00"))
    # Sending retaxes the draft, with its own percentage.
    invoice_send(actor=admin, invoice_id=first.pk)
    first.refresh_from_db()
    assert (first.retainage_amount, first.amount) == (Decimal("30.00"), Decimal("270.00"))


def test_sending_asks_the_payment_provider_for_what_is_due_now(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    draft = draft_for(project, 1, admin)
    sent = as_("admin").post(f"/api/projects/{project.pk}/invoices/{draft.pk}/send")
    assert sent.status == 200
    assert sent.body["invoice"]["amount_due"] == "270.00"


def test_an_edited_draft_recomputes_its_retainage(admin: User, customer_a: Customer) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    draft = draft_for(project, 1, admin)

    invoice_update_draft(actor=admin, invoice_id=draft.pk, amount=Decimal("200.00"))

    draft.refresh_from_db()
    assert (draft.gross_amount, draft.retainage_amount, draft.amount) == (
        Decimal("200.00"),
        Decimal("20.00"),
        Decimal("180.00"),
    )


# --- the release --------------------------------------------------------------------------


def test_completing_the_last_billable_milestone_releases_exactly_what_is_held(
    admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    for position in (1, 2):
        draft_for(project, position, admin)
    assert not live(project, InvoiceType.RETAINAGE_RELEASE)
    unbilled_before_last = unbilled_amount(project)

    draft_for(project, 3, admin)

    [release] = live(project, InvoiceType.RETAINAGE_RELEASE)
    assert release.status == InvoiceStatus.DRAFT
    assert release.amount == Decimal("100.00")  # 30 + 30 + 40
    assert (release.retainage_amount, release.contract_amount) == (ZERO, ZERO)
    [line] = release.tax_lines.all()
    assert (line.name, line.percentage, line.gross_amount) == (
        "Retainage release",
        ZERO,
        Decimal("100.00"),
    )
    assert unbilled_amount(project) == unbilled_before_last - Decimal("400.00")
    assert project_retainage(project).held.amount == ZERO
    check_invariants(project)


def test_reopening_the_last_milestone_cancels_the_draft_release(
    admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    for position in (1, 2, 3):
        draft_for(project, position, admin)
    last = project.milestones.get(position=3)

    milestone_reopen(actor=admin, project_id=project.pk, milestone_id=last.pk)

    assert not live(project, InvoiceType.RETAINAGE_RELEASE)
    assert project_retainage(project).held.amount == Decimal("60.00")
    check_invariants(project)
    milestone_complete(actor=admin, project_id=project.pk, milestone_id=last.pk)
    [release] = live(project, InvoiceType.RETAINAGE_RELEASE)
    assert release.amount == Decimal("100.00")


def test_a_release_is_not_made_when_nothing_is_held(admin: User, customer_a: Customer) -> None:
    project = make_project(actor=admin, customer=customer_a)
    for position in (1, 2, 3):
        draft_for(project, position, admin)
    assert not live(project, InvoiceType.RETAINAGE_RELEASE)


def test_staff_release_early_all_that_is_held(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    draft_for(project, 1, admin)

    response = as_("staff").post(f"/api/projects/{project.pk}/retainage/release")

    assert response.status == 201
    assert response.body["invoice_type"] == "retainage_release"
    assert response.body["amount"] == "30.00"
    assert response.body["status"] == "draft"
    check_invariants(project)
    # Later milestones withhold again; the last one releases the rest.
    draft_for(project, 2, admin)
    draft_for(project, 3, admin)
    releases = live(project, InvoiceType.RETAINAGE_RELEASE)
    assert [r.amount for r in releases] == [Decimal("30.00"), Decimal("70.00")]
    assert project_retainage(project).held.amount == ZERO


def test_releasing_when_nothing_is_held_is_refused_and_changes_nothing(
    as_: Callable[[str], Api], project_a: Project
) -> None:
    api = as_("staff")
    with unchanged():
        response = api.post(f"/api/projects/{project_a.pk}/retainage/release")
    assert (response.status, response.body["code"]) == (409, "retainage_nothing_held")


@pytest.mark.parametrize(("persona", "status", "code"), REFUSED_STAFF_ONLY)
def test_who_may_not_release_retainage(
    as_: Callable[[str], Api],
    admin: User,
    customer_a: Customer,
    persona: str,
    status: int,
    code: str,
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    draft_for(project, 1, admin)
    api = as_(persona)
    with unchanged():
        response = api.post(f"/api/projects/{project.pk}/retainage/release")
    assert response.status == status
    assert response.body["code"] in (code, "project_not_found")


def test_a_release_amount_cannot_be_edited(admin: User, customer_a: Customer) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    draft_for(project, 1, admin)
    release = retainage_release(actor=admin, project_id=project.pk)
    with unchanged(), pytest.raises(Conflict) as refused:
        invoice_update_draft(actor=admin, invoice_id=release.pk, amount=Decimal("1.00"))
    assert refused.value.code == "retainage_release_amount_fixed"


def test_editing_a_draft_down_rebills_the_draft_release(admin: User, customer_a: Customer) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    drafts = [draft_for(project, p, admin) for p in (1, 2, 3)]

    invoice_update_draft(actor=admin, invoice_id=drafts[2].pk, amount=Decimal("100.00"))

    [release] = live(project, InvoiceType.RETAINAGE_RELEASE)
    assert release.amount == Decimal("70.00")  # 30 + 30 + 10
    check_invariants(project)


def test_editing_a_draft_down_below_what_a_sent_release_billed_is_refused(
    admin: User, customer_a: Customer
) -> None:
    """A release bills what drafts will withhold too (docs/deposits-and-retainage.md): once
    it is sent, lowering a draft's retainage would leave it billing more than is withheld."""
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    draft = draft_for(project, 1, admin)
    release = retainage_release(actor=admin, project_id=project.pk)
    invoice_send(actor=admin, invoice_id=release.pk)

    with unchanged(), pytest.raises(Conflict) as refused:
        invoice_update_draft(actor=admin, invoice_id=draft.pk, amount=Decimal("100.00"))
    assert refused.value.code == "retainage_already_released"
    check_invariants(project)


def test_a_milestone_invoice_whose_retainage_was_released_on_a_sent_invoice_stays(
    admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    first = draft_for(project, 1, admin)
    invoice_send(actor=admin, invoice_id=first.pk)
    release = retainage_release(actor=admin, project_id=project.pk)
    invoice_send(actor=admin, invoice_id=release.pk)

    with unchanged(), pytest.raises(Conflict) as refused:
        invoice_cancel(actor=admin, invoice_id=first.pk, reason="Wrong")
    assert refused.value.code == "retainage_already_released"

    # Cancel the release first, then the milestone invoice may go.
    invoice_cancel(actor=admin, invoice_id=release.pk, reason="Too early")
    invoice_cancel(actor=admin, invoice_id=first.pk, reason="Wrong")
    check_invariants(project)


def test_cancelling_a_milestone_draft_rebills_a_draft_release(
    admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    drafts = [draft_for(project, p, admin) for p in (1, 2, 3)]

    invoice_cancel(actor=admin, invoice_id=drafts[0].pk, reason="Billed by mistake")

    [release] = live(project, InvoiceType.RETAINAGE_RELEASE)
    assert release.amount == Decimal("70.00")
    check_invariants(project)


def test_the_release_can_be_sent_and_paid_like_any_invoice(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    for position in (1, 2, 3):
        draft_for(project, position, admin)
    [release] = live(project, InvoiceType.RETAINAGE_RELEASE)

    sent = as_("admin").post(f"/api/projects/{project.pk}/invoices/{release.pk}/send")

    assert sent.status == 200
    assert sent.body["invoice"]["amount"] == "100.00"
    release.refresh_from_db()
    assert invoice_bases(release)
    assert release.contract_amount == ZERO
    check_invariants(project)


# --- the pages ----------------------------------------------------------------------------


def test_the_invoice_page_and_document_show_billed_withheld_and_due_now(
    admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    draft = draft_for(project, 1, admin)
    client = Client()
    client.force_login(admin)

    page = client.get(f"/invoices/{draft.pk}/").content.decode()
    assert "Amount billed" in page
    assert "$300.00" in page
    assert "Retainage withheld (10" in page
    assert "$30.00" in page
    assert "Amount due now" in page
    assert "$270.00" in page

    from tranche.billing.pdf import invoice_html

    document = invoice_html(draft)
    for text in ("Amount billed", "Retainage withheld", "Amount due now", "$270.00"):
        assert text in document


def test_admins_set_the_retainage_and_staff_release_it_on_the_financials_tab(
    admin: User, staff: User, customer_a: Customer
) -> None:
    project = make_project(actor=admin, customer=customer_a)
    client = Client()
    client.force_login(admin)
    client.post(f"/projects/{project.pk}/retainage", {"retainage_percentage": "7.5"})
    project.refresh_from_db()
    assert project.retainage_percentage == Decimal("7.50")
    draft_for(project, 1, admin)

    staff_client = Client()
    staff_client.force_login(staff)
    with unchanged():
        refused = staff_client.post(
            f"/projects/{project.pk}/retainage", {"retainage_percentage": "1"}
        )
    assert refused.status_code == 404
    page = staff_client.get(f"/projects/{project.pk}/financials").content.decode()
    assert "Release the retainage held now" in page
    assert "$22.50" in page  # 7.5 % of 300.00
    staff_client.post(f"/projects/{project.pk}/retainage/release")
    [release] = live(project, InvoiceType.RETAINAGE_RELEASE)
    assert release.amount == Decimal("22.50")


# --- the property -------------------------------------------------------------------------

percentage_lists = st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=4)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    parts=percentage_lists,
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
    total=st.integers(min_value=1, max_value=50_000_000),
    retainage=st.decimals(min_value=0, max_value=Decimal("99.99"), places=2),
    early=st.booleans(),
    reopen=st.lists(st.integers(min_value=0, max_value=4), max_size=3),
)
def test_retainage_held_plus_released_is_always_what_was_withheld(
    admin: User,
    customer_a: Customer,
    parts: list[int],
    currency: str,
    total: int,
    retainage: Decimal,
    early: bool,
    reopen: list[int],
) -> None:
    if sum(parts) > 100:
        return
    percentages = [str(p) for p in parts]
    if sum(parts) < 100:
        percentages.append(str(100 - sum(parts)))
    amount = f"{Decimal(total) / 100:.2f}" if currency != "JPY" else str(total)
    with transaction.atomic():
        project = make_project(
            actor=admin,
            customer=customer_a,
            total=amount,
            currency=currency,
            percentages=tuple(percentages),
        )
        with_retainage(project, admin, str(retainage))
        milestones = list(project.milestones.order_by("position"))
        if 0 in milestone_amounts(project, milestones).values():
            return  # a share too small to bill anything cannot be completed (see rules)
        for index, milestone in enumerate(milestones):
            milestone_complete(actor=admin, project_id=project.pk, milestone_id=milestone.pk)
            check_invariants(project)
            if early and index == 0 and project_retainage(project).held.amount > 0:
                retainage_release(actor=admin, project_id=project.pk)
                check_invariants(project)
        # Some milestones reopened (their drafts cancelled) and completed again.
        for n in reopen:
            milestone = milestones[n % len(milestones)]
            milestone_reopen(actor=admin, project_id=project.pk, milestone_id=milestone.pk)
            check_invariants(project)
            milestone_complete(actor=admin, project_id=project.pk, milestone_id=milestone.pk)
            check_invariants(project)
        held = project_retainage(project)
        assert held.held.amount == 0  # every billable milestone is completed: all released
        withheld = sum((i.retainage_amount for i in live(project, InvoiceType.MILESTONE)), ZERO)
        released = sum((i.amount for i in live(project, InvoiceType.RETAINAGE_RELEASE)), ZERO)
        assert released == withheld
        for invoice in live(project, InvoiceType.MILESTONE):
            gross = sum((line.gross_amount for line in invoice.tax_lines.all()), ZERO)
            assert invoice.amount + invoice.retainage_amount == gross
            assert invoice.retainage_amount == withhold(gross, retainage, currency)
            assert invoice.amount > 0
        transaction.set_rollback(True)


def test_deleting_the_last_pending_billable_milestone_releases_what_is_held(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    for position in (1, 2):
        draft_for(project, position, admin)
    last = project.milestones.get(position=3)

    response = as_("staff").delete(f"/api/projects/{project.pk}/milestones/{last.pk}")

    assert response.status == 204
    [release] = live(project, InvoiceType.RETAINAGE_RELEASE)
    assert (release.status, release.amount) == (InvoiceStatus.DRAFT, Decimal("60.00"))
    assert project_retainage(project).held.amount == ZERO
    check_invariants(project)


def test_making_the_last_pending_billable_milestone_non_billable_releases_what_is_held(
    admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    for position in (1, 2):
        draft_for(project, position, admin)
    last = project.milestones.get(position=3)
    client = Client()
    client.force_login(admin)

    response = client.post(
        f"/projects/{project.pk}/milestones/{last.pk}/edit",
        {"title": "Snagging (free)", "is_billable": ""},
    )

    assert response.status_code == 302
    [release] = live(project, InvoiceType.RETAINAGE_RELEASE)
    assert release.amount == Decimal("60.00")
    check_invariants(project)


def test_a_schedule_edit_that_leaves_billable_work_pending_releases_nothing(
    as_: Callable[[str], Api], admin: User, customer_a: Customer
) -> None:
    project = with_retainage(make_project(actor=admin, customer=customer_a), admin, "10")
    draft_for(project, 1, admin)
    second = project.milestones.get(position=2)

    assert as_("staff").delete(f"/api/projects/{project.pk}/milestones/{second.pk}").status == 204
    title = as_("staff").patch(
        f"/api/projects/{project.pk}/milestones/{project.milestones.get(position=2).pk}",
        {"title": "Handover"},
    )

    assert title.status == 200
    assert not live(project, InvoiceType.RETAINAGE_RELEASE)
    assert project_retainage(project).held.amount == Decimal("30.00")


@pytest.mark.parametrize("release_sent", [False, True], ids=["draft release", "sent release"])
def test_a_change_order_is_approved_while_the_retainage_is_being_released(
    admin: User, customer_a: Customer, release_sent: bool
) -> None:
    """A release bills back retainage the milestone invoices already counted: it is no
    share of the contract, so it neither blocks an amendment nor gets credited by one."""
    project = with_retainage(
        make_project(actor=admin, customer=customer_a, total="1000.00", percentages=("100",)),
        admin,
        "10",
    )
    draft_for(project, 1, admin)
    [release] = live(project, InvoiceType.RETAINAGE_RELEASE)
    if release_sent:
        release = invoice_send(actor=admin, invoice_id=release.pk)
    order = change_order(
        project,
        admin,
        line("Build", "1200.00"),
        schedule=(ScheduleChange(None, "Extra work", True, Decimal(100)),),
    )

    approved = change_order_approve(actor=admin, change_order_id=order.pk)

    project.refresh_from_db()
    assert (approved.status, project.contract_total) == ("approved", Decimal("1200.00"))
    assert not CreditNote.objects.exists()
    release.refresh_from_db()
    assert (release.status, release.amount) == (
        InvoiceStatus.PENDING if release_sent else InvoiceStatus.DRAFT,
        Decimal("100.00"),
    )
    extra = project.milestones.get(title="Extra work")
    assert milestone_amounts(project, [extra]) == {extra.pk: Decimal("200.00")}
    check_invariants(project)
