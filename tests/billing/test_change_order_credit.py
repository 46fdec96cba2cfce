"""A change order below what was invoiced: staff approve it with credit notes for the
difference, in the approval's one transaction, rate by rate against the project's sent
invoices (newest first), so that per rate invoiced - credited + not yet invoiced = the
new contract basis exactly. A customer cannot approve it online; a draft in the way and
an approval without the credit note are refused, changing nothing."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tests.billing.change_order_helpers import change_order, line, sent
from tests.billing.helpers import draft_for
from tests.billing.taxed import set_up_business
from tests.helpers import Api, unchanged
from tranche.accounts.models import Customer, TaxRate, User
from tranche.billing.contract_reads import change_order_preview, live_invoices
from tranche.billing.models import CreditNote, Invoice, InvoiceTaxLine
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.change_orders import change_order_approve
from tranche.billing.services.crediting import credit_note_issue
from tranche.billing.services.drafts import unbilled_amount
from tranche.billing.taxes import billed_bases
from tranche.core.errors import Conflict
from tranche.core.money import Money
from tranche.notifications.change_orders import change_order_send
from tranche.projects.contract import milestone_bases, project_bases
from tranche.projects.models import Project
from tranche.projects.selectors import milestones_of
from tranche.projects.services import project_set_retainage
from tranche.sales.services import Acceptance, LineInput, ScheduleInput, quote_create

D = Decimal
YEAR = timezone.localdate().year

pytestmark = pytest.mark.django_db


def identity_holds(project: Project) -> dict[Any, Money]:
    """Per rate, Σ invoiced net of credit notes + Σ shares of milestones not invoiced
    equals the contract basis; returns the invoiced per rate."""
    project.refresh_from_db()
    zero = Money.zero(project.currency)
    invoiced: dict[Any, Money] = {}
    billed_milestones = set()
    for invoice in live_invoices(project):
        billed_milestones.add(invoice.milestone_id)
        for rate, amount in billed_bases(invoice).items():
            invoiced[rate] = invoiced.get(rate, zero) + amount
    totals = dict(invoiced)
    milestones = milestones_of(project)
    shares = milestone_bases(project, milestones)
    for milestone in milestones:
        if milestone.pk not in billed_milestones:
            for rate, amount in shares[milestone.pk].items():
                totals[rate] = totals.get(rate, zero) + amount
    contract = project_bases(project)
    for rate in {*contract, *totals}:
        assert totals.get(rate, zero) == contract.get(rate, zero), rate
    return invoiced


def two_rates(admin: User, customer: Customer) -> tuple[Project, TaxRate, TaxRate]:
    """1000 at VAT 20 % and 500 at 7 %, billed 30/30/40, priced as the business prices."""
    vat = TaxRate.objects.create(name="VAT 20 %", percentage=D(20))
    reduced = TaxRate.objects.create(name="Reduced 7 %", percentage=D(7))
    quote = quote_create(
        actor=admin,
        customer_id=customer.pk,
        title="Two rates",
        currency="USD",
        lines=[
            LineInput("Build", D(1), D(1000), tax_rate_id=vat.pk),
            LineInput("Books", D(1), D(500), tax_rate_id=reduced.pk),
        ],
        schedule=[ScheduleInput(f"Step {n}", True, D(p)) for n, p in enumerate((30, 30, 40), 1)],
    )
    return quote_accept(actor=admin, quote_id=quote.pk), vat, reduced


def note_lines(note: CreditNote) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    return [
        (x.name, x.net_amount, x.tax_amount, x.gross_amount)
        for x in note.tax_lines.order_by("position")
    ]


MOVING = ("amount_credited", "updated_at", "status", "paid_at")


def frozen(invoice: Invoice) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """What a sent invoice said (all but what credit notes and payments move)."""
    row = Invoice.objects.filter(pk=invoice.pk).values().get()
    kept: dict[str, Any] = {k: v for k, v in row.items() if k not in MOVING}
    lines = InvoiceTaxLine.objects.filter(invoice=invoice).order_by("position").values()
    return kept, [dict(x) for x in lines]


def test_one_rate_below_what_was_invoiced_credits_the_difference(
    project_a: Project, admin: User
) -> None:
    invoice = sent(draft_for(project_a, 1, admin), admin)  # 300.00 invoiced
    before = frozen(invoice)
    order = change_order(project_a, admin, line("Build", "200.00"))

    change_order_approve(actor=admin, change_order_id=order.pk, issue_credit_note=True)

    [note] = CreditNote.objects.all()
    assert note.invoice == invoice
    assert note.number == f"CN-{YEAR}-00001"
    assert note.amount == D("100.00")
    assert note.reason == "Change order CO-1: contract amended"
    invoice.refresh_from_db()
    assert invoice.amount_credited == D("100.00")
    assert frozen(invoice) == before  # the sent invoice itself never changes
    project_a.refresh_from_db()
    assert (project_a.contract_version, project_a.contract_total) == (2, D("200.00"))
    invoiced = identity_holds(project_a)
    assert sum(m.amount for m in invoiced.values()) == D("200.00")
    shares = milestone_bases(project_a, milestones_of(project_a))
    assert [sum(m.amount for m in s.values()) for s in shares.values()] == [D("200.00"), 0, 0]
    order.refresh_from_db()
    event = order.events.get(kind="approved")
    assert event.details["credit_notes"] == [note.number]
    # The approval's preview keeps what it did: the invoiced milestone less the credit.
    first = change_order_preview(order).rows[0]
    assert (first.before_total("USD").amount, first.after_total("USD").amount) == (
        D("300.00"),
        D("200.00"),
    )


def test_per_rate_credit_notes_fall_on_the_newest_sent_invoices_first(
    admin: User, customer_a: Customer
) -> None:
    project, vat, reduced = two_rates(admin, customer_a)
    first = sent(draft_for(project, 1, admin), admin)  # VAT 300, 7 % 150
    second = sent(draft_for(project, 2, admin), admin)  # VAT 300, 7 % 150
    order = change_order(
        project,
        admin,
        LineInput("Build", D(1), D(200), tax_rate_id=vat.pk),  # 600 invoiced at VAT: -400
        LineInput("Books", D(1), D(500), tax_rate_id=reduced.pk),  # 7 % unchanged
    )
    assert str(change_order_preview(order).shortfall_total) == "$400.00"

    change_order_approve(actor=admin, change_order_id=order.pk, issue_credit_note=True)

    newest, older = CreditNote.objects.order_by("number")
    assert (newest.invoice, newest.number) == (second, f"CN-{YEAR}-00001")
    assert (older.invoice, older.number) == (first, f"CN-{YEAR}-00002")
    # All of the second invoice's VAT (its line mirrored), then 100 of the first's.
    assert note_lines(newest) == [("VAT 20 %", D("300.00"), D("60.00"), D("360.00"))]
    assert note_lines(older) == [("VAT 20 %", D("100.00"), D("20.00"), D("120.00"))]
    assert (newest.amount, older.amount) == (D("360.00"), D("120.00"))
    invoiced = identity_holds(project)
    assert invoiced[next(r for r in invoiced if r.name == "VAT 20 %")].amount == D("200.00")
    assert invoiced[next(r for r in invoiced if r.name == "Reduced 7 %")].amount == D("300.00")


def test_inclusive_prices_credit_the_gross_basis(admin: User, customer_a: Customer) -> None:
    set_up_business(price_mode="inclusive")
    project, vat, reduced = two_rates(admin, customer_a)
    invoice = sent(draft_for(project, 1, admin), admin)  # gross 300 at VAT, 150 at 7 %
    order = change_order(
        project,
        admin,
        LineInput("Build", D(1), D(296), tax_rate_id=vat.pk),  # 300 invoiced: -4 at VAT
        LineInput("Books", D(1), D("100.01"), tax_rate_id=reduced.pk),  # -49.99 at 7 %
    )
    change_order_approve(actor=admin, change_order_id=order.pk, issue_credit_note=True)
    [note] = CreditNote.objects.all()
    assert note.invoice == invoice
    # Inclusive: the basis is the gross; tax = round(gross * r / (100 + r)) half up.
    assert sorted(note_lines(note)) == [
        ("Reduced 7 %", D("46.72"), D("3.27"), D("49.99")),
        ("VAT 20 %", D("3.33"), D("0.67"), D("4.00")),
    ]
    assert note.amount == D("53.99")
    identity_holds(project)


def test_a_hand_made_credit_note_counts_as_not_invoiced(project_a: Project, admin: User) -> None:
    invoice = sent(draft_for(project_a, 1, admin), admin)
    credit_note_issue(actor=admin, invoice_id=invoice.pk, amount=D("100.00"), reason="Goodwill")
    order = change_order(project_a, admin, line("Build", "250.00"))
    preview = change_order_preview(order)
    assert not preview.shortfall  # 300 - 100 credited ≤ 250
    assert preview.rows[0].after_total("USD").amount == D("200.00")

    change_order_approve(actor=admin, change_order_id=order.pk)
    assert CreditNote.objects.count() == 1
    project_a.refresh_from_db()
    assert [
        sum(m.amount for m in s.values())
        for s in milestone_bases(project_a, milestones_of(project_a)).values()
    ] == [D("200.00"), D("21.43"), D("28.57")]
    identity_holds(project_a)


def test_the_customer_cannot_approve_it_online(
    project_a: Project, admin: User, alice: User
) -> None:
    sent(draft_for(project_a, 1, admin), admin)
    order = change_order(project_a, admin, line("Build", "200.00"))
    change_order_send(actor=admin, change_order_id=order.pk)
    with unchanged(), pytest.raises(Conflict) as refused:
        change_order_approve(
            actor=alice,
            change_order_id=order.pk,
            acceptance=Acceptance("Alice Archer", True, "10.0.0.1"),
            issue_credit_note=True,
        )
    assert refused.value.code == "credit_note_required"
    assert "staff must approve it with a credit note" in refused.value.detail
    assert "$100.00" in refused.value.detail


def test_a_draft_billing_the_rate_is_in_the_way(project_a: Project, admin: User) -> None:
    sent(draft_for(project_a, 1, admin), admin)
    draft = draft_for(project_a, 2, admin)
    order = change_order(project_a, admin, line("Build", "500.00"))  # 600 invoiced
    with unchanged(), pytest.raises(Conflict) as refused:
        change_order_approve(actor=admin, change_order_id=order.pk, issue_credit_note=True)
    assert refused.value.code == "draft_invoice_in_the_way"
    assert f"Draft invoice {draft.pk}" in refused.value.detail


def test_without_the_flag_nothing_is_credited(project_a: Project, admin: User) -> None:
    sent(draft_for(project_a, 1, admin), admin)
    order = change_order(project_a, admin, line("Build", "200.00"))
    with unchanged(), pytest.raises(Conflict) as refused:
        change_order_approve(actor=admin, change_order_id=order.pk)
    assert refused.value.code == "credit_note_required"


# --- the API ---------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["staff", "admin"])
def test_staff_approve_with_a_credit_note_over_the_api(
    as_: Callable[[str], Api], project_a: Project, admin: User, persona: str
) -> None:
    invoice = sent(draft_for(project_a, 1, admin), admin)
    order = change_order(project_a, admin, line("Build", "120.00"))
    path = f"/api/change-orders/{order.pk}/approve"
    api = as_(persona)
    with unchanged():
        plain = api.post(path, {})
    assert (plain.status, plain.body["code"]) == (409, "credit_note_required")

    response = api.post(path, {"issue_credit_note": True})

    assert response.status == 200
    assert response.body["status"] == "approved"
    [note] = CreditNote.objects.all()
    assert (note.invoice, note.number, note.amount) == (invoice, f"CN-{YEAR}-00001", D("180.00"))
    assert identity_holds(project_a)[next(iter(project_bases(project_a)))].amount == D("120.00")


def test_the_customer_is_refused_over_the_api_with_a_sentence(
    as_: Callable[[str], Api], project_a: Project, admin: User
) -> None:
    sent(draft_for(project_a, 1, admin), admin)
    order = change_order(project_a, admin, line("Build", "200.00"))
    change_order_send(actor=admin, change_order_id=order.pk)
    alice = as_("alice")
    with unchanged():
        response = alice.post(
            f"/api/change-orders/{order.pk}/approve",
            {"name": "Alice Archer", "agreed": True, "issue_credit_note": True},
        )
    assert (response.status, response.body["code"]) == (409, "credit_note_required")
    assert "staff must approve it with a credit note" in response.body["detail"]


def test_after_the_credit_the_rest_of_the_contract_can_still_be_billed(
    project_a: Project, admin: User
) -> None:
    sent(draft_for(project_a, 1, admin), admin)  # 300.00
    lower = change_order(project_a, admin, line("Build", "200.00"))
    change_order_approve(actor=admin, change_order_id=lower.pk, issue_credit_note=True)
    project_a.refresh_from_db()
    assert unbilled_amount(project_a) == D("0.00")  # 300 invoiced - 100 credited = 200
    higher = change_order(project_a, admin, line("Build", "900.00"))
    change_order_approve(actor=admin, change_order_id=higher.pk)
    project_a.refresh_from_db()
    assert unbilled_amount(project_a) == D("700.00")

    second = draft_for(project_a, 2, admin)
    third = draft_for(project_a, 3, admin)

    assert (second.contract_amount, third.contract_amount) == (D("300.00"), D("400.00"))
    assert unbilled_amount(project_a) == D("0.00")
    identity_holds(project_a)


def test_retainage_withheld_cannot_be_credited(project_a: Project, admin: User) -> None:
    project_set_retainage(actor=admin, project_id=project_a.pk, percentage=D(10))
    invoice = sent(draft_for(project_a, 1, admin), admin)  # 300.00 billed, 270.00 asked
    assert invoice.amount == D("270.00")
    too_low = change_order(project_a, admin, line("Build", "20.00"))  # 280.00 over
    with unchanged(), pytest.raises(Conflict) as refused:
        change_order_approve(actor=admin, change_order_id=too_low.pk, issue_credit_note=True)
    assert refused.value.code == "shortfall_not_creditable"
    assert "$10.00" in refused.value.detail

    lower = change_order(project_a, admin, line("Build", "100.00"))  # 200.00 over
    change_order_approve(actor=admin, change_order_id=lower.pk, issue_credit_note=True)
    [note] = CreditNote.objects.all()
    assert note.amount == D("200.00")
    identity_holds(project_a)
