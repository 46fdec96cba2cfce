"""Writes for projects and their milestones."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Final

from django.db import IntegrityError, transaction
from django.utils import timezone

from tranche.accounts.models import User
from tranche.core.db import require_atomic
from tranche.core.errors import Conflict, Invalid
from tranche.core.money import HUNDRED, ZERO
from tranche.core.tax import bases_to_rows, contract_bases
from tranche.projects.contract import amended
from tranche.projects.locks import lock_project
from tranche.projects.models import (
    Milestone,
    MilestoneStatus,
    Project,
    ProjectEvent,
    ProjectEventKind,
)
from tranche.projects.selectors import find_milestone, milestones_of
from tranche.sales.models import Quote
from tranche.sales.schedule import check_billing, check_schedule_total
from tranche.sales.services import Acceptance, line_input, quote_mark_accepted


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


def quote_accept_as_project(
    *,
    actor: User,
    quote_id: int,
    acceptance: Acceptance | None = None,
    now: datetime | None = None,
) -> Project:
    """Accept a quote: it becomes a project with one milestone per schedule item. Staff
    accept a draft or sent quote on the customer's behalf; a customer accepts their own
    sent quote online with an `acceptance` (typed name, address). Lives here, above
    sales, because it creates a project. Entry points call
    billing.services.acceptance.quote_accept, which wraps this and bills the deposits."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            quote = quote_mark_accepted(
                actor=actor, quote_id=quote_id, now=now, acceptance=acceptance
            )
            return project_create_from_quote(actor=actor, quote=quote, now=now)
    except IntegrityError:
        # The quote's row lock makes this unreachable in practice; the unique origin_quote
        # is the database's guarantee should a path ever skip the lock.
        raise Conflict(
            f"Quote {quote_id} has already been accepted.", code="quote_not_draft"
        ) from None


def project_create_from_quote(*, actor: User, quote: Quote, now: datetime) -> Project:
    """Called by quote acceptance, inside its transaction."""
    require_atomic()
    bases = contract_bases(
        ((line_input(line).rate, line.subtotal) for line in quote.lines.all()),
        currency=quote.currency,
    )
    project = Project.objects.create(
        name=quote.title,
        customer_id=quote.customer_id,
        origin_quote=quote,
        currency=quote.currency,
        contract_total=quote.total,
        contract_bases=bases_to_rows(bases),
        price_mode=quote.price_mode,
        created_at=now,
        created_by=actor,
    )
    Milestone.objects.bulk_create(
        Milestone(
            project=project,
            title=item.title,
            position=position,
            is_billable=item.is_billable,
            billing_percentage=item.billing_percentage,
            bill_on_acceptance=item.bill_on_acceptance,
            created_at=now,
            updated_at=now,
        )
        for position, item in enumerate(quote.schedule.order_by("position", "id"), 1)
    )
    return project


def project_set_retainage(
    *, actor: User, project_id: int, percentage: Decimal, now: datetime | None = None
) -> Project:
    """Set the share withheld on the project's milestone invoices made from now on; the
    invoices already made keep theirs (each records its own percentage)."""
    if not ZERO <= percentage < HUNDRED or percentage != percentage.quantize(Decimal("0.01")):
        raise Invalid(
            "Retainage must be a percentage from 0 up to (not including) 100, with at most "
            "two decimal places.",
            code="retainage_percentage_invalid",
        )
    now = now or timezone.now()
    with transaction.atomic():
        project = lock_project(project_id)
        before = project.retainage_percentage
        if before != percentage:
            project.retainage_percentage = percentage
            project.save(update_fields=["retainage_percentage"])
            ProjectEvent.objects.create(
                project=project,
                kind=ProjectEventKind.RETAINAGE_CHANGED,
                actor=actor,
                at=now,
                details={"before": f"{before:.2f}", "after": f"{percentage:.2f}"},
            )
    return project


def _check_position(position: int | None, upper: int) -> None:
    if position is not None and not 1 <= position <= upper:
        raise Invalid(f"Position must be between 1 and {upper}.", code="position_invalid")


def _renumber(ordered: list[Milestone]) -> list[Milestone]:
    """Give positions 1..n in list order; return the milestones whose position changed."""
    changed = []
    for position, milestone in enumerate(ordered, 1):
        if milestone.position != position:
            milestone.position = position
            changed.append(milestone)
    return changed


def _check_pending(milestone: Milestone, verb: str) -> None:
    if milestone.status != MilestoneStatus.PENDING:
        raise Conflict(
            f"Milestone '{milestone.title}' is {milestone.status}; only a pending milestone can "
            f"be {verb}.",
            code="milestone_not_pending",
        )


def _check_percentages(project: Project, milestones: list[Milestone]) -> None:
    if amended(project):
        return  # the stored shares bill the contract; percentages are weights (see below)
    check_schedule_total(m.billing_percentage or ZERO for m in milestones if m.is_billable)


