"""Projects: the list (search, customer and status filters), one project's tabs
(milestones, financials, activity) for staff and its milestone timeline for the customer,
and the schedule's actions (add, edit, move, delete, complete, reopen)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from tranche.accounts.access import require_admin, require_staff
from tranche.accounts.models import User
from tranche.billing import selectors as billing
from tranche.billing.models import EventKind, Invoice, InvoiceEvent
from tranche.billing.project_reads import (
    ProjectStatus,
    customers_for_filter,
    milestone_board,
    milestone_timeline,
    project_activity,
    project_facts,
    project_rows,
)
from tranche.billing.services.drafts import Completion, milestone_complete, milestone_reopen
from tranche.billing.services.retainage import retainage_release
from tranche.billing.services.schedule import milestone_delete, milestone_update
from tranche.core.errors import DomainError
from tranche.core.tax import PriceMode, percent_text
from tranche.projects.contract import project_bases
from tranche.projects.models import (
    ChangeOrderEvent,
    ChangeOrderEventKind,
    Milestone,
    Project,
    ProjectEvent,
    ProjectEventKind,
)
from tranche.projects.selectors import (
    access_project,
    change_order_events,
    change_order_list,
    find_milestone,
    milestones_of,
    project_events,
)
from tranche.projects.services import milestone_create, project_set_retainage
from tranche.web.views.common import page_of, search_of, user_of
from tranche.web.views.event_text import changes_text, method_text, money_text, status_text

T = TypeVar("T")


# --- the list -----------------------------------------------------------------------------


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


@login_required
def projects(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    search = search_of(request)
    customer_id = _int_or_none(request.GET.get("customer")) if user.is_staff_member else None
    status = request.GET.get("status") or None
    if status not in ProjectStatus.LABELS:
        status = None
    rows = project_rows(user=user, search=search, customer_id=customer_id, status=status)
    page = page_of(request, rows)
    filters = {"q": search, "customer": customer_id or "", "status": status or ""}
    return render(
        request,
        "web/projects.html",
        {
            "page": page,
            "search": search,
            "customer_id": customer_id,
            "status": status,
            "statuses": ProjectStatus.CHOICES,
            "customers": customers_for_filter(user=user),
            "query": urlencode({k: v for k, v in filters.items() if v}),
            "filtered": bool(search or customer_id or status),
        },
    )


# --- one project --------------------------------------------------------------------------


def _project(user: User, project_id: int, *, staff_only: bool = False) -> Project:
    """The project if `user` may see it (and, for staff-only pages and actions, is staff);
    404 alike for everything else, so a refusal confirms no id."""
    try:
        if staff_only:
            require_staff(user)
        return access_project(user, project_id)
    except DomainError:
        raise Http404("No such project.") from None


def _milestone(project: Project, milestone_id: int) -> Milestone:
    try:
        return find_milestone(milestones_of(project), milestone_id, project)
    except DomainError:
        raise Http404("No such milestone.") from None


class MilestoneForm(forms.Form):
    """Parses what was typed; the rules (a title, a valid percentage, a schedule of at most
    100 %) are the services', whose sentences show next to the field."""

    title = forms.CharField(max_length=200, required=False)
    planned_date = forms.DateField(required=False, error_messages={"invalid": "Enter a date."})
    is_billable = forms.BooleanField(required=False)
    billing_percentage = forms.DecimalField(
        required=False,
        max_digits=5,
        decimal_places=2,
        error_messages={"invalid": "Enter a percentage such as 30 or 12.5."},
    )

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        billable = bool(data["is_billable"])
        return {
            "title": data["title"],
            "planned_date": data["planned_date"],
            "is_billable": billable,
            "billing_percentage": data["billing_percentage"] if billable else None,
        }


# The service's error codes that belong to one field: its sentence shows next to it.
FIELD_OF_CODE = {
    "title_required": "title",
    "billing_percentage_required": "billing_percentage",
    "billing_percentage_too_high": "billing_percentage",
    "billing_percentage_not_billable": "billing_percentage",
    "schedule_over_100": "billing_percentage",
}


