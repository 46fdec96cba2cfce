"""A project's contract: the Contract tab (current lines and total, the history of
versions, the change orders with their previews), a change order's page for staff (edit
a draft, send it, record an answer on the customer's behalf) and for the customer
(approve with a typed signature, or decline)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from tranche.accounts.access import require_staff
from tranche.accounts.models import TaxRate, User
from tranche.billing.contract_reads import change_order_preview, contract_history
from tranche.billing.services.change_orders import change_order_approve
from tranche.core.errors import DomainError
from tranche.core.http import client_ip
from tranche.core.money import Money
from tranche.core.tax import TaxRate as CoreRate
from tranche.notifications.change_orders import change_order_send
from tranche.projects.amendment import Preview, ScheduleChange
from tranche.projects.models import ChangeOrder, ChangeOrderStatus, MilestoneStatus, Project
from tranche.projects.selectors import (
    access_change_order,
    access_project,
    change_order_list,
    current_lines,
    milestones_of,
)
from tranche.projects.services_change_orders import (
    change_order_create,
    change_order_decline,
    change_order_update,
)
from tranche.sales.services import Acceptance
from tranche.sales.terms import LineInput
from tranche.web.views.common import act, user_of

EXTRA_LINES = 2  # blank rows the editor offers for new lines


def _project(user: User, project_id: int) -> Project:
    try:
        require_staff(user)
        return access_project(user, project_id)
    except DomainError:
        raise Http404("No such project.") from None


def _order(user: User, change_order_id: int) -> ChangeOrder:
    try:
        return access_change_order(user, change_order_id)
    except DomainError:
        raise Http404("No such change order.") from None


def preview_rows(preview: Preview) -> list[dict[str, Any]]:
    currency = preview.currency
    return [
        {
            "title": row.title,
            "before": row.before_total(currency) if row.milestone_id else None,
            "after": None if row.removed else row.after_total(currency),
            "row": row,
        }
        for row in preview.rows
    ]


def rate_rows(preview: Preview) -> list[dict[str, Any]]:
    zero = Money.zero(preview.currency)
    return [
        {
            "rate": rate,
            "before": preview.before.get(rate, zero),
            "after": preview.after.get(rate, zero),
        }
        for rate in preview.rates
    ]


@login_required
def contract(request: HttpRequest, project_id: int) -> HttpResponse:
    user = user_of(request)
    found = _project(user, project_id)
    orders = list(change_order_list(user=user, project=found))
    return render(
        request,
        "web/project/contract.html",
        {
            "project": found,
            "lines": [(x, Money(x.line_total, found.currency)) for x in current_lines(found)],
            "versions": list(reversed(contract_history(found))),
            "orders": orders,
            "tab": "contract",
        },
    )


@login_required
@require_POST
def create(request: HttpRequest, project_id: int) -> HttpResponse:
    user = user_of(request)
    found = _project(user, project_id)
    made: list[ChangeOrder] = []
    if act(
        request,
        lambda: made.append(
            change_order_create(
                actor=user,
                project_id=found.pk,
                title=request.POST.get("title", "")[:200],
                summary=request.POST.get("summary", "")[:5000],
            )
        ),
        "Change order drafted from the current contract: change its lines and schedule, "
        "then send it.",
    ):
        return redirect("change-order", change_order_id=made[0].pk)
    return redirect("project-contract", project_id=found.pk)


def _decimal(value: str) -> Decimal | None:
    try:
        return Decimal(value.strip()) if value.strip() else None
    except InvalidOperation:
        return None


def _posted_lines(request: HttpRequest) -> list[LineInput] | str:
    """The editor's lines (blank rows skipped), or a sentence for the first unreadable."""
    lines: list[LineInput] = []
    count = int(request.POST.get("line_count", "0") or 0)
    for n in range(min(count, 200)):
        description = request.POST.get(f"line-{n}-description", "").strip()
        if not description:
            continue
        quantity = _decimal(request.POST.get(f"line-{n}-quantity", ""))
        price = _decimal(request.POST.get(f"line-{n}-unit_price", ""))
        if quantity is None or price is None:
            return f"Line “{description}”: enter a quantity and a unit price as numbers."
        rate = request.POST.get(f"line-{n}-tax_rate", "")
        rate_id = int(rate) if rate.isdigit() else None
        kept = request.POST.get(f"line-{n}-kept_rate", "")
        copy = None
        if rate == "kept" and "|" in kept:
            name, percentage = kept.rsplit("|", 1)
            kept_percentage = _decimal(percentage)
            if kept_percentage is None or not 0 <= kept_percentage <= 100:
                return f"Line “{description}”: choose a tax rate."
            copy = CoreRate(name, kept_percentage)
        lines.append(LineInput(description, quantity, price, rate_id, copy))
    return lines