def _refuse_if_amended(project: Project, title: str) -> None:
    """After a change order each billable milestone's share of the contract is stored so
    that, per rate, invoiced + not yet invoiced = the contract exactly; a percentage
    edited here would break that sum, so the billable schedule changes only through the
    next change order."""
    if amended(project):
        raise Conflict(
            f"The contract of this project was amended by a change order, so the billing "
            f"of '{title}' can change only through a new change order (Contract tab).",
            code="contract_amended",
        )


def milestone_create(
    *,
    actor: User,
    project_id: int,
    title: str,
    is_billable: bool = False,
    billing_percentage: Decimal | None = None,
    planned_date: date | None = None,
    position: int | None = None,
    now: datetime | None = None,
) -> Milestone:
    now = now or timezone.now()
    title = title.strip()
    if not title:
        raise Invalid("A milestone needs a title.", code="title_required")
    check_billing(title=title, is_billable=is_billable, billing_percentage=billing_percentage)
    with transaction.atomic():
        # The project row lock serialises schedule changes, so two concurrent additions
        # cannot together push the billable percentages past 100.
        project = lock_project(project_id)
        milestones = milestones_of(project)
        _check_position(position, len(milestones) + 1)
        milestone = Milestone(
            project=project,
            title=title,
            position=len(milestones) + 1,
            is_billable=is_billable,
            billing_percentage=billing_percentage if is_billable else None,
            planned_date=planned_date,
            created_at=now,
            updated_at=now,
        )
        if is_billable:
            _refuse_if_amended(project, title)
        _check_percentages(project, [*milestones, milestone])
        ordered = [*milestones]
        ordered.insert((position or len(milestones) + 1) - 1, milestone)
        moved = _renumber(ordered)
        Milestone.objects.bulk_update([m for m in moved if m.pk], ["position"])
        milestone.save()
    return milestone


def milestone_update(
    *,
    actor: User,
    project_id: int,
    milestone_id: int,
    title: str | _Unset = UNSET,
    is_billable: bool | _Unset = UNSET,
    billing_percentage: Decimal | _Unset | None = UNSET,
    planned_date: date | _Unset | None = UNSET,
    position: int | _Unset = UNSET,
    now: datetime | None = None,
) -> Milestone:
    """Change a pending milestone. Omitted arguments keep their value; making a milestone
    non-billable drops its percentage."""
    now = now or timezone.now()
    with transaction.atomic():
        project = lock_project(project_id)
        milestones = milestones_of(project)
        milestone = find_milestone(milestones, milestone_id, project)
        _check_pending(milestone, "edited")
        billing_before = (milestone.is_billable, milestone.billing_percentage)
        fields = {"updated_at"}
        if not isinstance(title, _Unset):
            if not title.strip():
                raise Invalid("A milestone needs a title.", code="title_required")
            milestone.title = title.strip()
            fields.add("title")
        if not isinstance(is_billable, _Unset):
            milestone.is_billable = is_billable
            fields.add("is_billable")
            if not is_billable and isinstance(billing_percentage, _Unset):
                billing_percentage = None
        if not isinstance(billing_percentage, _Unset):
            milestone.billing_percentage = billing_percentage
            fields.add("billing_percentage")
        if not isinstance(planned_date, _Unset):
            milestone.planned_date = planned_date
            fields.add("planned_date")
        check_billing(
            title=milestone.title,
            is_billable=milestone.is_billable,
            billing_percentage=milestone.billing_percentage,
        )
        if not milestone.is_billable:
            milestone.billing_percentage = None
            if milestone.bill_on_acceptance:
                # A deposit that no longer bills is no longer a deposit.
                milestone.bill_on_acceptance = False
                fields.add("bill_on_acceptance")
        if (milestone.is_billable, milestone.billing_percentage) != billing_before:
            _refuse_if_amended(project, milestone.title)
        _check_percentages(project, milestones)
        moved: list[Milestone] = []
        if not isinstance(position, _Unset):
            _check_position(position, len(milestones))
            ordered = [m for m in milestones if m.pk != milestone.pk]
            ordered.insert(position - 1, milestone)
            moved = [m for m in _renumber(ordered) if m.pk != milestone.pk]
            fields.add("position")
        milestone.updated_at = now
        Milestone.objects.bulk_update(moved, ["position"])
        milestone.save(update_fields=sorted(fields))
    return milestone


def milestone_delete(*, actor: User, project_id: int, milestone_id: int) -> None:
    with transaction.atomic():
        project = lock_project(project_id)
        milestones = milestones_of(project)
        milestone = find_milestone(milestones, milestone_id, project)
        _check_pending(milestone, "deleted")
        if milestone.is_billable:
            _refuse_if_amended(project, milestone.title)
        remaining = [m for m in milestones if m.pk != milestone.pk]
        milestone.delete()
        Milestone.objects.bulk_update(_renumber(remaining), ["position"])
