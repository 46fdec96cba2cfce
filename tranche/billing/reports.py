"""The financial reports the portal shows: the global invoice list as a person filters,
sorts and exports it, the staff dashboard, and a customer's own home summary.

Every read is scoped through `selectors.invoice_queryset` and costs a fixed handful of
queries whatever the number of invoices: totals are aggregated in the database, lists
are sliced, the CSV export streams with `.iterator()`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import TruncMonth
from django.utils import timezone

from tranche.accounts.access import customer_scope
from tranche.accounts.models import Customer, User
from tranche.billing.models import (
    OPEN_STATUSES,
    Invoice,
    InvoiceStatus,
    Payment,
)
from tranche.billing.selectors import (
    AMOUNT_DUE,
    CurrencyTotals,
    InvoiceFilter,
    currency_totals,
    filter_invoices,
    invoice_count,
    invoice_queryset,
)
from tranche.core.db import valid_id
from tranche.core.money import ZERO, Money, format_amount, round_money
from tranche.projects.models import Project

# --- the invoice list: filters and sorting from a query string -----------------------------

# value -> (what the sort select says, the ORDER BY). The id breaks ties so that paging
# over equal dates or amounts never shows a row twice or skips one.
SORTS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "-issue_date": ("Issue date, newest first", (F("issue_date").desc(), F("id").desc())),
    "issue_date": ("Issue date, oldest first", (F("issue_date").asc(), F("id").asc())),
    "due_date": ("Due date, earliest first", (F("due_date").asc(), F("id").asc())),
    "-due_date": ("Due date, latest first", (F("due_date").desc(), F("id").desc())),
    "-amount": ("Amount, largest first", (F("amount").desc(), F("id").desc())),
    "amount": ("Amount, smallest first", (F("amount").asc(), F("id").asc())),
    # Drafts have no number yet: they come last either way.
    "-number": ("Number, highest first", (F("number").desc(nulls_last=True), F("id").desc())),
    "number": ("Number, lowest first", (F("number").asc(nulls_last=True), F("id").asc())),
}
DEFAULT_SORT = "-issue_date"

DATE_FIELDS = {
    "issued_from": "“from” issue date",
    "issued_to": "“to” issue date",
    "due_from": "“from” due date",
    "due_to": "“to” due date",
}


@dataclass(frozen=True)
class InvoiceQuery:
    """A filtered, sorted view of the invoice list, as read from a query string, with a
    sentence per field that could not be read (then nothing is listed)."""

    filter: InvoiceFilter
    sort: str = DEFAULT_SORT
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def is_filtered(self) -> bool:
        return self.filter != InvoiceFilter()


def _id_param(
    params: Mapping[str, str], name: str, what: str, errors: dict[str, str]
) -> int | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not valid_id(int(raw)):
        errors[name] = f"The {what} filter must be one of the listed {what}s."
        return None
    return int(raw)


def _date_param(params: Mapping[str, str], name: str, errors: dict[str, str]) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[name] = (
            f"The {DATE_FIELDS[name]} must be a date written like 2026-11-28 (year-month-day)."
        )
        return None


def invoice_query(params: Mapping[str, str], *, user: User) -> InvoiceQuery:
    """Read the list's filters from GET parameters: `q`, `status`, `customer`, `project`,
    `issued_from`/`issued_to`, `due_from`/`due_to` (ISO dates) and `sort`. Never raises:
    what cannot be read is reported per field."""
    errors: dict[str, str] = {}
    status = (params.get("status") or "").strip() or None
    allowed = statuses_for(user)
    if status is not None and status not in dict(allowed):
        errors["status"] = (
            f"Unknown status {status!r}; use one of {', '.join(v for v, _ in allowed)}."
        )
        status = None
    customer_id = _id_param(params, "customer", "customer", errors)
    if customer_scope(user) is not None:
        customer_id = None  # a customer's list is her own already
    project_id = _id_param(params, "project", "project", errors)
    dates = {name: _date_param(params, name, errors) for name in DATE_FIELDS}
    for start, end, what in (
        ("issued_from", "issued_to", "issue date"),
        ("due_from", "due_to", "due date"),
    ):
        first, last = dates[start], dates[end]
        if first is not None and last is not None and last < first:
            errors[end] = f"The {what} range ends before it starts: pick a later “to” date."
    sort = (params.get("sort") or "").strip() or DEFAULT_SORT
    if sort not in SORTS:
        errors["sort"] = "Sort by one of the listed orders."
        sort = DEFAULT_SORT
    wanted = InvoiceFilter(
        status=status,
        customer_id=customer_id,
        project_id=project_id,
        search=(params.get("q") or "").strip()[:200],
        issued_from=dates["issued_from"],
        issued_to=dates["issued_to"],
        due_from=dates["due_from"],
        due_to=dates["due_to"],
    )
    return InvoiceQuery(wanted, sort, errors)


def statuses_for(user: User) -> list[tuple[str, str]]:
    """The statuses a person can filter on: a customer is never shown a draft."""
    if user.is_staff_member:
        return list(InvoiceStatus.choices)
    return [(v, label) for v, label in InvoiceStatus.choices if v != InvoiceStatus.DRAFT]


def invoice_list(*, user: User, query: InvoiceQuery) -> QuerySet[Invoice]:
    """The invoices of the query, sorted, with what each row shows joined in (page it)."""
    rows = filter_invoices(invoice_queryset(user=user), query.filter)
    return rows.select_related("project", "customer", "milestone").order_by(*SORTS[query.sort][1])


def invoice_list_count(*, user: User, query: InvoiceQuery) -> int | None:
    """How many invoices the query matches, when known without counting them (see
    selectors.invoice_count); None: let the paginator count."""
    return invoice_count(user=user, wanted=query.filter)


def invoice_list_totals(*, user: User, query: InvoiceQuery) -> list[CurrencyTotals]:
    """Per currency totals over everything the query matches (not just the page)."""
    return currency_totals(user=user, wanted=query.filter)


@dataclass(frozen=True)
class FilterChoices:
    customers: list[tuple[int, str]]
    projects: list[tuple[int, str]]


def filter_choices(*, user: User, query: InvoiceQuery) -> FilterChoices:
    """The customers (staff only) and projects a person can narrow the list to. Projects
    are offered for one customer at a time (a customer: her own), so the form stays small
    however many projects the business has; two queries at most."""
    scope = customer_scope(user)
    customers: list[tuple[int, str]] = []
    if scope is None:
        customers = list(Customer.objects.order_by("name", "id").values_list("id", "name"))
    owner = scope if scope is not None else query.filter.customer_id
    projects: list[tuple[int, str]] = []
    if owner is not None:
        projects = list(
            Project.objects.filter(customer_id=owner)
            .order_by("name", "id")
            .values_list("id", "name")
        )
    return FilterChoices(customers, projects)


# --- CSV export -------------------------------------------------------------------------

CSV_HEADER = [
    "number",
    "status",
    "customer",
    "project",
    "milestone",
    "description",
    "currency",
    "amount",
    "amount_paid",
    "amount_credited",
    "amount_due",
    "issue_date",
    "due_date",
]

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV
# injection"): a customer named `=HYPERLINK(...)` must arrive as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def invoice_csv_rows(*, user: User, query: InvoiceQuery) -> Iterator[list[str]]:
    """The header, then one row per invoice of the query in its order: money as plain
    decimals at the currency's precision beside a currency column, dates ISO. Rows are
    read in chunks, so memory stays flat however long the list is."""
    yield CSV_HEADER
    for invoice in invoice_list(user=user, query=query).iterator(chunk_size=500):
        currency = invoice.currency
        row = [
            invoice.number or "",
            invoice.status,
            invoice.customer_name or invoice.customer.name,
            invoice.project.name,
            invoice.milestone.title if invoice.milestone else "",
            invoice.description,
            currency,
            format_amount(invoice.amount, currency),
            format_amount(invoice.amount_paid, currency),
            format_amount(invoice.amount_credited, currency),
            format_amount(invoice.amount_due, currency),
            invoice.issue_date.isoformat(),
            invoice.due_date.isoformat(),
        ]
        yield [csv_safe(cell) for cell in row]


# --- sending several drafts: what the confirmation says -----------------------------------


@dataclass(frozen=True)
class SendPreview:
    drafts: list[Invoice]
    totals: list[Money]  # one per currency
    skipped: int  # selected ids that are not (or no longer) drafts this person can send


def send_preview(*, user: User, invoice_ids: list[int]) -> SendPreview:
    """The drafts among the selected ids and their total per currency, for the
    confirmation before sending them. One query."""
    wanted = list(dict.fromkeys(i for i in invoice_ids if valid_id(i)))[:100]
    drafts = list(
        invoice_queryset(user=user)
        .filter(pk__in=wanted, status=InvoiceStatus.DRAFT)
        .select_related("project", "customer")
        .order_by("id")
    )
    sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for draft in drafts:
        sums[draft.currency] += draft.amount
    return SendPreview(
        drafts,
        [Money(amount, currency) for currency, amount in sorted(sums.items())],
        len(invoice_ids) - len(drafts),
    )


# --- the staff dashboard ---------------------------------------------------------------

AGING_BUCKETS = (
    ("1 to 30 days", 1, 30),
    ("31 to 60 days", 31, 60),
    ("61 to 90 days", 61, 90),
    ("Over 90 days", 91, None),
)

_MONEY = DecimalField(max_digits=15, decimal_places=3)
_DUE = AMOUNT_DUE  # never below zero, credit notes taken off


def _sum_when(condition: Q, value: Any = _DUE) -> Sum:
    return Sum(Case(When(condition, then=value), default=Value(ZERO), output_field=_MONEY))


def _money(value: Any, currency: str) -> Money:
    # SQLite sums decimals as floats: back to the currency's precision at once.
    return Money(round_money(Decimal(str(value or 0)), currency), currency)


@dataclass(frozen=True)
class AgingBucket:
    label: str
    amount: Money


@dataclass(frozen=True)
class CurrencyPosition:
    currency: str
    outstanding: Money
    overdue: Money
    aging: list[AgingBucket]
    draft_count: int
    draft_amount: Money
    paid_this_month: Money


@dataclass(frozen=True)
class MonthBar:
    month: date
    invoiced: Money
    paid: Money


@dataclass(frozen=True)
class UrgentItem:
    invoice: Invoice
    kind: str  # "draft" (waiting to be sent) or "overdue"
    days: int  # days waiting since drafted, or days past due


@dataclass(frozen=True)
class Dashboard:
    today: date
    positions: list[CurrencyPosition]
    chart: dict[str, list[MonthBar]]  # currency -> the last 12 months, oldest first
    urgent: list[UrgentItem]

    @property
    def currencies(self) -> list[str]:
        return sorted({p.currency for p in self.positions} | set(self.chart))


def _months_back(today: date, count: int) -> list[date]:
    months: list[date] = []
    year, month = today.year, today.month
    for _ in range(count):
        months.append(date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def _as_date(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def staff_dashboard(*, now: datetime) -> Dashboard:
    """The business's position per currency, its last 12 months, and the five things to
    do first. Five queries whatever the data size."""
    today = timezone.localdate(now)
    open_ = Q(status__in=OPEN_STATUSES)
    bucket_sums = {}
    for n, (_label, first, last) in enumerate(AGING_BUCKETS):
        past_due = Q(due_date__lte=today - timedelta(days=first))
        if last is not None:
            past_due &= Q(due_date__gte=today - timedelta(days=last))
        bucket_sums[f"aging{n}"] = _sum_when(open_ & past_due)
    groups = (
        Invoice.objects.filter(status__in=(*OPEN_STATUSES, InvoiceStatus.DRAFT))
        .order_by()
        .values("currency")
        .annotate(
            outstanding=_sum_when(open_),
            drafts=Count("id", filter=Q(status=InvoiceStatus.DRAFT)),
            drafted=_sum_when(Q(status=InvoiceStatus.DRAFT), F("amount")),
            **bucket_sums,
        )
    )

    months = _months_back(today, 12)
    invoiced = (
        Invoice.objects.filter(number__isnull=False, issue_date__gte=months[0])
        .exclude(status=InvoiceStatus.CANCELLED)
        .annotate(month=TruncMonth("issue_date"))
        .order_by()
        .values("currency", "month")
        .annotate(month_total=Sum("amount"))
    )
    received = (
        Payment.objects.filter(received_on__gte=months[0])
        .annotate(month=TruncMonth("received_on"))
        .order_by()
        .values("currency", "month")
        .annotate(month_total=Sum("amount"))
    )
    per_month: dict[str, dict[date, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for kind, rows in (("invoiced", invoiced), ("paid", received)):
        for row in rows:
            per_month[row["currency"]][_as_date(row["month"])][kind] = row["month_total"]
    chart = {
        currency: [
            MonthBar(
                month,
                _money(by_month.get(month, {}).get("invoiced"), currency),
                _money(by_month.get(month, {}).get("paid"), currency),
            )
            for month in months
        ]
        for currency, by_month in sorted(per_month.items())
    }

    positions = []
    currencies: dict[str, dict[str, Any]] = {g["currency"]: dict(g) for g in groups}
    for currency in sorted(set(currencies) | set(chart)):
        group: dict[str, Any] = currencies.get(currency, {})
        aging = [
            AgingBucket(label, _money(group.get(f"aging{n}"), currency))
            for n, (label, _first, _last) in enumerate(AGING_BUCKETS)
        ]
        overdue = sum((b.amount for b in aging), Money.zero(currency))
        bars = chart.get(currency)
        positions.append(
            CurrencyPosition(
                currency=currency,
                outstanding=_money(group.get("outstanding"), currency),
                overdue=overdue,
                aging=aging,
                draft_count=int(group.get("drafts") or 0),
                draft_amount=_money(group.get("drafted"), currency),
                paid_this_month=bars[-1].paid if bars else Money.zero(currency),
            )
        )
    return Dashboard(today, positions, chart, _urgent(today, now))


def _urgent(today: date, now: datetime, limit: int = 5) -> list[UrgentItem]:
    """Drafts waiting longest to be sent and invoices most overdue, most days first (an
    overdue invoice before a draft on the same day count). Two queries."""
    rows = Invoice.objects.select_related("project", "customer")
    overdue = rows.filter(status__in=OPEN_STATUSES, due_date__lt=today).order_by("due_date", "id")
    drafts = rows.filter(status=InvoiceStatus.DRAFT).order_by("created_at", "id")
    items = [UrgentItem(i, "overdue", (today - i.due_date).days) for i in overdue[:limit]]
    items += [
        UrgentItem(i, "draft", (today - timezone.localdate(i.created_at)).days)
        for i in drafts[:limit]
    ]
    items.sort(key=lambda item: (-item.days, item.kind != "overdue", item.invoice.pk))
    return items[:limit]


# --- a customer's home --------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerHome:
    today: date
    balances: list[Money]  # what she owes, per currency
    overdue_count: int
    overdue: list[Invoice]  # the most overdue first, at most OVERDUE_SHOWN
    next_payment: Invoice | None  # the earliest due invoice that is not overdue yet
    projects: list[Project]  # the newest PROJECTS_SHOWN
    more_projects: bool


OVERDUE_SHOWN = 5
PROJECTS_SHOWN = 5


def customer_home(*, user: User, now: datetime) -> CustomerHome:
    """What a customer user owes, what is late and what comes next, over her own
    customer's sent invoices only. Four queries whatever the data size."""
    today = timezone.localdate(now)
    scope = customer_scope(user)
    assert scope is not None, "the customer home is a customer's"
    open_invoices = invoice_queryset(user=user).filter(status__in=OPEN_STATUSES)
    late = Q(due_date__lt=today)
    groups = (
        open_invoices.order_by()
        .values("currency")
        .annotate(balance=Sum(_DUE), late=Count("id", filter=late))
        .order_by("currency")
    )
    balances = []
    overdue_count = 0
    for group in groups:
        balances.append(_money(group["balance"], group["currency"]))
        overdue_count += group["late"]
    overdue = list(open_invoices.filter(late).order_by("due_date", "id")[:OVERDUE_SHOWN])
    next_payment = open_invoices.exclude(late).order_by("due_date", "id").first()
    shown = list(
        Project.objects.filter(customer_id=scope).order_by("-created_at", "-id")[
            : PROJECTS_SHOWN + 1
        ]
    )
    return CustomerHome(
        today=today,
        balances=[b for b in balances if b.amount > 0],
        overdue_count=overdue_count,
        overdue=overdue,
        next_payment=next_payment,
        projects=shown[:PROJECTS_SHOWN],
        more_projects=len(shown) > PROJECTS_SHOWN,
    )
