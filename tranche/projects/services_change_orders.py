"""Writes of change orders that stay within projects: a draft made and edited by staff,
marked sent (notifications.change_orders queues its email), declined. Approving one reads
invoices, so it lives in billing (billing/services/change_orders.py). Every change writes
a ChangeOrderEvent, which the project's activity shows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from tranche.accounts.access import require_staff
from tranche.accounts.models import TaxTreatment, User
from tranche.core.db import lock_one, require_atomic, valid_id
from tranche.core.errors import Conflict, Invalid, NotFound
from tranche.core.tax import PriceMode
from tranche.projects.amendment import ScheduleChange
from tranche.projects.locks import lock_project
from tranche.projects.models import (
    ChangeOrder,
    ChangeOrderEvent,
    ChangeOrderEventKind,
    ChangeOrderItem,
    ChangeOrderLine,
    ChangeOrderStatus,
    MilestoneStatus,
    Project,
)
from tranche.projects.selectors import current_lines, milestones_of
from tranche.sales.services import LineInput, with_rates
from tranche.sales.terms import QuoteTerms, quote_terms

__all__ = [
    "LineInput",
    "ScheduleChange",
    "change_order_create",
    "change_order_decline",
    "change_order_mark_sent",
    "change_order_update",
    "lock_change_order",
    "record_change_order_event",
]


def record_change_order_event(
    change_order: ChangeOrder,
    kind: ChangeOrderEventKind,
    *,
    actor: User | None,
    now: datetime,
    **details: Any,
) -> ChangeOrderEvent:
    require_atomic()
    return ChangeOrderEvent.objects.create(
        change_order=change_order, kind=kind, actor=actor, at=now, details=details
    )


def lock_change_order(change_order_id: int) -> tuple[Project, ChangeOrder]:
    """The change order's project, then the change order, locked (project first, as
    every write of a project's contract and schedule takes it)."""
    missing = f"Change order {change_order_id} does not exist."
    project_id = (
        ChangeOrder.objects.filter(pk=change_order_id).values_list("project_id", flat=True).first()
        if valid_id(change_order_id)
        else None
    )
    if project_id is None:
        raise NotFound(missing, code="change_order_not_found")
    project = lock_project(project_id)
    return project, lock_one(ChangeOrder, change_order_id, not_found=missing)


def line_terms(project: Project, lines: Sequence[LineInput]) -> QuoteTerms:
    """The lines priced and checked by the quote's own rules (a change order's lines are
    a contract's lines); the schedule is the change order's other half."""
    if not lines:
        raise Invalid("A change order needs at least one contract line.", code="lines_required")
    terms = quote_terms(
        title="change order",
        currency=project.currency,
        lines=lines,
        schedule=[],
        mode=PriceMode(project.price_mode),
        exempt=project.customer.tax_treatment != TaxTreatment.STANDARD,
    )
    terms.raise_first()
    return terms


def _check_schedule(project: Project, schedule: Sequence[ScheduleChange]) -> None:
    """Rows that name a milestone must name a pending one of this project; the full rule
    (nothing invoiced changes) is the approval's, which knows invoices."""
    pending = {m.pk: m for m in milestones_of(project) if m.status == MilestoneStatus.PENDING}
    seen: set[int] = set()
    for number, row in enumerate(schedule, 1):
        if row.milestone_id is not None:
            if row.milestone_id not in pending:
                raise Invalid(
                    f"Schedule row {number}: milestone {row.milestone_id} is not a pending "
                    "milestone of this project.",
                    code="milestone_not_changeable",
                )
            if row.milestone_id in seen:
                raise Invalid(
                    f"Schedule row {number}: that milestone is changed twice.",
                    code="milestone_changed_twice",
                )
            seen.add(row.milestone_id)
        if not row.remove and not row.title.strip():
            raise Invalid(f"Schedule row {number} needs a title.", code="title_required")
        if row.is_billable and (row.percentage is None or not 0 < row.percentage <= 100):
            raise Invalid(
                f"Schedule row {number}: a billable milestone needs a percentage greater "
                "than 0 and at most 100.",
                code="billing_percentage_required",
            )