def _posted_schedule(request: HttpRequest) -> list[ScheduleChange] | str:
    rows: list[ScheduleChange] = []
    count = int(request.POST.get("item_count", "0") or 0)
    for n in range(min(count, 200)):
        milestone = request.POST.get(f"item-{n}-milestone", "")
        title = request.POST.get(f"item-{n}-title", "").strip()
        if not milestone and not title:
            continue
        billable = request.POST.get(f"item-{n}-billable") == "on"
        percentage = _decimal(request.POST.get(f"item-{n}-percentage", ""))
        rows.append(
            ScheduleChange(
                int(milestone) if milestone.isdigit() else None,
                title,
                billable,
                percentage if billable else None,
                remove=request.POST.get(f"item-{n}-remove") == "on",
            )
        )
    return rows


def _editor(order: ChangeOrder) -> dict[str, Any]:
    """The draft's rows for the form: its lines then blank ones, and a schedule row for
    each pending milestone (the change order's row if it has one) then a blank one."""
    currency = order.project.currency
    lines = [
        {
            "description": x.description,
            "quantity": x.quantity,
            "unit_price": Money(x.unit_price, currency).api,
            "tax_name": x.tax_name,
            "tax_percentage": x.tax_percentage,
        }
        for x in order.lines.all()
    ]
    items = {i.milestone_id: i for i in order.schedule_items.all() if i.milestone_id}
    new_items = [i for i in order.schedule_items.all() if i.milestone_id is None]
    schedule = []
    for m in milestones_of(order.project):
        if m.status != MilestoneStatus.PENDING:
            continue
        item = items.get(m.pk)
        schedule.append(
            {
                "milestone": m.pk,
                "title": item.title if item else m.title,
                "billable": item.is_billable if item else m.is_billable,
                "percentage": item.billing_percentage if item else m.billing_percentage,
                "remove": item.remove if item else False,
            }
        )
    schedule += [
        {
            "milestone": "",
            "title": i.title,
            "billable": i.is_billable,
            "percentage": i.billing_percentage,
            "remove": False,
        }
        for i in new_items
    ]
    schedule.append({"milestone": "", "title": "", "billable": True, "percentage": None})
    return {
        "lines": [*lines, *([None] * EXTRA_LINES)],
        "schedule": schedule,
        "rates": list(TaxRate.objects.filter(is_active=True)),
    }


@login_required
def change_order(request: HttpRequest, change_order_id: int) -> HttpResponse:
    user = user_of(request)
    order = _order(user, change_order_id)
    try:
        preview: Preview | None = change_order_preview(order)
        refusal = ""
    except DomainError as exc:
        # A schedule row naming a milestone invoiced since the draft was written.
        preview, refusal = None, exc.detail
    context: dict[str, Any] = {
        "order": order,
        "project": order.project,
        "preview": preview,
        "refusal": refusal,
        "rows": preview_rows(preview) if preview else [],
        "rates": rate_rows(preview) if preview else [],
        "lines": [
            (
                x,
                Money(x.unit_price, order.project.currency),
                Money(x.line_total, order.project.currency),
            )
            for x in order.lines.all()
        ],
        "waiting": order.status == ChangeOrderStatus.SENT,
        "confirm": request.GET.get("confirm", ""),
    }
    if not user.is_staff_member:
        return render(request, "web/change_orders/portal.html", context)
    if order.status == ChangeOrderStatus.DRAFT:
        context["editor"] = _editor(order)
    context["tab"] = "contract"
    return render(request, "web/change_orders/detail.html", context)


