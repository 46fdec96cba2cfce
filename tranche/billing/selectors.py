"""Financial reads, always scoped to the caller: staff see everything, a customer user
sees their own customer's invoices that were sent (a draft, even a cancelled one that
never went out, is the business's own work in progress)."""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import (
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)

from tranche.accounts.access import customer_scope
from tranche.accounts.models import User
from tranche.billing.models import (
    OPEN_STATUSES,
    SENT_STATUSES,
    CreditNote,
    EventKind,
    Invoice,
    InvoiceEvent,
    InvoiceStatus,
    InvoiceTotals,
)
from tranche.billing.retainage import Retainage, retainage_of
from tranche.billing.taxes import credited_contract_amount
from tranche.core.db import valid_id
from tranche.core.errors import Invalid, NotFound
from tranche.core.money import ZERO, Money, round_money
from tranche.projects.models import Milestone, Project
from tranche.projects.selectors import ProjectDetail, access_project, project_details


def invoice_queryset(*, user: User) -> QuerySet[Invoice]:
    invoices = Invoice.objects.select_related("project")
    scope = customer_scope(user)
    if scope is None:
        return invoices
    # The number is taken when an invoice is sent and kept when it is cancelled, so it
    # tells a sent invoice from a draft whatever the status is now.
    return invoices.filter(customer_id=scope, number__isnull=False)


def access_invoice(user: User, invoice_id: int, *, project: Project | None = None) -> Invoice:
    """The invoice if this user may see it (and it belongs to `project`, when given);
    404 alike for missing, someone else's, another project's, or (for customers) one that
    was never sent."""
    invoices = invoice_queryset(user=user)
    if project is not None:
        invoices = invoices.filter(project=project)
    found = invoices.filter(pk=invoice_id).first() if valid_id(invoice_id) else None
    if found is None:
        raise invoice_not_found(invoice_id)
    return found


def access_project_invoice(user: User, project_id: int, invoice_id: int) -> Invoice:
    """`access_invoice(user, invoice_id, project=access_project(user, project_id))` in one
    query when both are there to see; the same 404s (the project's first) when not."""
    found = (
        invoice_queryset(user=user).filter(pk=invoice_id, project_id=project_id).first()
        if valid_id(invoice_id) and valid_id(project_id)
        else None
    )
    if found is None:
        return access_invoice(user, invoice_id, project=access_project(user, project_id))
    return found


def access_invoices(user: User, invoice_ids: list[int]) -> dict[int, Invoice]:
    """Those of `invoice_ids` this user may see, in one query; each id missing from the
    answer is refused as `access_invoice` refuses it (see `invoice_not_found`)."""
    wanted = [i for i in invoice_ids if valid_id(i)]
    return {i.pk: i for i in invoice_queryset(user=user).filter(pk__in=wanted)}


def invoice_not_found(invoice_id: int) -> NotFound:
    return NotFound(f"Invoice {invoice_id} does not exist.", code="invoice_not_found")


# What a customer may follow of an invoice's history: sending and money moving. Drafting,
# editing, send failures and the provider's own chatter are the business's.
CUSTOMER_EVENT_KINDS = (
    EventKind.SENT,
    EventKind.PAYMENT_RECORDED,
    EventKind.PAYMENT_ON_CANCELLED_INVOICE,
    EventKind.REFUND_RECORDED,
    EventKind.STATUS_CHANGED,
    EventKind.CANCELLED,
    EventKind.CREDITED,
)


def invoice_events(invoice: Invoice, *, user: User) -> list[InvoiceEvent]:
    events = invoice.events.select_related("actor")
    if customer_scope(user) is not None:
        events = events.filter(kind__in=CUSTOMER_EVENT_KINDS)
    return list(events)


@dataclass(frozen=True)
class ProjectSummary:
    currency: str
    contract_total: Decimal
    invoiced_amount: Decimal
    paid_amount: Decimal
    outstanding_amount: Decimal
    draft_amount: Decimal
    unbilled_amount: Decimal
    credit_owed_amount: Decimal


