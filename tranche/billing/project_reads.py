"""Reads behind the project pages: the filtered project list with each project's status
and progress, a milestone board (each milestone with its live invoice and what can be done
to it), the customer's milestone timeline, and the project's audit trail.

They live in billing, not projects, because a project's status and a milestone's
possible actions depend on its invoices.

A project's status, computed in SQL so a page of projects is one query:

- ``waiting_for_deposit``: a milestone billed on acceptance (a deposit) has no paid
  invoice yet: work waits for the money;
- ``active``: a milestone is still pending (or the schedule is empty);
- ``completed``: every milestone is completed, but money is still to come: an invoice is
  in draft or sent and not yet fully paid;
- ``paid``: every milestone is completed and no invoice is open or in draft.

The status says where the work stands, not which invoices exist: a customer whose project
has a draft waiting sees "completed" too (money is still to come), never the draft itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from tranche.accounts.access import customer_scope
from tranche.accounts.models import Customer, User
from tranche.billing import rules
from tranche.billing.models import (
    OPEN_STATUSES,
    Invoice,
    InvoiceEvent,
    InvoiceStatus,
)
from tranche.billing.retainage import Retainage, project_retainage, retainage_from
from tranche.billing.selectors import deposit_unpaid, invoice_queryset, waiting_for_deposit
from tranche.core.db import valid_id
from tranche.core.errors import Invalid
from tranche.core.money import ZERO, Money
from tranche.projects.models import Milestone, MilestoneStatus, Project
from tranche.projects.selectors import ProjectDetail, project_detail, project_list


class ProjectStatus:
    WAITING_FOR_DEPOSIT: Final = "waiting_for_deposit"
    ACTIVE: Final = "active"
    COMPLETED: Final = "completed"
    PAID: Final = "paid"
    CHOICES: Final = (
        (WAITING_FOR_DEPOSIT, "Waiting for deposit"),
        (ACTIVE, "Active"),
        (COMPLETED, "Completed"),
        (PAID, "Paid"),
    )
    LABELS: Final = dict(CHOICES)


def _count(milestones: QuerySet[Milestone]) -> Coalesce:
    counted = milestones.order_by().values("project").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def project_rows(
    *,
    user: User,
    search: str = "",
    customer_id: int | None = None,
    status: str | None = None,
) -> QuerySet[Project]:
    """The projects `user` may see, newest first, each annotated with `milestone_count`,
    `done_count` and `status` (see the module's docstring). `customer_id` narrows to one
    customer (a customer user is always narrowed to their own)."""
    if status is not None and status not in ProjectStatus.LABELS:
        raise Invalid(
            f"Unknown status {status!r}; use one of {', '.join(ProjectStatus.LABELS)}.",
            code="status_invalid",
        )
    mine = Milestone.objects.filter(project=OuterRef("pk"))
    waiting = Invoice.objects.filter(
        project=OuterRef("pk"), status__in=[InvoiceStatus.DRAFT, *OPEN_STATUSES]
    )
    projects = project_list(user=user, search=search).annotate(
        milestone_count=_count(mine),
        done_count=_count(mine.filter(status=MilestoneStatus.COMPLETED)),
        status=Case(
            When(
                Exists(deposit_unpaid().filter(project=OuterRef("pk"))),
                then=Value(ProjectStatus.WAITING_FOR_DEPOSIT),
            ),
            When(
                Exists(mine.filter(status=MilestoneStatus.PENDING)) | Q(milestone_count=0),
                then=Value(ProjectStatus.ACTIVE),
            ),
            When(Exists(waiting), then=Value(ProjectStatus.COMPLETED)),
            default=Value(ProjectStatus.PAID),
            output_field=CharField(),
        ),
    )
    if customer_id is not None:
        projects = projects.filter(customer_id=customer_id if valid_id(customer_id) else 0)
    if status is not None:
        projects = projects.filter(status=status)
    return projects


@dataclass(frozen=True)
class MilestoneRow:
    milestone: Milestone
    amount: Money
    invoice: Invoice | None  # its live invoice, if the viewer may see it
    first: bool
    last: bool

    @property
    def pending(self) -> bool:
        return self.milestone.status == MilestoneStatus.PENDING

    @property
    def complete_refusal(self) -> str | None:
        """Why completing it would be refused (the service's own sentence), or None."""
        refusal = rules.complete_refusal(self.milestone, self.amount.amount)
        return refusal.detail if refusal else None

    @property
    def reopen_refusal(self) -> str | None:
        refusal = rules.reopen_refusal(self.invoice)
        return refusal.detail if refusal else None


@dataclass(frozen=True)
class MilestoneBoard:
    detail: ProjectDetail
    rows: list[MilestoneRow]

    @property
    def project(self) -> Project:
        return self.detail.project

    @property
    def billable_total(self) -> Decimal:
        """The billable percentages of the schedule, added up."""
        return sum(
            (m.billing_percentage or ZERO for m in self.detail.milestones if m.is_billable), ZERO
        )


def _live_invoices(milestones: list[Milestone], *, user: User) -> dict[int, Invoice]:
    rows = (
        invoice_queryset(user=user)
        .filter(milestone__in=milestones)
        .exclude(status=InvoiceStatus.CANCELLED)
    )
    return {i.milestone_id: i for i in rows if i.milestone_id is not None}


def milestone_board(project: Project, *, user: User) -> MilestoneBoard:
    """The project's schedule, each milestone with its amount and the live invoice the
    viewer may see: two queries whatever the schedule's length."""
    detail = project_detail(project)
    invoices = _live_invoices(detail.milestones, user=user)
    count = len(detail.milestones)
    rows = [
        MilestoneRow(m, detail.amount_of(m), invoices.get(m.pk), n == 0, n == count - 1)
        for n, m in enumerate(detail.milestones)
    ]
    return MilestoneBoard(detail, rows)


class Step:
    """Where a milestone stands, as its customer sees it."""

    UPCOMING: Final = "upcoming"
    COMPLETED: Final = "completed"
    INVOICED: Final = "invoiced"
    PAID: Final = "paid"
    LABELS: Final = {
        UPCOMING: "Upcoming",
        COMPLETED: "Completed",
        INVOICED: "Invoiced",
        PAID: "Paid",
    }


@dataclass(frozen=True)
class TimelineStep:
    row: MilestoneRow
    state: str

    @property
    def label(self) -> str:
        return Step.LABELS[self.state]


def milestone_timeline(project: Project, *, user: User) -> list[TimelineStep]:
    """Each milestone as a step: upcoming, completed (not invoiced yet, as far as the
    viewer can see), invoiced (sent, money due) or paid."""
    steps = []
    for row in milestone_board(project, user=user).rows:
        invoice = row.invoice
        if row.pending:
            state = Step.UPCOMING
        elif invoice is None or invoice.status == InvoiceStatus.DRAFT:
            state = Step.COMPLETED
        elif invoice.status == InvoiceStatus.PAID:
            state = Step.PAID
        else:
            state = Step.INVOICED
        steps.append(TimelineStep(row, state))
    return steps


@dataclass(frozen=True)
class ProjectFacts:
    """What the project's pages say above the tabs: whether it waits for its deposit, and
    its retainage (staff only: it counts drafts)."""

    waiting_for_deposit: bool
    retainage: Retainage


def project_facts(
    project: Project,
    *,
    milestones: list[Milestone] | None = None,
    invoices: list[Invoice] | None = None,
) -> ProjectFacts:
    """Two queries; none when the page has read the project's milestones and every one
    of its invoices (drafts and cancelled ones included: a staff member's view) already."""
    if milestones is None or invoices is None:
        return ProjectFacts(
            waiting_for_deposit=bool(waiting_for_deposit([project.pk])),
            retainage=project_retainage(project),
        )
    # As selectors.deposit_unpaid: a deposit milestone without a paid invoice.
    paid = {i.milestone_id for i in invoices if i.status == InvoiceStatus.PAID}
    return ProjectFacts(
        waiting_for_deposit=any(m.bill_on_acceptance and m.pk not in paid for m in milestones),
        retainage=retainage_from(invoices, project.currency),
    )


def project_activity(*, project: Project) -> QuerySet[InvoiceEvent]:
    """The audit trail of the project's invoices, newest first (staff only: the caller
    checks the role)."""
    return (
        InvoiceEvent.objects.filter(invoice__project=project)
        .select_related("actor", "invoice", "invoice__milestone")
        .order_by("-created_at", "-id")
    )


def customers_for_filter(*, user: User) -> list[tuple[int, str]]:
    """The customers a staff member can filter the project list by (a customer, none)."""
    if customer_scope(user) is not None:
        return []
    return list(Customer.objects.order_by("name", "id").values_list("pk", "name"))
