"""Approving a change order: the contract becomes version N+1 in one transaction.

It lives in billing because it must read invoices: the milestones with a live invoice
keep what they billed, and the rest of the amended contract is re-allocated over the
milestones not yet invoiced (projects/amendment.py has the rule), so that per tax rate
Σ invoiced + Σ not yet invoiced = the new contract basis exactly, "invoiced" being net
of credit notes. Invoices already sent never change; a contract amended below what was
invoiced is approved by staff with credit notes for the difference (`credit_shortfall`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from tranche.accounts.models import User
from tranche.billing.contract_reads import live_invoices, preview_to_json, preview_with
from tranche.billing.models import (
    SENT_STATUSES,
    CreditNote,
    Invoice,
    InvoiceStatus,
    InvoiceType,
)
from tranche.billing.services.crediting import (
    basis_credit,
    issue_basis_credit_note,
    line_rate,
    remaining_lines,
)
from tranche.billing.taxes import billed_bases
from tranche.core.errors import Conflict, Invalid
from tranche.core.money import ZERO, Money, from_minor_units, to_minor_units
from tranche.core.tax import TaxRate, bases_to_rows
from tranche.projects.amendment import Preview
from tranche.projects.models import (
    ChangeOrder,
    ChangeOrderEventKind,
    ChangeOrderStatus,
    Milestone,
    Project,
)
from tranche.projects.selectors import milestones_of
from tranche.projects.services_change_orders import lock_for_answer, record_change_order_event
from tranche.sales.services import MIN_SIGNATURE_LETTERS, Acceptance

__all__ = ["Acceptance", "change_order_approve", "credit_shortfall"]


def _check_signature(actor: User, acceptance: Acceptance | None) -> str:
    name = acceptance.name.strip() if acceptance else ""
    if actor.is_customer:
        if acceptance is None or sum(c.isalpha() for c in name) < MIN_SIGNATURE_LETTERS:
            raise Invalid("Type your full name to sign the approval.", code="signature_required")
        if not acceptance.agreed:
            raise Invalid(
                "Tick “I approve this change order” to approve it.", code="agreement_required"
            )
    return name[:200]


def credit_shortfall(
    *,
    actor: User,
    change_order: ChangeOrder,
    preview: Preview,
    invoices: list[Invoice],
    now: datetime,
) -> list[CreditNote]:
    """Bring what was invoiced down to the amended contract with credit notes, in the
    approval's transaction (the invoices locked by the caller): for each tax rate of
    `preview.shortfall`, exactly that much contract basis is credited against the
    project's sent invoices billing the rate, newest first, each invoice at most what it
    still bills at the rate and what is still creditable on it; one credit note per
    invoice (crediting.issue_basis_credit_note). A live draft billing a rate in shortfall
    is in the way: the approval is refused until staff cancel it (docs/change-orders.md).
    Returns the credit notes, newest invoice first."""
    currency = preview.currency
    for rate in preview.shortfall:
        for invoice in (i for i in invoices if i.status == InvoiceStatus.DRAFT):
            if billed_bases(invoice).get(rate, Money.zero(currency)).amount > ZERO:
                raise Conflict(
                    f"Draft invoice {invoice.pk} bills {rate.name or 'the contract'}, which "
                    f"{change_order.reference} lowers below what has been invoiced: cancel the "
                    "draft (its milestone then shares the amended contract), then approve.",
                    code="draft_invoice_in_the_way",
                )
    candidates = sorted(
        (
            i
            for i in invoices
            if i.status in SENT_STATUSES and i.invoice_type != InvoiceType.RETAINAGE_RELEASE
        ),
        key=lambda i: (i.sent_at or i.created_at, i.pk),
        reverse=True,
    )
    plan: dict[int, dict[TaxRate, Decimal]] = {i.pk: {} for i in candidates}
    for rate, short in preview.shortfall.items():
        left = short.amount
        for invoice in candidates:
            if not left:
                break
            billed = billed_bases(invoice).get(rate, Money.zero(currency)).amount
            take = _within_creditable(invoice, plan[invoice.pk], rate, min(left, billed))
            if take > ZERO:
                plan[invoice.pk][rate] = take
                left -= take
        if left:
            raise Conflict(
                f"{Money(left, currency)} of what was invoiced at {rate.name or 'this rate'} "
                "cannot be credited (its invoices withhold retainage or were credited "
                "already); credit or cancel the invoices by hand, then approve.",
                code="shortfall_not_creditable",
            )
    reason = f"Change order {change_order.reference}: contract amended"
    return [
        issue_basis_credit_note(
            invoice, actor=actor, bases=plan[invoice.pk], reason=reason, now=now
        )
        for invoice in candidates
        if plan[invoice.pk]
    ]


def _credit_gross(invoice: Invoice, bases: dict[TaxRate, Decimal]) -> Decimal:
    lines = [
        basis_credit(
            line, bases[line_rate(line)], mode=invoice.price_mode, currency=invoice.currency
        )
        for line in remaining_lines(invoice)
        if bases.get(line_rate(line))
    ]
    return sum((line.gross for line in lines), ZERO)


def _within_creditable(
    invoice: Invoice, planned: dict[TaxRate, Decimal], rate: TaxRate, wanted: Decimal
) -> Decimal:
    """The most of `wanted` (basis at `rate`) that, with what is already planned on the
    invoice, keeps the credit note's gross within what is still creditable (only less
    than `wanted` when the invoice withholds retainage): the gross grows with the basis,
    so the largest fitting basis is found by halving, in minor units."""
    creditable = invoice.amount - invoice.amount_credited
    if wanted <= ZERO or _credit_gross(invoice, {**planned, rate: wanted}) <= creditable:
        return max(wanted, ZERO)
    low, high = 0, to_minor_units(wanted, invoice.currency)  # low fits, high does not
    while high - low > 1:
        middle = (low + high) // 2
        amount = from_minor_units(middle, invoice.currency)
        if _credit_gross(invoice, {**planned, rate: amount}) <= creditable:
            low = middle
        else:
            high = middle
    return from_minor_units(low, invoice.currency)


def change_order_approve(
    *,
    actor: User,
    change_order_id: int,
    acceptance: Acceptance | None = None,
    issue_credit_note: bool = False,
    now: datetime | None = None,
) -> ChangeOrder:
    """Approve a change order: a customer their own sent one online with a typed name and
    the agree box (time and address recorded), staff a draft or sent one on the customer's
    behalf. The contract becomes version N+1: its lines and total are the change order's,
    the milestones with a live invoice keep what they billed, the others share the rest."""
    now = now or timezone.now()
    with transaction.atomic():
        # Project, then its invoices (billing/locks.py's order): no invoice of the project
        # can be made, edited or cancelled while the schedule is re-allocated around it.
        project, change_order = lock_for_answer(actor, change_order_id, "approved")
        name = _check_signature(actor, acceptance)
        invoices = list(live_invoices(project).select_for_update())
        preview = preview_with(project, change_order, invoices)
        problems = [p for p in preview.problems if p.code != "credit_note_required"]
        if problems:
            raise Conflict(problems[0].detail, code=problems[0].code)
        notes: list[CreditNote] = []
        if preview.shortfall:
            if actor.is_customer:
                raise Conflict(
                    f"{change_order.reference} lowers the contract below what has already "
                    f"been invoiced (by {preview.shortfall_total}), so it cannot be approved "
                    "online: staff must approve it with a credit note for the difference.",
                    code="credit_note_required",
                )
            if not issue_credit_note:
                raise Conflict(
                    f"{change_order.reference} lowers the contract below what has already "
                    f"been invoiced (by {preview.shortfall_total}); it can be approved only "
                    "with a credit note for the difference.",
                    code="credit_note_required",
                )
            notes = credit_shortfall(
                actor=actor, change_order=change_order, preview=preview, invoices=invoices, now=now
            )
            # What each credited invoice now counts against the contract: no shortfall is left.
            preview = preview_with(project, change_order, list(live_invoices(project)))
        version = project.contract_version + 1
        _write_schedule(project, preview, now)
        project.contract_total = preview.after_total.amount
        project.contract_bases = bases_to_rows(preview.after)
        project.contract_version = version
        project.save(update_fields=["contract_total", "contract_bases", "contract_version"])
        change_order.status = ChangeOrderStatus.APPROVED
        change_order.approved_at = now
        change_order.approved_by = actor
        change_order.approved_name = name
        change_order.approved_ip = acceptance.ip if acceptance and actor.is_customer else None
        change_order.contract_version = version
        change_order.approved_preview = preview_to_json(preview)
        change_order.save(
            update_fields=[
                "status",
                "approved_at",
                "approved_by",
                "approved_name",
                "approved_ip",
                "contract_version",
                "approved_preview",
            ]
        )
        details: dict[str, Any] = {
            "on_behalf": actor.is_staff_member,
            "version": version,
            "before": str(preview.before_total.amount),
            "after": str(preview.after_total.amount),
        }
        if actor.is_customer:
            details.update(name=name, ip=change_order.approved_ip)
        if notes:
            details["credit_notes"] = [note.number for note in notes]
        record_change_order_event(
            change_order, ChangeOrderEventKind.APPROVED, actor=actor, now=now, **details
        )
    return change_order


def _write_schedule(project: Project, preview: Preview, now: datetime) -> None:
    """The milestones as the preview has them: removed ones deleted, changed ones saved,
    new ones created, positions 1..n in the preview's order, and each billable one's
    share stored (what it billed, when invoiced)."""
    existing = {m.pk: m for m in milestones_of(project)}
    removed = [row.milestone_id for row in preview.rows if row.removed and row.milestone_id]
    Milestone.objects.filter(pk__in=removed, project=project).delete()
    kept = [row for row in preview.rows if not row.removed]
    changed: list[Milestone] = []
    for position, row in enumerate(kept, 1):
        shares = bases_to_rows(row.after) if row.is_billable else None
        if row.milestone_id is None:
            Milestone.objects.create(
                project=project,
                title=row.title,
                position=position,
                is_billable=row.is_billable,
                billing_percentage=row.percentage if row.is_billable else None,
                contract_shares=shares,
                created_at=now,
                updated_at=now,
            )
            continue
        milestone = existing[row.milestone_id]
        milestone.title = row.title
        milestone.position = position
        milestone.is_billable = row.is_billable
        milestone.billing_percentage = row.percentage if row.is_billable else None
        milestone.contract_shares = shares
        milestone.updated_at = now
        changed.append(milestone)
    Milestone.objects.bulk_update(
        changed,
        ["title", "position", "is_billable", "billing_percentage", "contract_shares", "updated_at"],
    )
