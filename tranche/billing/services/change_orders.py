"""Approving a change order: the contract becomes version N+1 in one transaction.

It lives in billing because it must read invoices: the milestones with a live invoice
keep what they billed, and the rest of the amended contract is re-allocated over the
milestones not yet invoiced (projects/amendment.py has the rule), so that per tax rate
Σ invoiced + Σ not yet invoiced = the new contract basis exactly. Invoices already sent
never change: nothing here writes an invoice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from tranche.accounts.models import User
from tranche.billing.contract_reads import live_invoices, preview_to_json, preview_with
from tranche.billing.models import Invoice
from tranche.core.errors import Conflict, Invalid
from tranche.core.tax import bases_to_rows
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
    project: Project,
    change_order: ChangeOrder,
    preview: Preview,
    invoices: list[Invoice],
    now: datetime,
) -> None:
    """Bring what was invoiced down to the amended contract with credit notes, in the
    approval's transaction: for each tax rate of `preview.shortfall`, credit that amount
    against the project's sent invoices billing the rate, newest first, through
    `credit_note_issue(actor=actor, invoice_id=…, amount=…, reason=f"{reference}: contract
    amended")`, each credit note reducing what its invoice counts against the contract.

    Billing has no credit notes in this version, so the approval is refused with
    `credit_note_required` and a sentence saying what is over-invoiced."""
    over = preview.shortfall_total
    raise Conflict(
        f"{change_order.reference} lowers the contract below what has already been invoiced "
        f"(by {over}); issue a credit note for the difference, then approve it.",
        code="credit_note_required",
    )


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
        if preview.shortfall:
            if not issue_credit_note:
                raise Conflict(
                    f"{change_order.reference} lowers the contract below what has already "
                    f"been invoiced (by {preview.shortfall_total}); it can be approved only "
                    "with a credit note for the difference.",
                    code="credit_note_required",
                )
            credit_shortfall(
                actor=actor,
                project=project,
                change_order=change_order,
                preview=preview,
                invoices=invoices,
                now=now,
            )
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