def _save_milestone(
    request: HttpRequest, form: MilestoneForm, write: Callable[[dict[str, Any]], object]
) -> bool:
    """Run the service with the form's values; a refusal lands next to its field and in
    the live region. True when it succeeded."""
    if not form.is_valid():
        messages.error(request, "Check the highlighted fields.")
        return False
    try:
        write(form.values())
    except DomainError as exc:
        form.add_error(FIELD_OF_CODE.get(exc.code), exc.detail)
        messages.error(request, exc.detail)
        return False
    return True


def _milestones_tab(
    request: HttpRequest, project: Project, form: MilestoneForm | None = None, status: int = 200
) -> HttpResponse:
    user = user_of(request)
    board = milestone_board(project, user=user)
    return render(
        request,
        "web/project/milestones.html",
        {
            "project": project,
            "board": board,
            "form": form or MilestoneForm(),
            "facts": project_facts(project),
            "tab": "milestones",
        },
        status=status,
    )


def _with_titles(invoices: Any, milestones: list[Milestone]) -> list[tuple[Invoice, str]]:
    """Each invoice with its milestone's title, without a query per invoice."""
    titles = {m.pk: m.title for m in milestones}
    return [(i, titles.get(i.milestone_id or 0, "")) for i in invoices]


@login_required
def project(request: HttpRequest, project_id: int) -> HttpResponse:
    user = user_of(request)
    found = _project(user, project_id)
    if user.is_staff_member:
        return _milestones_tab(request, found)
    steps = milestone_timeline(found, user=user)
    invoices, summary = billing.project_invoices(user=user, project=found)
    page = page_of(request, invoices)
    return render(
        request,
        "web/project/customer.html",
        {
            "project": found,
            "steps": steps,
            "facts": project_facts(found),
            "page": page,
            "rows": _with_titles(page.object_list, [s.row.milestone for s in steps]),
            "summary": summary,
            "change_orders": change_order_list(user=user, project=found),
        },
    )


@login_required
def financials(request: HttpRequest, project_id: int) -> HttpResponse:
    user = user_of(request)
    found = _project(user, project_id, staff_only=True)
    invoices, summary = billing.project_invoices(user=user, project=found)
    page = page_of(request, invoices)
    bases = project_bases(found)
    milestones = milestones_of(found)
    return render(
        request,
        "web/project/financials.html",
        {
            "project": found,
            "page": page,
            "rows": _with_titles(page.object_list, milestones),
            "summary": summary,
            "bases": bases,
            # Any named rate: the contract is shown before/including tax, rate by rate.
            "taxed": any(rate.name or rate.percentage for rate in bases),
            "inclusive": found.price_mode == PriceMode.INCLUSIVE,
            # Staff see every invoice of the project: the facts need no query of their own.
            "facts": project_facts(found, milestones=milestones, invoices=invoices),
            "tab": "financials",
        },
    )


@login_required
def activity(request: HttpRequest, project_id: int) -> HttpResponse:
    user = user_of(request)
    found = _project(user, project_id, staff_only=True)
    # The invoices' audit trail and the contract's (change orders), newest first.
    entries = [(event_sentence(e), e.created_at) for e in project_activity(project=found)]
    entries += [(change_order_sentence(e), e.at) for e in change_order_events(found)]
    entries += [(project_event_sentence(e), e.at) for e in project_events(found)]
    entries.sort(key=lambda entry: entry[1], reverse=True)
    page = page_of(request, entries)
    return render(
        request,
        "web/project/activity.html",
        {
            "project": found,
            "page": page,
            "entries": page.object_list,
            "facts": project_facts(found),
            "tab": "activity",
        },
    )


# --- the schedule's actions ---------------------------------------------------------------