def project_invoices(*, user: User, project: Project) -> tuple[list[Invoice], ProjectSummary]:
    """The project's financials tab: its invoices and totals, both over what this user
    may see (for a customer, a draft is still unbilled). One invoice's overpayment is a
    credit owed, never netted against another invoice's amount due."""
    visible = list(invoice_queryset(user=user).filter(project=project).order_by("-id"))
    invoiced = paid = draft = outstanding = credit = billed_share = ZERO
    for invoice in visible:
        credit += invoice.credit_owed
        if invoice.status == InvoiceStatus.CANCELLED:
            continue
        # The contract is a price basis (before tax when priced exclusive): what is left
        # to bill is counted in contract shares, what was invoiced in gross.
        billed_share += invoice.contract_amount
        if invoice.status == InvoiceStatus.DRAFT:
            draft += invoice.amount
        else:
            invoiced += invoice.amount
            paid += invoice.amount_paid
            outstanding += invoice.amount_due
    summary = ProjectSummary(
        currency=project.currency,
        contract_total=project.contract_total,
        invoiced_amount=invoiced,
        paid_amount=paid,
        outstanding_amount=outstanding,
        draft_amount=draft,
        unbilled_amount=project.contract_total
        - billed_share
        + credited_contract_amount(
            Invoice.objects.filter(pk__in=[i.pk for i in visible]).exclude(
                status=InvoiceStatus.CANCELLED
            )
        ),
        credit_owed_amount=credit,
    )
    return visible, summary


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str
    draft_count: int
    draft_amount: Decimal
    outstanding_amount: Decimal
    overdue_amount: Decimal
    paid_amount: Decimal
    credit_owed_amount: Decimal


@dataclass(frozen=True)
class InvoicePage:
    items: list[Invoice]
    next_cursor: str | None
    totals: list[CurrencyTotals]


