"""A quote's terms worked out without touching the database: each line's total, the
quote's total, each billable schedule item's amount (from the one `allocate()` that bills
them), and every rule the terms break.

`quote_create`/`quote_update` save only terms without problems, `quote_mark_sent` sends
only complete ones, and the quote editor's live preview shows the same numbers and the
same sentences before anything is submitted: one function, so no rule is written twice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tranche.core.errors import Invalid
from tranche.core.money import (
    HUNDRED,
    MAX_AMOUNT,
    ZERO,
    Money,
    UnknownCurrency,
    has_currency_precision,
    normalize_currency,
    round_money,
)
from tranche.core.tax import (
    Bases,
    InvoiceTax,
    PriceMode,
    TaxRate,
    basis_total,
    contract_bases,
    invoice_tax,
    percent_text,
    split_contract,
)
from tranche.sales.schedule import check_billing, check_schedule_total


@dataclass(frozen=True)
class LineInput:
    description: str
    quantity: Decimal
    unit_price: Decimal
    # The rate chosen (a TaxRate row's id); the service reads it into `tax`, the rate's
    # name and percentage, which is all the arithmetic needs. Neither: no tax.
    tax_rate_id: int | None = None
    tax: TaxRate | None = None

    @property
    def rate(self) -> TaxRate:
        return self.tax or NO_TAX


NO_TAX = TaxRate("", ZERO)


@dataclass(frozen=True)
class ScheduleInput:
    title: str
    is_billable: bool
    billing_percentage: Decimal | None
    # A deposit: billed on acceptance (only a billable item can be one).
    bill_on_acceptance: bool = False


@dataclass(frozen=True)
class Problem:
    """A broken rule: `field` names the input it belongs to ("title", "currency",
    "lines", "line-2-description", "schedule-1-billing_percentage", "schedule")."""

    field: str
    detail: str
    code: str

    def error(self) -> Invalid:
        return Invalid(self.detail, code=self.code)


@dataclass
class QuoteTerms:
    currency: str | None
    # One per line given; None where the line's numbers could not be read or priced.
    line_totals: list[Decimal | None]
    total: Decimal
    # One per schedule item given; None for non-billable or unreadable items, and for all
    # when the schedule cannot be allocated (a broken rule).
    amounts: list[Decimal | None]
    billable_percentage: Decimal
    # The share no billable item bills (when the percentages add up to less than 100).
    unscheduled: Decimal | None
    problems: list[Problem] = field(default_factory=list)
    # The total's net, tax per rate and gross (None until the lines can be priced).
    tax: InvoiceTax | None = None

    @property
    def complete(self) -> bool:
        """The billable percentages bill the whole total: what sending a quote needs."""
        return self.billable_percentage == HUNDRED

    @property
    def incomplete_problem(self) -> Problem | None:
        if self.complete:
            return None
        return Problem(
            "schedule",
            f"Billable percentages add up to {percent_text(self.billable_percentage)} %; "
            "they must add up to 100 %.",
            "schedule_not_100",
        )

    def money(self, amount: Decimal | None) -> Money | None:
        if amount is None or self.currency is None:
            return None
        return Money(amount, self.currency)

    # For pages: the amounts as Money (None where unknown) and the percentage as written.

    @property
    def total_money(self) -> Money | None:
        return self.money(self.total)

    @property
    def unscheduled_money(self) -> Money | None:
        return self.money(self.unscheduled)

    @property
    def percentage_text(self) -> str:
        return percent_text(self.billable_percentage)

    @property
    def over_100(self) -> bool:
        return self.billable_percentage > HUNDRED

    def raise_first(self) -> None:
        """Refuse terms that break a rule, with the first rule broken."""
        if self.problems:
            raise self.problems[0].error()


def _problem(field: str, exc: Invalid) -> Problem:
    return Problem(field, exc.detail, exc.code)


def quote_terms(
    *,
    title: str,
    currency: str,
    lines: Sequence[LineInput | None],
    schedule: Sequence[ScheduleInput | None],
    mode: PriceMode = PriceMode.EXCLUSIVE,
    exempt: bool = False,
) -> QuoteTerms:
    """Work out and check a quote's terms. A `None` line or item is one whose numbers the
    caller could not read (and has said so itself): it keeps its place in the numbering
    and is otherwise left out.

    The total is the price basis (net when `mode` is exclusive, gross when inclusive);
    each billable item bills its percentage of it rate by rate (`split_contract`), exactly
    as its milestone will; `tax` is the whole quote's net, tax per rate and gross."""
    problems: list[Problem] = []
    if not title.strip():
        problems.append(Problem("title", "A quote needs a title.", "title_required"))
    code: str | None
    try:
        code = normalize_currency(currency)
    except UnknownCurrency as exc:
        code = None
        problems.append(Problem("currency", str(exc), "currency_invalid"))
    if not lines:
        problems.append(Problem("lines", "A quote needs at least one line.", "lines_required"))

    line_totals: list[Decimal | None] = []
    for number, line in enumerate(lines, start=1):
        if line is None:
            line_totals.append(None)
            continue
        if not line.description.strip():
            problems.append(
                Problem(
                    f"line-{number}-description",
                    f"Line {number} needs a description.",
                    "description_required",
                )
            )
        if line.quantity <= 0:
            problems.append(
                Problem(
                    f"line-{number}-quantity",
                    f"Line {number}: the quantity must be greater than 0.",
                    "quantity_invalid",
                )
            )
        if line.unit_price < 0:
            problems.append(
                Problem(
                    f"line-{number}-unit_price",
                    f"Line {number}: the unit price cannot be negative.",
                    "amount_invalid",
                )
            )
        if code is None:
            line_totals.append(None)
            continue
        if not has_currency_precision(line.unit_price, code):
            problems.append(
                Problem(
                    f"line-{number}-unit_price",
                    f"Line {number}: unit price {line.unit_price} has more decimal places than "
                    f"{code} allows.",
                    "amount_precision",
                )
            )
        line_totals.append(round_money(line.quantity * line.unit_price, code))
    total = sum((t for t in line_totals if t is not None), ZERO)
    if total > MAX_AMOUNT:
        problems.append(
            Problem("lines", f"The quote total may not exceed {MAX_AMOUNT}.", "total_too_large")
        )

    billable: list[tuple[int, Decimal]] = []
    for index, item in enumerate(schedule):
        if item is None:
            continue
        number = index + 1
        if not item.title.strip():
            problems.append(
                Problem(
                    f"schedule-{number}-title",
                    "Every schedule item needs a title.",
                    "title_required",
                )
            )
        try:
            check_billing(
                title=item.title,
                is_billable=item.is_billable,
                billing_percentage=item.billing_percentage,
            )
        except Invalid as exc:
            problems.append(_problem(f"schedule-{number}-billing_percentage", exc))
            continue
        if item.bill_on_acceptance and not item.is_billable:
            problems.append(
                Problem(
                    f"schedule-{number}-bill_on_acceptance",
                    f"Item '{item.title.strip()}' is not billable, so it cannot be billed on "
                    "acceptance (a deposit must bill a percentage).",
                    "deposit_not_billable",
                )
            )
        if item.is_billable and item.billing_percentage is not None:
            billable.append((index, item.billing_percentage))
    percentage = sum((p for _, p in billable), ZERO)
    try:
        check_schedule_total(p for _, p in billable)
    except Invalid as exc:
        problems.append(_problem("schedule", exc))

    amounts: list[Decimal | None] = [None] * len(schedule)
    unscheduled: Decimal | None = None
    tax: InvoiceTax | None = None
    allocatable = code is not None and percentage <= HUNDRED and total <= MAX_AMOUNT
    if allocatable and code is not None:
        bases = _bases(lines, line_totals, code)
        tax = invoice_tax(bases, currency=code, mode=mode, exempt=exempt)
        shares = split_contract(bases, [p for _, p in billable], currency=code)
        parts = [basis_total(share, currency=code).amount for share in shares]
        for (index, _), part in zip(billable, parts, strict=False):
            amounts[index] = part
        unscheduled = parts[-1] if len(parts) > len(billable) else ZERO
        for index, item in enumerate(schedule):
            if item is not None and item.bill_on_acceptance and amounts[index] == ZERO:
                # Accepting the quote bills a deposit at once, and an invoice must bill
                # something: such a quote could be sent but never accepted.
                problems.append(
                    Problem(
                        f"schedule-{index + 1}-billing_percentage",
                        f"Deposit '{item.title.strip()}' would bill nothing: "
                        f"{percent_text(item.billing_percentage or ZERO)} % of "
                        f"{Money(total, code)} rounds to {Money.zero(code)}. Raise its "
                        "percentage or the total, or bill it later.",
                        "deposit_amount_zero",
                    )
                )
    return QuoteTerms(
        currency=code,
        line_totals=line_totals,
        total=total,
        amounts=amounts,
        billable_percentage=percentage,
        unscheduled=unscheduled,
        problems=problems,
        tax=tax,
    )


def _bases(
    lines: Sequence[LineInput | None], line_totals: Sequence[Decimal | None], currency: str
) -> Bases:
    """The priced lines' totals per rate (no rate at all: one empty basis, so a quote
    without lines still has a total to show)."""
    priced = [
        (line.rate, Money(total, currency))
        for line, total in zip(lines, line_totals, strict=True)
        if line is not None and total is not None and total >= 0
    ]
    return contract_bases(priced or [(NO_TAX, Money.zero(currency))], currency=currency)