@login_required
@require_POST
def add_milestone(request: HttpRequest, project_id: int) -> HttpResponse:
    user = user_of(request)
    found = _project(user, project_id, staff_only=True)
    form = MilestoneForm(request.POST)
    added: list[Milestone] = []
    if not _save_milestone(
        request,
        form,
        lambda values: added.append(milestone_create(actor=user, project_id=found.pk, **values)),
    ):
        return _milestones_tab(request, found, form, status=422)
    messages.success(request, f"Added milestone '{added[0].title}' at the end of the schedule.")
    return redirect("project", project_id=found.pk)


@login_required
def edit_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    user = user_of(request)
    found = _project(user, project_id, staff_only=True)
    milestone = _milestone(found, milestone_id)
    status = 200
    if request.method == "POST":
        form = MilestoneForm(request.POST)
        if _save_milestone(
            request,
            form,
            lambda values: milestone_update(
                actor=user, project_id=found.pk, milestone_id=milestone.pk, **values
            ),
        ):
            messages.success(request, f"Saved milestone '{form.cleaned_data['title'].strip()}'.")
            return redirect("project", project_id=found.pk)
        status = 422
    else:
        form = MilestoneForm(
            initial={
                "title": milestone.title,
                "planned_date": milestone.planned_date,
                "is_billable": milestone.is_billable,
                "billing_percentage": milestone.billing_percentage,
            }
        )
    return render(
        request,
        "web/project/edit_milestone.html",
        {
            "project": found,
            "milestone": milestone,
            "form": form,
            "billable_total": milestone_board(found, user=user).billable_total,
            "tab": "milestones",
        },
        status=status,
    )


def _announce(request: HttpRequest, action: Callable[[], T], success: Callable[[T], str]) -> None:
    """`act`, with the success sentence made from what the service returned."""
    try:
        result = action()
    except DomainError as exc:
        messages.error(request, exc.detail)
        return
    messages.success(request, success(result))


@login_required
@require_POST
def move_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    user = user_of(request)
    found = _project(user, project_id, staff_only=True)
    try:
        position = int(request.POST.get("position", ""))
    except ValueError:
        position = 0  # the service's own sentence says which positions exist
    _announce(
        request,
        lambda: milestone_update(
            actor=user, project_id=found.pk, milestone_id=milestone_id, position=position
        ),
        lambda m: f"Moved '{m.title}' to position {m.position}.",
    )
    return redirect("project", project_id=found.pk)


@login_required
@require_POST
def delete_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    user = user_of(request)
    found = _project(user, project_id, staff_only=True)
    milestone = _milestone(found, milestone_id)
    _announce(
        request,
        lambda: milestone_delete(actor=user, project_id=found.pk, milestone_id=milestone.pk),
        lambda _: f"Deleted milestone '{milestone.title}'.",
    )
    return redirect("project", project_id=found.pk)


def _completed(done: Completion) -> str:
    title = done.milestone.title
    if done.already_completed:
        return f"Milestone '{title}' was already completed."
    if done.invoice is None:
        return f"Completed '{title}'. No invoice was created."
    return (
        f"Completed '{title}'. A draft invoice for {done.invoice.total} is waiting for an "
        "admin to send it."
    )


@login_required
@require_POST
def complete_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    user = user_of(request)
    found = _project(user, project_id, staff_only=True)
    _announce(
        request,
        lambda: milestone_complete(actor=user, project_id=found.pk, milestone_id=milestone_id),
        _completed,
    )
    return redirect("project", project_id=found.pk)


@login_required
@require_POST
def reopen_milestone(request: HttpRequest, project_id: int, milestone_id: int) -> HttpResponse:
    user = user_of(request)
    try:
        require_admin(user)
    except DomainError:
        raise Http404("No such project.") from None
    found = _project(user, project_id, staff_only=True)
    _announce(
        request,
        lambda: milestone_reopen(actor=user, project_id=found.pk, milestone_id=milestone_id),
        lambda m: f"Reopened '{m.title}'. Any draft invoice for it was cancelled.",
    )
    return redirect("project", project_id=found.pk)