def _encode_cursor(invoice_id: int) -> str:
    return base64.urlsafe_b64encode(f"i:{invoice_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        invoice_id = int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Invalid("The cursor is not one this API gave out.", code="cursor_invalid") from None
    if kind != "i" or not valid_id(invoice_id):
        raise Invalid("The cursor is not one this API gave out.", code="cursor_invalid")
    return invoice_id


def invoice_page(
    *,
    user: User,
    status: str | None = None,
    project_id: int | None = None,
    customer_id: int | None = None,
    limit: int = 25,
    cursor: str | None = None,
) -> InvoicePage:
    """The global financials view: newest first, keyset-paginated on the id (stable while
    invoices are added), with per-currency totals over the whole filter."""
    wanted = InvoiceFilter(status=status, project_id=project_id, customer_id=customer_id)
    page = filter_invoices(invoice_queryset(user=user), wanted).order_by("-id")
    if cursor:
        page = page.filter(id__lt=_decode_cursor(cursor))
    items = list(page[: limit + 1])
    next_cursor = _encode_cursor(items[limit - 1].pk) if len(items) > limit else None
    return InvoicePage(items[:limit], next_cursor, currency_totals(user=user, wanted=wanted))


_MONEY = DecimalField(max_digits=15, decimal_places=3)

# Invoice.credit_owed in SQL: what was paid on a cancelled invoice, or paid beyond the
# amount less its credit notes on any other. Summed row by row, so an overpaid invoice is
# never netted against another one's amount due.
CREDIT_OWED = Case(
    When(status=InvoiceStatus.CANCELLED, amount_paid__gt=0, then=F("amount_paid")),
    When(
        amount_paid__gt=F("amount") - F("amount_credited"),
        then=F("amount_paid") - F("amount") + F("amount_credited"),
    ),
    default=Value(ZERO),
    output_field=_MONEY,
)

# Invoice.amount_due in SQL (for invoices that are not cancelled): the amount less its
# credit notes and payments, never below zero.
AMOUNT_DUE = Case(
    When(
        amount__gt=F("amount_credited") + F("amount_paid"),
        then=F("amount") - F("amount_credited") - F("amount_paid"),
    ),
    default=Value(ZERO),
    output_field=_MONEY,
)


def _totals(invoices: QuerySet[Invoice]) -> list[CurrencyTotals]:
    """Per-currency totals added up from the invoices themselves, in one query."""
    groups = (
        invoices.order_by()  # no ORDER BY, or the ordering column joins the GROUP BY
        .values("currency", "status")
        .annotate(
            count=Count("id"),
            # Not named like a field: F("amount") in CREDIT_OWED must mean the column.
            billed=Sum("amount"),
            paid=Sum("amount_paid"),
            left=Sum(AMOUNT_DUE),
            credit=Sum(CREDIT_OWED),
        )
    )
    rows: list[tuple[str, str, int, Decimal, Decimal, Decimal, Decimal]] = []
    for group in groups:
        currency = group["currency"]
        # SQLite sums decimals as floats: round back to the currency at once.
        billed, paid, left, credit = (
            round_money(Decimal(value), currency)
            for value in (group["billed"], group["paid"], group["left"], group["credit"])
        )
        rows.append((currency, group["status"], group["count"], billed, paid, left, credit))
    return _fold(rows)


_THOUSANDTH = Decimal("0.001")


def _summary_rows(
    *, scope: int | None, status: str | None, customer_id: int | None
) -> QuerySet[InvoiceTotals]:
    summary = InvoiceTotals.objects.filter(count__gt=0)
    if scope is not None:
        summary = summary.filter(customer_id=scope, sent=True)  # as invoice_queryset
    if status is not None:
        summary = summary.filter(status=status)
    if customer_id is not None:
        summary = summary.filter(customer_id=customer_id if valid_id(customer_id) else 0)
    return summary


def _summary_totals(
    *, scope: int | None, status: str | None, customer_id: int | None
) -> list[CurrencyTotals]:
    """The totals read from InvoiceTotals (see its docstring), in one query over a few
    rows per customer, however many invoices there are."""
    groups = (
        _summary_rows(scope=scope, status=status, customer_id=customer_id)
        .order_by()
        .values("currency", "status")
        .annotate(
            n=Sum("count"),
            billed=Sum("amount"),
            paid=Sum("amount_paid"),
            left=Sum("amount_due"),
            credit=Sum("credit_owed"),
        )
    )
    rows: list[tuple[str, str, int, Decimal, Decimal, Decimal, Decimal]] = []
    for group in groups:
        currency = group["currency"]
        # Whole thousandths, exact on every database: back to Decimal, then the currency's
        # precision (a no-op: every invoice's figures are rounded to it).
        billed, paid, left, credit = (
            round_money(Decimal(int(value)) * _THOUSANDTH, currency)
            for value in (group["billed"], group["paid"], group["left"], group["credit"])
        )
        rows.append((currency, group["status"], int(group["n"]), billed, paid, left, credit))
    return _fold(rows)


def _fold(
    groups: Iterable[tuple[str, str, int, Decimal, Decimal, Decimal, Decimal]],
) -> list[CurrencyTotals]:
    """Per-currency totals from (currency, status, count, amount, amount paid, amount
    due, credit owed) per currency and status."""
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    counts: dict[str, int] = defaultdict(int)
    for currency, status, count, amount, paid, due, credit in groups:
        totals = sums[currency]
        totals["credit"] += credit
        if status == InvoiceStatus.DRAFT:
            counts[currency] += count
            totals["draft"] += amount
        if status in OPEN_STATUSES:
            totals["outstanding"] += due
        if status == InvoiceStatus.OVERDUE:
            totals["overdue"] += due
        if status in SENT_STATUSES:
            totals["paid"] += paid
    return [
        CurrencyTotals(
            currency=currency,
            draft_count=counts[currency],
            draft_amount=sums[currency]["draft"],
            outstanding_amount=sums[currency]["outstanding"],
            overdue_amount=sums[currency]["overdue"],
            paid_amount=sums[currency]["paid"],
            credit_owed_amount=sums[currency]["credit"],
        )
        for currency in sorted(sums)
    ]


def invoice_for_pay_token(token: str) -> Invoice | None:
    """The sent, not cancelled invoice behind a payment link; None for anything else."""
    if not token or len(token) > 64:
        return None
    return (
        Invoice.objects.select_related("project", "milestone")
        .filter(pay_token=token, status__in=SENT_STATUSES)
        .first()
    )


def live_invoice(milestone: Milestone) -> Invoice | None:
    """The milestone's invoice that is not cancelled (at most one: a partial unique index)."""
    return milestone.invoices.exclude(status=InvoiceStatus.CANCELLED).first()


def _milestone_invoice_ids(milestones: list[Milestone], *, user: User) -> dict[int, int]:
    """Only invoices `user` may open: a customer is not told a draft exists."""
    rows = (
        invoice_queryset(user=user)
        .filter(milestone__in=milestones)
        .exclude(status=InvoiceStatus.CANCELLED)
        .values_list("milestone_id", "pk")
    )
    return {milestone_id: pk for milestone_id, pk in rows if milestone_id is not None}


@dataclass(frozen=True)
class ProjectView:
    """A project as the portal shows it: its schedule, and each milestone's invoice."""

    detail: ProjectDetail
    # milestone id -> id of its live invoice, only if the viewer may open that invoice
    invoices: dict[int, int]
    # A deposit milestone's invoice is not paid yet (see `waiting_for_deposit`).
    waiting_for_deposit: bool = False
    retainage: Retainage | None = None


def deposit_unpaid() -> QuerySet[Milestone]:
    """Deposit milestones whose invoice is not paid (not yet made, draft, sent or
    cancelled): filter by project. A project with one is waiting for its deposit."""
    paid = Invoice.objects.filter(milestone=OuterRef("pk"), status=InvoiceStatus.PAID)
    return Milestone.objects.filter(bill_on_acceptance=True).exclude(Exists(paid))


def waiting_for_deposit(project_ids: list[int]) -> set[int]:
    return set(
        deposit_unpaid().filter(project_id__in=project_ids).values_list("project_id", flat=True)
    )


def project_view(project: Project, *, user: User) -> ProjectView:
    return project_views([project], user=user)[0]


def project_views(projects: list[Project], *, user: User) -> list[ProjectView]:
    details = project_details(projects)
    invoices = _milestone_invoice_ids([m for d in details for m in d.milestones], user=user)
    waiting = waiting_for_deposit([p.pk for p in projects])
    retainage = retainage_of(projects)
    return [
        ProjectView(d, invoices, d.project.pk in waiting, retainage[d.project.pk]) for d in details
    ]


def customer_balances(customer_ids: list[int]) -> dict[int, list[Money]]:
    """What each customer owes on their sent invoices (pending, partly paid, overdue), one
    Money per currency, in one query for a whole page of customers. A customer who owes
    nothing is absent. For staff pages: the caller has checked the role."""
    rows = (
        Invoice.objects.filter(customer_id__in=customer_ids, status__in=OPEN_STATUSES)
        .order_by()
        .values("customer_id", "currency")
        .annotate(owed=Sum(AMOUNT_DUE))
    )
    balances: dict[int, list[Money]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["customer_id"], r["currency"])):
        # SQLite sums decimals as floats: round back to the currency at once.
        owed = round_money(Decimal(row["owed"]), row["currency"])
        if owed > 0:
            balances[row["customer_id"]].append(Money(owed, row["currency"]))
    return dict(balances)