@login_required
@require_POST
def edit(request: HttpRequest, change_order_id: int) -> HttpResponse:
    user = user_of(request)
    order = _order(user, change_order_id)
    if not user.is_staff_member:
        raise Http404("No such change order.")
    lines = _posted_lines(request)
    schedule = _posted_schedule(request)
    if isinstance(lines, str) or isinstance(schedule, str):
        messages.error(request, lines if isinstance(lines, str) else str(schedule))
        return redirect("change-order", change_order_id=order.pk)
    act(
        request,
        lambda: change_order_update(
            actor=user,
            change_order_id=order.pk,
            title=request.POST.get("title", "")[:200],
            summary=request.POST.get("summary", "")[:5000],
            lines=lines,
            schedule=schedule,
        ),
        f"Saved {order.reference}. The preview below shows what approving it would do.",
    )
    return redirect("change-order", change_order_id=order.pk)


@login_required
@require_POST
def send(request: HttpRequest, change_order_id: int) -> HttpResponse:
    user = user_of(request)
    order = _order(user, change_order_id)
    if not user.is_staff_member:
        raise Http404("No such change order.")
    act(
        request,
        lambda: change_order_send(actor=user, change_order_id=order.pk),
        f"Sent {order.reference} to {order.project.customer.name} to approve online.",
    )
    return redirect("change-order", change_order_id=order.pk)


@login_required
@require_POST
def approve(request: HttpRequest, change_order_id: int) -> HttpResponse:
    user = user_of(request)
    order = _order(user, change_order_id)
    acceptance = (
        Acceptance(
            name=request.POST.get("name", "")[:200],
            agreed=request.POST.get("agree") == "on",
            ip=client_ip(request),
        )
        if user.is_customer
        else None
    )
    credit = not user.is_customer and request.POST.get("issue_credit_note") == "on"
    act(
        request,
        lambda: change_order_approve(
            actor=user, change_order_id=order.pk, acceptance=acceptance, issue_credit_note=credit
        ),
        f"Thank you: you approved {order.reference}. The contract is updated."
        if user.is_customer
        else f"Recorded the approval of {order.reference} on the customer's behalf; the "
        "contract has a new version"
        + (" and credit notes were issued for what was invoiced above it." if credit else "."),
    )
    return redirect("change-order", change_order_id=order.pk)


@login_required
@require_POST
def decline(request: HttpRequest, change_order_id: int) -> HttpResponse:
    user = user_of(request)
    order = _order(user, change_order_id)
    act(
        request,
        lambda: change_order_decline(
            actor=user,
            change_order_id=order.pk,
            reason=request.POST.get("reason", ""),
            ip=client_ip(request) if user.is_customer else None,
        ),
        f"{order.reference} was declined; the contract stays as it is.",
    )
    return redirect("change-order", change_order_id=order.pk)


urlpatterns = [
    path("projects/<int:project_id>/contract", contract, name="project-contract"),
    path("projects/<int:project_id>/change-orders/new", create, name="change-order-create"),
    path("change-orders/<int:change_order_id>/", change_order, name="change-order"),
    path("change-orders/<int:change_order_id>/edit", edit, name="change-order-edit"),
    path("change-orders/<int:change_order_id>/send", send, name="change-order-send"),
    path("change-orders/<int:change_order_id>/approve", approve, name="change-order-approve"),
    path("change-orders/<int:change_order_id>/decline", decline, name="change-order-decline"),
]
