"""Draft invoices: a billable milestone's completion makes one, reopening the milestone
cancels it, and an admin may edit it until it is sent.

Milestone completion and reopening live here, not in projects: they create and cancel
invoices, and billing is the app that knows both projects and invoices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Subquery, Sum
from django.utils import timezone

from tranche.accounts.models import User
from tranche.billing.audit import EventKind, record_event
from tranche.billing.locks import lock_project_and_invoice
from tranche.billing.models import (
    Invoice,
    InvoiceStatus,
    InvoiceType,
)
from tranche.billing.rules import complete_refusal, require_draft, require_unclaimed
from tranche.billing.selectors import live_invoice
from tranche.billing.services.cancelling import invoice_cancel_draft_for_reopen
from tranche.billing.services.retainage import release_when_finished, resettle_releases
from tranche.billing.taxes import (
    TAX_FIELDS,
    apply_tax,
    credited_contract_amount,
    credited_contract_subquery,
    invoice_bases,
    write_tax_lines,
)
from tranche.core.db import require_atomic
from tranche.core.errors import Conflict, Invalid
from tranche.core.money import (
    ZERO,
    Money,
    has_currency_precision,
)
from tranche.core.tax import Bases, basis_total, rebase
from tranche.projects.contract import milestone_bases
from tranche.projects.locks import lock_project, lock_visible_project
from tranche.projects.models import Milestone, MilestoneStatus, Project
from tranche.projects.selectors import find_milestone, milestones_of


def unbilled_amount(project: Project, *, excluding: Invoice | None = None) -> Decimal:
    """What the contract's price basis still allows to be invoiced: the total less the
    contract share of every live invoice (drafts included), net of their credit notes
    (a change order below what was invoiced credits the difference)."""
    live = project.invoices.exclude(status=InvoiceStatus.CANCELLED)
    if excluding is not None:
        live = live.exclude(pk=excluding.pk)
    billed = sum(live.values_list("contract_amount", flat=True), ZERO)
    return project.contract_total - billed + credited_contract_amount(live)


def _schedule_and_unbilled(project: Project) -> tuple[list[Milestone], Decimal]:
    """The locked project's schedule and `unbilled_amount(project)`, in one query: the two
    sums ride along on every milestone row (subqueries that do not depend on the row, so
    the database computes them once)."""
    live = Invoice.objects.filter(project_id=project.pk).exclude(status=InvoiceStatus.CANCELLED)
    money = Invoice._meta.get_field("contract_amount")
    billed = Subquery(
        live.order_by()
        .values("project_id")
        .annotate(billed=Sum("contract_amount"))
        .values("billed"),
        output_field=money,
    )
    rows = project.milestones.order_by("position", "id").annotate(
        live_billed=billed, live_credited=credited_contract_subquery(live)
    )
    annotated = list(rows)
    milestones: list[Milestone] = list(annotated)
    if not annotated:
        return milestones, unbilled_amount(project)
    first = annotated[0]
    billed_sum = first.live_billed or ZERO
    credited = first.live_credited or ZERO
    return milestones, project.contract_total - billed_sum + credited


def invoice_create_for_milestone(
    *,
    actor: User,
    project: Project,
    milestone: Milestone,
    bases: Bases,
    now: datetime,
    unbilled: Decimal | None = None,
) -> Invoice:
    """The draft invoice of a just-completed billable milestone, billing `bases` (its
    share of the contract per tax rate). Called by milestone completion inside its
    transaction, with the project row locked and the milestone found pending under that
    lock. `unbilled`: `unbilled_amount(project)`, when the caller read it already.

    Every write that makes or cancels a milestone's invoice holds its project's lock and
    completes or reopens the milestone with it, so a pending milestone has no live
    invoice here: the insert takes no savepoint to catch a duplicate. The partial unique
    index still refuses a second live invoice; its IntegrityError rolls the completion
    back whole."""
    require_atomic()
    if project.origin_quote_id is None:
        raise Invalid(
            f"Project {project.pk} has no originating quote, so there is nothing to bill "
            "this milestone against.",
            code="project_without_quote",
        )
    amount = basis_total(bases, currency=project.currency).amount
    if refusal := complete_refusal(milestone, amount):
        raise refusal
    if amount > (unbilled_amount(project) if unbilled is None else unbilled):
        raise Invalid(
            f"Billing '{milestone.title}' would invoice more than the contract total; "
            "lower or cancel another invoice of this project first.",
            code="contract_overbilled",
        )
    customer = project.customer
    today = timezone.localdate(now)
    invoice = Invoice(
        project=project,
        quote_id=project.origin_quote_id,
        milestone=milestone,
        customer=customer,
        invoice_type=InvoiceType.MILESTONE,
        currency=project.currency,
        description=f"Payment for completed milestone: {milestone.title}",
        issue_date=today,
        due_date=today + timedelta(days=customer.payment_terms_days),
        customer_name=customer.name,
        customer_email=customer.billing_email,
        retainage_percentage=project.retainage_percentage,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    tax = apply_tax(invoice, bases, mode=project.price_mode, customer=customer)
    invoice.save(force_insert=True)
    write_tax_lines(invoice, tax, replace=False)
    record_event(
        invoice,
        EventKind.CREATED,
        actor=actor,
        now=now,
        milestone_id=milestone.pk,
        amount=str(invoice.amount),
        **({"retainage": str(invoice.retainage_amount)} if invoice.retainage_amount else {}),
    )
    return invoice


def invoice_update_draft(
    *,
    actor: User,
    invoice_id: int,
    amount: Decimal | None = None,
    description: str | None = None,
    due_date: date | None = None,
    now: datetime | None = None,
) -> Invoice:
    now = now or timezone.now()
    with transaction.atomic():
        # The project first, as everywhere (see billing.locks): two drafts edited at once
        # then cannot together bill more than the contract.
        project, invoice = lock_project_and_invoice(invoice_id)
        require_draft(invoice, "edited")
        require_unclaimed(invoice, now)
        changes: dict[str, str] = {}
        # A form sends every field back: only what differs is a change (and is audited).
        # `amount` is the contract share billed (the price basis: net when the contract is
        # tax-exclusive); the tax and the gross follow from it, rate by rate.
        if amount == invoice.contract_amount:
            amount = None
        if description is not None and description.strip() == invoice.description:
            description = None
        if due_date == invoice.due_date and invoice.due_date_fixed:
            due_date = None
        if amount is not None and invoice.invoice_type == InvoiceType.RETAINAGE_RELEASE:
            raise Conflict(
                "A retainage release bills exactly the retainage held; its amount cannot be "
                "edited (cancel it, or change the milestone invoices that withheld it).",
                code="retainage_release_amount_fixed",
            )
        withheld_before = invoice.retainage_amount
        if amount is not None:
            if amount <= 0:
                raise Invalid("The amount must be greater than zero.", code="amount_not_positive")
            if not has_currency_precision(amount, invoice.currency):
                raise Invalid(
                    f"{amount} has more decimal places than {invoice.currency} allows.",
                    code="amount_precision",
                )
            available = unbilled_amount(project, excluding=invoice)
            if amount > available:
                raise Invalid(
                    f"{Money(amount, invoice.currency)} is more than remains unbilled on "
                    f"the contract ({Money(available, invoice.currency)}).",
                    code="amount_exceeds_unbilled",
                )
            changes["amount"] = f"{invoice.contract_amount} -> {amount}"
            tax = apply_tax(
                invoice,
                rebase(invoice_bases(invoice), Money(amount, invoice.currency)),
                mode=invoice.price_mode,
                customer=invoice.customer,
            )
            write_tax_lines(invoice, tax)
        if description is not None:
            if not description.strip():
                raise Invalid("The description cannot be empty.", code="description_required")
            changes["description"] = "changed"
            invoice.description = description.strip()
        if due_date is not None:
            if due_date < invoice.issue_date:
                raise Invalid(
                    "The due date cannot be before the issue date.", code="due_date_invalid"
                )
            changes["due_date"] = f"{invoice.due_date} -> {due_date}"
            invoice.due_date = due_date
            invoice.due_date_fixed = True
        if changes:
            invoice.updated_at = now
            invoice.save(
                update_fields=[
                    *TAX_FIELDS,
                    "description",
                    "due_date",
                    "due_date_fixed",
                    "updated_at",
                ]
            )
            record_event(invoice, EventKind.EDITED, actor=actor, now=now, **changes)
            if invoice.retainage_amount != withheld_before:
                # Its retainage changed: a draft release re-bills what is now held.
                resettle_releases(
                    actor=actor, project=project, now=now, reason="Retainage changed", remake=True
                )
    return invoice


@dataclass(frozen=True)
class Completion:
    milestone: Milestone
    invoice: Invoice | None
    already_completed: bool
    amount: Money  # the milestone's share of the contract (what its page shows)


def milestone_complete(
    *, actor: User, project_id: int, milestone_id: int, now: datetime | None = None
) -> Completion:
    """Mark a milestone completed; a billable one gets its draft invoice in the same
    transaction. Completing it again changes nothing and returns the same invoice.
    A project `actor` may not see is not found (the lock is the access check)."""
    now = now or timezone.now()
    with transaction.atomic():
        # The project lock serialises completions (and schedule edits) of one project, so
        # concurrent completions of a milestone queue here and find it completed.
        project = lock_visible_project(actor, project_id)
        milestones, unbilled = _schedule_and_unbilled(project)
        milestone = find_milestone(milestones, milestone_id, project)
        bases = milestone_bases(project, milestones)[milestone.pk]
        amount = basis_total(bases, currency=project.currency)
        if milestone.status == MilestoneStatus.COMPLETED:
            return Completion(milestone, live_invoice(milestone), True, amount)
        invoice = complete_locked(
            actor=actor,
            project=project,
            milestones=milestones,
            milestone=milestone,
            now=now,
            unbilled=unbilled,
        )
        if milestone.is_billable:
            release_when_finished(actor=actor, project=project, milestones=milestones, now=now)
    return Completion(milestone, invoice, False, amount)


def complete_locked(
    *,
    actor: User,
    project: Project,
    milestones: list[Milestone],
    milestone: Milestone,
    now: datetime,
    unbilled: Decimal | None = None,
) -> Invoice | None:
    """Complete a pending milestone of the locked project (`milestones` its whole
    schedule, `milestone` one of them); a billable one gets its draft invoice.
    `unbilled`: what the contract still allows, when the caller read it already."""
    require_atomic()
    milestone.status = MilestoneStatus.COMPLETED
    milestone.completed_at = now
    milestone.completed_by = actor
    milestone.actual_date = timezone.localdate(now)
    milestone.updated_at = now
    milestone.save(
        update_fields=["status", "completed_at", "completed_by", "actual_date", "updated_at"]
    )
    if not milestone.is_billable:
        return None
    bases = milestone_bases(project, milestones)[milestone.pk]
    return invoice_create_for_milestone(
        actor=actor, project=project, milestone=milestone, bases=bases, now=now, unbilled=unbilled
    )


def milestone_reopen(
    *, actor: User, project_id: int, milestone_id: int, now: datetime | None = None
) -> Milestone:
    """Set a completed milestone back to pending; its draft invoice is cancelled. A sent
    invoice must be cancelled by an admin first."""
    now = now or timezone.now()
    with transaction.atomic():
        project = lock_project(project_id)
        milestone = find_milestone(milestones_of(project), milestone_id, project)
        if milestone.status == MilestoneStatus.PENDING:
            return milestone
        invoice = live_invoice(milestone)
        if invoice is not None:
            invoice_cancel_draft_for_reopen(actor=actor, invoice=invoice, now=now)
        milestone.status = MilestoneStatus.PENDING
        milestone.completed_at = None
        milestone.completed_by = None
        milestone.actual_date = None
        milestone.updated_at = now
        milestone.save(
            update_fields=["status", "completed_at", "completed_by", "actual_date", "updated_at"]
        )
        if milestone.is_billable:
            # The project is no longer finished: a draft release goes (completing the
            # last milestone again makes a new one), and a sent one may not outgrow what
            # is still withheld.
            resettle_releases(
                actor=actor, project=project, now=now, reason="Milestone reopened", remake=False
            )
    return milestone