# --- the filters the financials list and GET /api/invoices share ---------------------------


@dataclass(frozen=True)
class InvoiceFilter:
    """What a person narrowed the invoice list to; None (or "") means "any"."""

    status: str | None = None
    customer_id: int | None = None
    project_id: int | None = None
    search: str = ""
    issued_from: date | None = None
    issued_to: date | None = None
    due_from: date | None = None
    due_to: date | None = None


def _check_status(status: str | None) -> None:
    if status is not None and status not in InvoiceStatus.values:
        raise Invalid(
            f"Unknown status {status!r}; use one of {', '.join(InvoiceStatus.values)}.",
            code="status_invalid",
        )


def filter_invoices(invoices: QuerySet[Invoice], wanted: InvoiceFilter) -> QuerySet[Invoice]:
    """`invoices` (already scoped to the caller) narrowed to `wanted`. An id that cannot
    exist matches nothing rather than failing: the list is simply empty."""
    if wanted.status is not None:
        _check_status(wanted.status)
        invoices = invoices.filter(status=wanted.status)
    if wanted.project_id is not None:
        invoices = invoices.filter(
            project_id=wanted.project_id if valid_id(wanted.project_id) else 0
        )
    if wanted.customer_id is not None:
        invoices = invoices.filter(
            customer_id=wanted.customer_id if valid_id(wanted.customer_id) else 0
        )
    if wanted.search:
        invoices = invoices.filter(
            Q(number__icontains=wanted.search)
            | Q(customer_name__icontains=wanted.search)
            | Q(customer__name__icontains=wanted.search)
            | Q(project__name__icontains=wanted.search)
        )
    if wanted.issued_from is not None:
        invoices = invoices.filter(issue_date__gte=wanted.issued_from)
    if wanted.issued_to is not None:
        invoices = invoices.filter(issue_date__lte=wanted.issued_to)
    if wanted.due_from is not None:
        invoices = invoices.filter(due_date__gte=wanted.due_from)
    if wanted.due_to is not None:
        invoices = invoices.filter(due_date__lte=wanted.due_to)
    return invoices


