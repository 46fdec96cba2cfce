"""The change-order rule as a property, over USD, JPY and KWD: whatever the contract,
whichever milestones were invoiced (some sent), whatever the new lines and schedule, an
approval leaves per tax rate Σ invoiced (net of credit notes) + Σ not yet invoiced = the
new contract basis exactly, and no sent invoice changes; an approval below what was
invoiced issues credit notes for exactly the difference per rate (and is refused,
changing nothing, only when a draft bills such a rate or no billable milestone is
left)."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.factories import CustomerFactory, UserFactory
from tests.helpers import db_state
from tranche.accounts.business import business_row
from tranche.accounts.models import Role, TaxRate
from tranche.billing.contract_reads import live_invoices
from tranche.billing.models import CreditNote, Invoice, InvoiceStatus, InvoiceTaxLine
from tranche.billing.services.acceptance import quote_accept
from tranche.billing.services.change_orders import change_order_approve
from tranche.billing.services.drafts import milestone_complete
from tranche.billing.services.sending import invoice_send
from tranche.billing.taxes import billed_bases, credited_bases
from tranche.core.errors import Conflict
from tranche.core.money import Money, from_minor_units
from tranche.core.tax import Bases
from tranche.projects.amendment import ScheduleChange
from tranche.projects.contract import milestone_bases, project_bases
from tranche.projects.models import MilestoneStatus
from tranche.projects.selectors import milestones_of
from tranche.projects.services_change_orders import change_order_create
from tranche.sales.services import LineInput, ScheduleInput, quote_create

pytestmark = pytest.mark.django_db

RATES = [("VAT 20 %", Decimal(20)), ("Reduced 7 %", Decimal(7)), ("Exempt 0 %", Decimal(0))]

lines_strategy = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 5_000_000)), min_size=1, max_size=4
)


@st.composite
def percentages(draw: Any) -> list[Decimal]:
    """2 to 4 billable percentages (in hundredths) adding up to 100."""
    count = draw(st.integers(2, 4))
    cuts = sorted(
        draw(st.lists(st.integers(1, 9_999), min_size=count - 1, max_size=count - 1, unique=True))
    )
    bounds = [0, *cuts, 10_000]
    return [Decimal(b - a) / 100 for a, b in itertools.pairwise(bounds)]


def _add(total: dict[Any, Money], bases: Bases, currency: str) -> None:
    for rate, amount in bases.items():
        total[rate] = total.get(rate, Money.zero(currency)) + amount


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
    old_lines=lines_strategy,
    schedule=percentages(),
    invoiced=st.integers(0, 3),
    sent=st.integers(0, 3),
    new_lines=lines_strategy,
    edits=st.lists(
        st.tuples(st.sampled_from(["keep", "weight", "remove"]), st.integers(1, 10_000)),
        min_size=4,
        max_size=4,
    ),
    added=st.lists(st.integers(1, 10_000), max_size=2),
    mode=st.sampled_from(["exclusive", "inclusive"]),
)
def test_invoiced_and_not_yet_invoiced_add_up_to_the_new_contract_per_rate(
    currency: str,
    old_lines: list[tuple[int, int]],
    schedule: list[Decimal],
    invoiced: int,
    sent: int,
    new_lines: list[tuple[int, int]],
    edits: list[tuple[str, int]],
    added: list[int],
    mode: str,
) -> None:
    row = business_row()
    row.price_mode = mode  # the quote, the project and its invoices price this way
    row.save(update_fields=["price_mode"])
    # Examples share the test's transaction (sending an invoice must not be nested in
    # another atomic block), so each makes its own customer and project.
    _example(currency, old_lines, schedule, invoiced, sent, new_lines, edits, added)


def _line(rates: list[TaxRate], rate: int, units: int, currency: str) -> LineInput:
    return LineInput("Work", Decimal(1), from_minor_units(units, currency), rates[rate].pk)


def _example(
    currency: str,
    old_lines: list[tuple[int, int]],
    schedule: list[Decimal],
    invoiced: int,
    sent: int,
    new_lines: list[tuple[int, int]],
    edits: list[tuple[str, int]],
    added: list[int],
) -> None:
    admin = UserFactory.create(role=Role.ADMIN)
    customer = CustomerFactory.create()
    rates = [TaxRate.objects.get_or_create(name=n, percentage=p)[0] for n, p in RATES]
    quote = quote_create(
        actor=admin,
        customer_id=customer.pk,
        title="Contract",
        currency=currency,
        lines=[_line(rates, r, u, currency) for r, u in old_lines],
        schedule=[ScheduleInput(f"Step {n}", True, p) for n, p in enumerate(schedule, 1)],
    )
    project = quote_accept(actor=admin, quote_id=quote.pk)
    milestones = milestones_of(project)
    amounts = milestone_bases(project, milestones)
    for milestone in milestones[: min(invoiced, len(milestones))]:
        if not any(a.amount for a in amounts[milestone.pk].values()):
            continue  # a milestone billing nothing cannot be completed into an invoice
        done = milestone_complete(actor=admin, project_id=project.pk, milestone_id=milestone.pk)
        if done.invoice is not None and sent > 0:
            invoice_send(actor=admin, invoice_id=done.invoice.pk)
            sent -= 1
    sent_before = _sent_invoices()
    milestones = milestones_of(project)
    changes = []
    for milestone, (edit, weight) in zip(milestones, edits, strict=False):
        if milestone.status != MilestoneStatus.PENDING or edit == "keep":
            continue
        percentage = Decimal(weight) / 100
        changes.append(
            ScheduleChange(milestone.pk, milestone.title, True, percentage, remove=edit == "remove")
        )
    changes += [ScheduleChange(None, "New step", True, Decimal(w) / 100) for w in added]
    order = change_order_create(
        actor=admin,
        project_id=project.pk,
        title="Change",
        lines=[_line(rates, r, u, currency) for r, u in new_lines],
        schedule=changes,
    )
    before = db_state()
    invoiced_before = _invoiced(project, currency)
    refused: Conflict | None = None
    try:
        change_order_approve(actor=admin, change_order_id=order.pk, issue_credit_note=True)
    except Conflict as exc:
        refused = exc
    if refused is not None:
        event(f"refused: {refused.code}")
        assert refused.code in ("draft_invoice_in_the_way", "schedule_empty")
        assert db_state() == before
        return

    notes = CreditNote.objects.filter(invoice__project=project)
    event("approved with credit notes" if notes else "approved")
    project.refresh_from_db()
    assert project.contract_version == 2
    contract = project_bases(project)
    totals: dict[Any, Money] = {}
    billed_milestones = set()
    credited: dict[Any, Money] = {}
    for invoice in live_invoices(project):
        _add(totals, billed_bases(invoice), currency)
        _add(credited, credited_bases(invoice), currency)
        billed_milestones.add(invoice.milestone_id)
    milestones = milestones_of(project)
    shares = milestone_bases(project, milestones)
    for milestone in milestones:
        if milestone.pk not in billed_milestones:
            _add(totals, shares[milestone.pk], currency)
        else:  # an invoiced milestone's share is what its invoice bills
            [invoice] = [i for i in live_invoices(project) if i.milestone_id == milestone.pk]
            assert shares[milestone.pk] == billed_bases(invoice)
    zero = Money.zero(currency)
    for rate in {*contract, *totals}:
        assert totals.get(rate, zero) == contract.get(rate, zero), rate
        # Credited exactly what was invoiced above the new basis, nothing more.
        over = invoiced_before.get(rate, zero) - contract.get(rate, zero)
        assert credited.get(rate, zero) == (over if over.amount > 0 else zero), rate
    assert _sent_invoices() == sent_before


def _invoiced(project: Any, currency: str) -> dict[Any, Money]:
    invoiced: dict[Any, Money] = {}
    for invoice in live_invoices(project):
        _add(invoiced, billed_bases(invoice), currency)
    return invoiced


def _sent_invoices() -> list[Any]:
    """The sent invoices as they were sent: all but what credit notes move."""
    moving = ("amount_credited", "updated_at", "status", "paid_at")
    rows = [
        {k: v for k, v in row.items() if k not in moving}
        for row in Invoice.objects.exclude(status=InvoiceStatus.DRAFT).order_by("pk").values()
    ]
    lines = list(
        InvoiceTaxLine.objects.exclude(invoice__status=InvoiceStatus.DRAFT).order_by("pk").values()
    )
    return [rows, lines]
