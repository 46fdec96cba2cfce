"""/api/projects/{id}/change-orders and /api/change-orders/{id}: staff draft, edit and
send a change order; the customer (or staff on their behalf) approves or declines it;
anyone who may see it reads its preview. Thin: the writes are the services'."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Status

from tranche.accounts.access import require_staff
from tranche.accounts.auth import actor
from tranche.billing.contract_reads import change_order_preview
from tranche.billing.schemas_change_orders import (
    ApproveIn,
    ChangeOrderIn,
    ChangeOrderLineIn,
    ChangeOrderList,
    ChangeOrderOut,
    ChangeOrderPatch,
    CustomerChangeOrderList,
    CustomerChangeOrderOut,
    DeclineIn,
    PreviewOut,
    ScheduleRowIn,
)
from tranche.billing.services.change_orders import change_order_approve
from tranche.core.http import client_ip
from tranche.notifications.change_orders import change_order_send
from tranche.projects.amendment import ScheduleChange
from tranche.projects.models import ChangeOrder
from tranche.projects.selectors import access_change_order, access_project, change_order_list
from tranche.projects.services_change_orders import (
    change_order_create,
    change_order_decline,
    change_order_update,
)
from tranche.sales.services import Acceptance
from tranche.sales.terms import LineInput

project_router = Router(tags=["change orders"])
router = Router(tags=["change orders"])


def _lines(lines: list[ChangeOrderLineIn] | None) -> list[LineInput] | None:
    if lines is None:
        return None
    return [LineInput(x.description, x.quantity, x.unit_price, x.tax_rate_id) for x in lines]


def _schedule(rows: list[ScheduleRowIn]) -> list[ScheduleChange]:
    return [
        ScheduleChange(r.milestone_id, r.title, r.is_billable, r.billing_percentage, r.remove)
        for r in rows
    ]


def _out(user: Any, order: ChangeOrder) -> ChangeOrderOut | CustomerChangeOrderOut:
    if user.is_staff_member:
        return ChangeOrderOut.of(order)
    return CustomerChangeOrderOut.of(order)


@project_router.get(
    "/{project_id}/change-orders",
    response=ChangeOrderList | CustomerChangeOrderList,
    description="Staff get `ChangeOrderList`; a customer gets `CustomerChangeOrderList` "
    "(no drafts).",
)
def list_change_orders(
    request: HttpRequest, project_id: int
) -> ChangeOrderList | CustomerChangeOrderList:
    user = actor(request)
    orders = list(change_order_list(user=user, project=access_project(user, project_id)))
    if user.is_staff_member:
        return ChangeOrderList(items=[ChangeOrderOut.of(o) for o in orders])
    return CustomerChangeOrderList(items=[CustomerChangeOrderOut.of(o) for o in orders])


@project_router.post("/{project_id}/change-orders", response={201: ChangeOrderOut})
def create_change_order(
    request: HttpRequest, project_id: int, payload: ChangeOrderIn
) -> Status[ChangeOrderOut]:
    user = actor(request)
    require_staff(user)
    project = access_project(user, project_id)
    order = change_order_create(
        actor=user,
        project_id=project.pk,
        title=payload.title,
        summary=payload.summary,
        lines=_lines(payload.lines),
        schedule=_schedule(payload.schedule),
    )
    return Status(201, ChangeOrderOut.of(order))


@router.get(
    "/{change_order_id}",
    response=ChangeOrderOut | CustomerChangeOrderOut,
    description="Staff get `ChangeOrderOut`; a customer gets `CustomerChangeOrderOut`.",
)
def get_change_order(
    request: HttpRequest, change_order_id: int
) -> ChangeOrderOut | CustomerChangeOrderOut:
    user = actor(request)
    return _out(user, access_change_order(user, change_order_id))


@router.patch("/{change_order_id}", response=ChangeOrderOut)
def update_change_order(
    request: HttpRequest, change_order_id: int, payload: ChangeOrderPatch
) -> ChangeOrderOut:
    user = actor(request)
    require_staff(user)
    order = access_change_order(user, change_order_id)
    given = payload.model_dump(exclude_unset=True)
    change_order_update(
        actor=user,
        change_order_id=order.pk,
        title=payload.title if "title" in given else None,
        summary=payload.summary if "summary" in given else None,
        lines=_lines(payload.lines) if "lines" in given else None,
        schedule=_schedule(payload.schedule) if payload.schedule is not None else None,
    )
    return ChangeOrderOut.of(access_change_order(user, order.pk))


@router.post("/{change_order_id}/send", response=ChangeOrderOut)
def send_change_order(request: HttpRequest, change_order_id: int) -> ChangeOrderOut:
    user = actor(request)
    require_staff(user)
    order = access_change_order(user, change_order_id)
    change_order_send(actor=user, change_order_id=order.pk)
    return ChangeOrderOut.of(access_change_order(user, order.pk))


@router.post(
    "/{change_order_id}/approve",
    response=ChangeOrderOut | CustomerChangeOrderOut,
    description="A customer approves their own sent change order with `name` and "
    "`agreed` (time and address are recorded); staff record an approval on the "
    "customer's behalf; below what was invoiced, staff approve with `issue_credit_note` "
    "and credit notes are issued for the difference (a customer's approval is refused "
    "with `credit_note_required`).",
)
def approve_change_order(
    request: HttpRequest, change_order_id: int, payload: ApproveIn
) -> ChangeOrderOut | CustomerChangeOrderOut:
    user = actor(request)
    order = access_change_order(user, change_order_id)
    acceptance = (
        Acceptance(payload.name, payload.agreed, client_ip(request)) if user.is_customer else None
    )
    change_order_approve(
        actor=user,
        change_order_id=order.pk,
        acceptance=acceptance,
        issue_credit_note=payload.issue_credit_note,
    )
    return _out(user, access_change_order(user, order.pk))


@router.post("/{change_order_id}/decline", response=ChangeOrderOut | CustomerChangeOrderOut)
def decline_change_order(
    request: HttpRequest, change_order_id: int, payload: DeclineIn
) -> ChangeOrderOut | CustomerChangeOrderOut:
    user = actor(request)
    order = access_change_order(user, change_order_id)
    change_order_decline(
        actor=user,
        change_order_id=order.pk,
        reason=payload.reason,
        ip=client_ip(request) if user.is_customer else None,
    )
    return _out(user, access_change_order(user, order.pk))


@router.get("/{change_order_id}/preview", response=PreviewOut)
def preview_change_order(request: HttpRequest, change_order_id: int) -> PreviewOut:
    user = actor(request)
    return PreviewOut.of(change_order_preview(access_change_order(user, change_order_id)))