def currency_totals(*, user: User, wanted: InvoiceFilter) -> list[CurrencyTotals]:
    """Per-currency totals over all the invoices `user` may see that `wanted` matches
    (not just one page), in one query.

    Narrowed to nothing but a status and/or a customer (the first page of the
    financials, every cursor page after it, a customer's own list), they are read from
    InvoiceTotals: a few rows per customer, kept exact by the database in the same
    transaction as every invoice write, so the cost does not grow with the invoices.
    With a project, a search or a date range they are added up from the matching
    invoices, as `recount` does: the summary keeps neither the project, nor the text,
    nor the dates, and such a set is what a person narrowed the list down to (a
    project's invoices are a handful, found by its index)."""
    if not _summary_answers(wanted):
        return recount(user=user, wanted=wanted)
    _check_status(wanted.status)
    return _summary_totals(
        scope=customer_scope(user), status=wanted.status, customer_id=wanted.customer_id
    )


def invoice_count(*, user: User, wanted: InvoiceFilter) -> int | None:
    """How many invoices `user` may see match `wanted`, read from InvoiceTotals when the
    filter is one it answers (as `currency_totals`); None when they must be counted. A
    page of the financials needs the number for its pagination, and a COUNT(*) of every
    invoice grows with the book."""
    if not _summary_answers(wanted):
        return None
    _check_status(wanted.status)
    rows = _summary_rows(
        scope=customer_scope(user), status=wanted.status, customer_id=wanted.customer_id
    )
    return int(rows.aggregate(n=Sum("count"))["n"] or 0)


def _summary_answers(wanted: InvoiceFilter) -> bool:
    return not (
        wanted.project_id is not None
        or wanted.search
        or any((wanted.issued_from, wanted.issued_to, wanted.due_from, wanted.due_to))
    )


def recount(*, user: User, wanted: InvoiceFilter) -> list[CurrencyTotals]:
    """`currency_totals` added up from every matching invoice: what the summary must
    always equal (the tests check it after every kind of change; a check or a repair
    can compare the two)."""
    return _totals(filter_invoices(invoice_queryset(user=user), wanted))


# --- credit notes ------------------------------------------------------------------------


def credit_note_queryset(*, user: User) -> QuerySet[CreditNote]:
    """Staff see every credit note; a customer her own customer's (each was issued on a
    sent invoice and emailed to her, so all of them are hers to see)."""
    notes = CreditNote.objects.select_related("invoice")
    scope = customer_scope(user)
    return notes if scope is None else notes.filter(customer_id=scope)


def access_credit_note(user: User, credit_note_id: int) -> CreditNote:
    """404 alike for a missing credit note and someone else's."""
    notes = credit_note_queryset(user=user)
    found = notes.filter(pk=credit_note_id).first() if valid_id(credit_note_id) else None
    if found is None:
        raise NotFound(
            f"Credit note {credit_note_id} does not exist.", code="credit_note_not_found"
        )
    return found


def invoice_credit_notes(invoice: Invoice) -> list[CreditNote]:
    """An invoice's credit notes, oldest first (the caller may see the invoice)."""
    return list(invoice.credit_notes.order_by("id"))


@dataclass(frozen=True)
class CreditNotePage:
    items: list[CreditNote]
    next_cursor: str | None


def credit_note_page(
    *,
    user: User,
    invoice_id: int | None = None,
    limit: int = 25,
    cursor: str | None = None,
) -> CreditNotePage:
    """Credit notes newest first, keyset-paginated on the id (the invoices' cursor)."""
    notes = credit_note_queryset(user=user).order_by("-id")
    if invoice_id is not None:
        notes = notes.filter(invoice_id=invoice_id if valid_id(invoice_id) else 0)
    if cursor:
        notes = notes.filter(id__lt=_decode_cursor(cursor))
    items = list(notes[: limit + 1])
    next_cursor = _encode_cursor(items[limit - 1].pk) if len(items) > limit else None
    return CreditNotePage(items[:limit], next_cursor)