@login_required
@require_POST
def set_retainage(request: HttpRequest, project_id: int) -> HttpResponse:
    user = user_of(request)
    try:
        require_admin(user)
    except DomainError:
        raise Http404("No such project.") from None
    found = _project(user, project_id, staff_only=True)
    try:
        percentage = Decimal(request.POST.get("retainage_percentage", "").strip() or "x")
    except InvalidOperation:
        percentage = Decimal(-1)  # the service's sentence says what is allowed
    if not percentage.is_finite():
        percentage = Decimal(-1)
    _announce(
        request,
        lambda: project_set_retainage(actor=user, project_id=found.pk, percentage=percentage),
        lambda p: (
            f"Retainage set to {percent_text(p.retainage_percentage)} % of each milestone "
            "invoice made from now on."
        ),
    )
    return redirect("project-financials", project_id=found.pk)


@login_required
@require_POST
def release_retainage(request: HttpRequest, project_id: int) -> HttpResponse:
    user = user_of(request)
    found = _project(user, project_id, staff_only=True)
    _announce(
        request,
        lambda: retainage_release(actor=user, project_id=found.pk),
        lambda invoice: (
            f"A draft invoice releasing {invoice.total} of retainage is waiting for an admin "
            "to send it."
        ),
    )
    return redirect("project-financials", project_id=found.pk)


# --- the audit trail in sentences ---------------------------------------------------------


def event_sentence(event: InvoiceEvent) -> str:
    """One audit event as a sentence a person reads: who did what to which invoice."""
    invoice = event.invoice
    details: dict[str, Any] = event.details or {}
    who = (event.actor.full_name or event.actor.email) if event.actor else ""
    milestone = invoice.milestone.title if invoice.milestone else invoice.description
    shown = (
        f"invoice {invoice.number}" if invoice.number else f"the draft invoice for '{milestone}'"
    )

    def money(key: str) -> str:
        return money_text(details.get(key, ""), invoice.currency)

    kind = event.kind
    if kind == EventKind.CREATED:
        return (
            f"{who or 'Tranche'} completed milestone '{milestone}', creating a draft invoice "
            f"for {money('amount')}"
        )
    if kind == EventKind.EDITED:
        return f"{who or 'Tranche'} edited {shown}: {changes_text(details, invoice.currency)}"
    if kind == EventKind.SEND_FAILED:
        return f"Sending {shown} failed: {details.get('error', 'no reason given')}"
    if kind == EventKind.SENT:
        to = f" to {invoice.customer_email}" if invoice.customer_email else ""
        return f"{who or 'Tranche'} sent invoice {details.get('number', invoice.number)}{to}"
    if kind == EventKind.CANCELLED:
        reason = details.get("reason", "")
        if reason == "Milestone reopened":
            return f"{who or 'Tranche'} reopened milestone '{milestone}', cancelling {shown}"
        return f"{who or 'Tranche'} cancelled {shown}" + (f": {reason}" if reason else "")
    if kind in (EventKind.PAYMENT_RECORDED, EventKind.PAYMENT_ON_CANCELLED_INVOICE):
        method = details.get("method", "")
        how = f" by {method_text(method)}" if method else ""
        late = " (after it was cancelled)" if kind != EventKind.PAYMENT_RECORDED else ""
        by = f"{who} recorded a payment" if who else "A payment"
        return f"{by} of {money('amount')}{how} on {shown}{late}"
    if kind == EventKind.PAYMENT_FAILED:
        return f"A payment on {shown} failed: {details.get('message') or 'no reason given'}"
    if kind == EventKind.REFUND_RECORDED:
        return f"A refund of {money('amount')} was recorded on {shown}"
    if kind == EventKind.STATUS_CHANGED:
        return f"{shown[0].upper()}{shown[1:]} became {status_text(details.get('new', ''))}"
    if kind == EventKind.CREDIT_OWED:
        return f"{shown[0].upper()}{shown[1:]} was overpaid: {money('amount')} is owed back"
    if kind == EventKind.INTENT_AMOUNT_CHANGED:
        return f"The amount to pay online for {shown} changed from {money('old')} to {money('new')}"
    if kind == EventKind.INTENT_CANCELLED:
        return f"Online payment of {shown} was withdrawn: {details.get('reason', '')}".rstrip(": ")
    if kind == EventKind.INTENT_CANCELED_AT_PROVIDER:
        return f"The payment provider cancelled online payment of {shown}"
    return f"{event.get_kind_display()}: {shown}"