def _write_rows(
    change_order: ChangeOrder,
    terms: QuoteTerms,
    lines: Sequence[LineInput],
    schedule: Sequence[ScheduleChange],
) -> None:
    ChangeOrderLine.objects.bulk_create(
        ChangeOrderLine(
            change_order=change_order,
            position=position,
            description=line.description.strip(),
            quantity=line.quantity,
            unit_price=line.unit_price,
            line_total=total or Decimal(0),
            tax_rate_id=line.tax_rate_id,
            tax_name=line.rate.name,
            tax_percentage=line.rate.percentage,
        )
        for position, (line, total) in enumerate(zip(lines, terms.line_totals, strict=True), 1)
    )
    ChangeOrderItem.objects.bulk_create(
        ChangeOrderItem(
            change_order=change_order,
            position=position,
            milestone_id=row.milestone_id,
            title=row.title.strip()[:200],
            is_billable=row.is_billable,
            billing_percentage=row.percentage if row.is_billable else None,
            remove=row.remove,
        )
        for position, row in enumerate(schedule, 1)
    )


def _kept_lines(project: Project) -> list[LineInput]:
    """The contract's current lines as input: a new change order starts from them. A
    line keeps its copy of the rate (the rate row may be retired since)."""
    return [
        LineInput(line.description, line.quantity, line.unit_price, None, line.rate)
        for line in current_lines(project)
    ]


def _resolved(lines: Sequence[LineInput]) -> list[LineInput]:
    """Rates chosen by id are read in (and must still be offered); lines that carry only
    a copy of a rate (prefilled from the contract) keep it."""
    by_id = with_rates([line for line in lines if line.tax_rate_id is not None])
    chosen = iter(by_id)
    return [next(chosen) if line.tax_rate_id is not None else line for line in lines]