def project_event_sentence(event: ProjectEvent) -> str:
    """A change to the project's own terms as a sentence: who changed what, from and to."""
    who = (event.actor.full_name or event.actor.email) if event.actor else "Tranche"
    details: dict[str, Any] = event.details or {}
    if event.kind == ProjectEventKind.RETAINAGE_CHANGED:
        before, after = (
            percent_text(Decimal(details.get(key) or "0")) + " %" for key in ("before", "after")
        )
        return f"{who} changed the retainage on invoices made from then on from {before} to {after}"
    return f"{who}: {event.get_kind_display()}"


def change_order_sentence(event: ChangeOrderEvent) -> str:
    """A change order's event as a sentence: who did what to which change order."""
    order = event.change_order
    details: dict[str, Any] = event.details or {}
    who = (event.actor.full_name or event.actor.email) if event.actor else "Tranche"
    shown = f"change order {order.reference} “{order.title}”"
    kind = event.kind
    if kind == ChangeOrderEventKind.CREATED:
        return f"{who} drafted {shown}"
    if kind == ChangeOrderEventKind.EDITED:
        return f"{who} edited {shown}"
    if kind == ChangeOrderEventKind.SENT:
        return f"{who} sent {shown} to {details.get('to', 'the customer')}"
    if kind == ChangeOrderEventKind.APPROVED:
        by = (
            f"{who} recorded the customer's approval of {shown}"
            if details.get("on_behalf")
            else f"{details.get('name') or who} approved {shown} online"
        )
        before = money_text(details.get("before", ""), order.project.currency)
        after = money_text(details.get("after", ""), order.project.currency)
        return f"{by}: contract version {details.get('version')}, {before} → {after}"
    if kind == ChangeOrderEventKind.DECLINED:
        reason = details.get("reason", "")
        return f"{who} declined {shown}" + (f": {reason}" if reason else "")
    return f"{event.get_kind_display()}: {shown}"


urlpatterns = [
    path("projects/", projects, name="projects"),
    path("projects/<int:project_id>/", project, name="project"),
    path("projects/<int:project_id>/financials", financials, name="project-financials"),
    path("projects/<int:project_id>/activity", activity, name="project-activity"),
    path("projects/<int:project_id>/milestones/add", add_milestone, name="milestone-add"),
    path(
        "projects/<int:project_id>/milestones/<int:milestone_id>/edit",
        edit_milestone,
        name="milestone-edit",
    ),
    path(
        "projects/<int:project_id>/milestones/<int:milestone_id>/move",
        move_milestone,
        name="milestone-move",
    ),
    path(
        "projects/<int:project_id>/milestones/<int:milestone_id>/delete",
        delete_milestone,
        name="milestone-delete",
    ),
    path(
        "projects/<int:project_id>/milestones/<int:milestone_id>/complete",
        complete_milestone,
        name="milestone-complete",
    ),
    path(
        "projects/<int:project_id>/milestones/<int:milestone_id>/reopen",
        reopen_milestone,
        name="milestone-reopen",
    ),
    path("projects/<int:project_id>/retainage", set_retainage, name="project-retainage"),
    path(
        "projects/<int:project_id>/retainage/release",
        release_retainage,
        name="project-retainage-release",
    ),
]