def change_order_create(
    *,
    actor: User,
    project_id: int,
    title: str,
    summary: str = "",
    lines: Sequence[LineInput] | None = None,
    schedule: Sequence[ScheduleChange] = (),
    now: datetime | None = None,
) -> ChangeOrder:
    """A draft change order, numbered CO-n within its project. Without `lines` it starts
    from the contract's current lines (the whole set: a change order always holds all of
    the amended contract's lines)."""
    require_staff(actor)
    now = now or timezone.now()
    if not title.strip():
        raise Invalid("A change order needs a title.", code="title_required")
    with transaction.atomic():
        project = lock_project(project_id)
        if project.origin_quote_id is None:
            raise Conflict(
                f"Project {project.pk} has no contract (no accepted quote) to amend.",
                code="project_without_quote",
            )
        chosen = _resolved(lines) if lines is not None else _kept_lines(project)
        terms = line_terms(project, chosen)
        _check_schedule(project, schedule)
        last = project.change_orders.aggregate(n=Max("number"))["n"] or 0
        change_order = ChangeOrder.objects.create(
            project=project,
            number=last + 1,
            title=title.strip()[:200],
            summary=summary.strip()[:5000],
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
        _write_rows(change_order, terms, chosen, schedule)
        record_change_order_event(change_order, ChangeOrderEventKind.CREATED, actor=actor, now=now)
    return change_order


def change_order_update(
    *,
    actor: User,
    change_order_id: int,
    title: str | None = None,
    summary: str | None = None,
    lines: Sequence[LineInput] | None = None,
    schedule: Sequence[ScheduleChange] | None = None,
    now: datetime | None = None,
) -> ChangeOrder:
    """Edit a draft: what is given replaces what was (lines and schedule as whole sets).
    Only a draft: once sent, the customer may be approving exactly this document."""
    require_staff(actor)
    now = now or timezone.now()
    with transaction.atomic():
        project, change_order = lock_change_order(change_order_id)
        if change_order.status != ChangeOrderStatus.DRAFT:
            raise Conflict(
                f"{change_order.reference} is {change_order.status}; only a draft change "
                "order can be edited.",
                code="change_order_not_draft",
            )
        changed: list[str] = []
        if title is not None:
            if not title.strip():
                raise Invalid("A change order needs a title.", code="title_required")
            change_order.title = title.strip()[:200]
            changed.append("title")
        if summary is not None:
            change_order.summary = summary.strip()[:5000]
            changed.append("summary")
        if lines is not None:
            chosen = _resolved(lines)
            terms = line_terms(project, chosen)
            change_order.lines.all().delete()
            _write_rows(change_order, terms, chosen, [])
            changed.append("lines")
        if schedule is not None:
            _check_schedule(project, schedule)
            change_order.schedule_items.all().delete()
            ChangeOrderItem.objects.bulk_create(
                ChangeOrderItem(
                    change_order=change_order,
                    position=position,
                    milestone_id=row.milestone_id,
                    title=row.title.strip()[:200],
                    is_billable=row.is_billable,
                    billing_percentage=row.percentage if row.is_billable else None,
                    remove=row.remove,
                )
                for position, row in enumerate(schedule, 1)
            )
            changed.append("schedule")
        change_order.updated_at = now
        change_order.save(update_fields=["title", "summary", "updated_at"])
        if changed:
            record_change_order_event(
                change_order, ChangeOrderEventKind.EDITED, actor=actor, now=now, changed=changed
            )
    return change_order


def change_order_mark_sent(*, actor: User, change_order_id: int, now: datetime) -> ChangeOrderEvent:
    """The projects half of sending (notifications.change_orders queues the email in the
    same transaction). A sent change order can be sent again (a lost email)."""
    require_atomic()
    require_staff(actor)
    _, change_order = lock_change_order(change_order_id)
    if change_order.status not in (ChangeOrderStatus.DRAFT, ChangeOrderStatus.SENT):
        raise Conflict(
            f"{change_order.reference} is already {change_order.status}; only a draft or "
            "sent change order can be sent.",
            code="change_order_not_sendable",
        )
    customer = change_order.project.customer
    if not customer.billing_email:
        raise Conflict(
            f"{customer.name} has no billing email, so the change order cannot be emailed. "
            "Add one on the customer's page first.",
            code="customer_email_missing",
        )
    change_order.status = ChangeOrderStatus.SENT
    change_order.sent_at = now
    change_order.save(update_fields=["status", "sent_at"])
    return record_change_order_event(
        change_order, ChangeOrderEventKind.SENT, actor=actor, now=now, to=customer.billing_email
    )


def lock_for_answer(actor: User, change_order_id: int, verb: str) -> tuple[Project, ChangeOrder]:
    """Lock the change order `actor` answers. Staff answer a draft or sent one on the
    customer's behalf; a customer only their own project's sent ones (another customer's,
    or a draft, is missing to them)."""
    project, change_order = lock_change_order(change_order_id)
    if actor.is_customer:
        if (
            project.customer_id != actor.customer_id
            or change_order.status == ChangeOrderStatus.DRAFT
        ):
            raise NotFound(
                f"Change order {change_order_id} does not exist.", code="change_order_not_found"
            )
        allowed: tuple[str, ...] = (ChangeOrderStatus.SENT,)
    else:
        require_staff(actor)
        allowed = (ChangeOrderStatus.DRAFT, ChangeOrderStatus.SENT)
    if change_order.status not in allowed:
        raise Conflict(
            f"{change_order.reference} is already {change_order.status}; only a change order "
            f"waiting for an answer can be {verb}.",
            code="change_order_answered",
        )
    return project, change_order


def change_order_decline(
    *,
    actor: User,
    change_order_id: int,
    reason: str = "",
    ip: str | None = None,
    now: datetime | None = None,
) -> ChangeOrder:
    now = now or timezone.now()
    reason = reason.strip()[:2000]
    with transaction.atomic():
        _, change_order = lock_for_answer(actor, change_order_id, "declined")
        change_order.status = ChangeOrderStatus.DECLINED
        change_order.declined_at = now
        change_order.decline_reason = reason
        change_order.save(update_fields=["status", "declined_at", "decline_reason"])
        details: dict[str, Any] = {"reason": reason, "on_behalf": actor.is_staff_member}
        if ip is not None:
            details["ip"] = ip
        record_change_order_event(
            change_order, ChangeOrderEventKind.DECLINED, actor=actor, now=now, **details
        )
    return change_order
