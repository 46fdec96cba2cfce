"""A change order's arithmetic, pure (no database): the schedule it proposes and, per
milestone, its share of the contract before and after.

The rule (docs/change-orders.md): per tax rate, what the milestones with a live invoice
bill stays as it is; what remains of the new contract's basis at that rate
(new basis - invoiced) is allocated over the milestones not yet invoiced in proportion
to their percentages (renormalised: the percentages are weights among themselves, not
shares of the whole contract), by the largest remainder in minor units, so that per rate
Σ invoiced + Σ not yet invoiced = the new basis exactly. A rate whose invoiced amount is
above its new basis leaves a shortfall: only a credit note can close it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from math import floor

from tranche.core.errors import Invalid
from tranche.core.money import ZERO, Money, from_minor_units, to_minor_units
from tranche.core.tax import Bases, TaxRate, basis_total
from tranche.sales.schedule import check_billing


@dataclass(frozen=True)
class MilestoneState:
    """A milestone as it stands: `share` its current share of the contract per rate,
    `invoiced` what its live invoice bills per rate (None: no live invoice), `pending`
    whether its work is still to come (only a pending milestone without an invoice can be
    changed or removed)."""

    id: int
    title: str
    is_billable: bool
    percentage: Decimal | None
    pending: bool
    share: Bases
    invoiced: Bases | None = None

    @property
    def changeable(self) -> bool:
        return self.pending and self.invoiced is None


@dataclass(frozen=True)
class ScheduleChange:
    """One row of a change order's schedule: a milestone (`milestone_id`) with its new
    title, billability and percentage, or removed; or a new milestone (no id)."""

    milestone_id: int | None
    title: str
    is_billable: bool
    percentage: Decimal | None
    remove: bool = False


@dataclass(frozen=True)
class PreviewRow:
    milestone_id: int | None  # None: a milestone the change order adds
    title: str
    is_billable: bool
    percentage: Decimal | None
    invoiced: bool
    removed: bool
    before: Bases
    after: Bases

    def before_total(self, currency: str) -> Money:
        return basis_total(self.before, currency=currency)

    def after_total(self, currency: str) -> Money:
        return basis_total(self.after, currency=currency)


@dataclass(frozen=True)
class Problem:
    code: str
    detail: str


@dataclass(frozen=True)
class Preview:
    currency: str
    before: Bases
    after: Bases
    rows: list[PreviewRow]
    # Per rate, how much more has been invoiced than the new basis allows.
    shortfall: Bases = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def before_total(self) -> Money:
        return basis_total(self.before, currency=self.currency)

    @property
    def after_total(self) -> Money:
        return basis_total(self.after, currency=self.currency)

    @property
    def shortfall_total(self) -> Money:
        return basis_total(self.shortfall, currency=self.currency)

    @property
    def rates(self) -> list[TaxRate]:
        """Every rate named before or after, in order of first appearance."""
        return list(dict.fromkeys([*self.before, *self.after]))


def split_by_weights(amount: Money, weights: Sequence[Decimal]) -> list[Money]:
    """`amount` split in proportion to `weights` (all > 0): each part starts at the floor
    of its exact share in minor units, the units left over go to the largest remainders
    (earlier parts first on a tie). The parts add up to `amount` exactly."""
    currency = amount.currency
    total_units = to_minor_units(amount.amount, currency)
    whole = sum((Fraction(w) for w in weights), Fraction(0))
    shares = [Fraction(total_units) * Fraction(w) / whole for w in weights]
    units = [floor(s) for s in shares]
    leftover = total_units - sum(units)
    for index in sorted(range(len(shares)), key=lambda i: (-(shares[i] - units[i]), i))[:leftover]:
        units[index] += 1
    return [Money(from_minor_units(u, currency), currency) for u in units]


def _add(into: dict[TaxRate, Money], bases: Mapping[TaxRate, Money], currency: str) -> None:
    for rate, amount in bases.items():
        into[rate] = into.get(rate, Money.zero(currency)) + amount


@dataclass
class _Planned:
    milestone_id: int | None
    title: str
    is_billable: bool
    percentage: Decimal | None
    invoiced: Bases | None
    before: Bases


def _apply_changes(
    milestones: Sequence[MilestoneState], changes: Sequence[ScheduleChange]
) -> tuple[list[_Planned], list[MilestoneState]]:
    """The schedule after the changes (existing milestones in their order, new ones at the
    end) and the milestones removed. Refuses a change no change order may make."""
    by_id = {m.id: m for m in milestones}
    changed: dict[int, ScheduleChange] = {}
    added: list[ScheduleChange] = []
    for number, row in enumerate(changes, 1):
        title = row.title.strip()
        if row.milestone_id is None:
            if row.remove:
                continue  # a new row struck out again: nothing to add
            added.append(row)
        else:
            milestone = by_id.get(row.milestone_id)
            if milestone is None:
                raise Invalid(
                    f"Schedule row {number}: milestone {row.milestone_id} is not in this project.",
                    code="milestone_not_found",
                )
            if not milestone.changeable:
                raise Invalid(
                    f"Schedule row {number}: '{milestone.title}' is completed or invoiced; a "
                    "row order changes only milestones not yet invoiced.",
                    code="milestone_invoiced",
                )
            if row.milestone_id in changed:
                raise Invalid(
                    f"Schedule row {number}: '{milestone.title}' is changed twice.",
                    code="milestone_changed_twice",
                )
            changed[row.milestone_id] = row
        if not row.remove:
            if not title:
                raise Invalid(f"Schedule row {number} needs a title.", code="title_required")
            check_billing(
                title=title,
                is_billable=row.is_billable,
                billing_percentage=row.percentage,
            )
    planned: list[_Planned] = []
    removed: list[MilestoneState] = []
    for m in milestones:
        edit = changed.get(m.id)
        if edit is None:
            planned.append(
                _Planned(m.id, m.title, m.is_billable, m.percentage, m.invoiced, m.share)
            )
        elif edit.remove:
            removed.append(m)
        else:
            percentage = edit.percentage if edit.is_billable else None
            planned.append(
                _Planned(m.id, edit.title.strip(), edit.is_billable, percentage, None, m.share)
            )
    for edit in added:
        percentage = edit.percentage if edit.is_billable else None
        planned.append(_Planned(None, edit.title.strip(), edit.is_billable, percentage, None, {}))
    return planned, removed


def amend(
    *,
    currency: str,
    before: Bases,
    after: Bases,
    milestones: Sequence[MilestoneState],
    changes: Sequence[ScheduleChange] = (),
    invoiced_elsewhere: Bases | None = None,
) -> Preview:
    """The schedule a change order makes: the contract's bases `before` and `after`, the
    project's milestones as they stand, the change order's schedule rows, and what live
    invoices without a milestone bill (`invoiced_elsewhere`). Raises Invalid for a row no
    change order may hold; a shortfall or an unbillable rest is a `problem` of the preview
    (shown, then refused by the approval)."""
    planned, removed = _apply_changes(milestones, changes)
    invoiced: dict[TaxRate, Money] = {}
    _add(invoiced, invoiced_elsewhere or {}, currency)
    for p in planned:
        if p.invoiced is not None:
            _add(invoiced, p.invoiced, currency)
    rates = list(dict.fromkeys([*after, *invoiced]))
    zero = Money.zero(currency)
    remaining = {rate: after.get(rate, zero) - invoiced.get(rate, zero) for rate in rates}
    shortfall = {rate: zero - left for rate, left in remaining.items() if left.amount < ZERO}
    open_rows = [p for p in planned if p.invoiced is None and p.is_billable and p.percentage]
    shares: dict[int, Bases] = {index: {} for index in range(len(open_rows))}
    problems: list[Problem] = []
    for rate in after:
        left = remaining[rate] if remaining[rate].amount > ZERO else zero
        if not open_rows:
            continue
        parts = split_by_weights(left, [p.percentage or ZERO for p in open_rows])
        for index, part in enumerate(parts):
            shares[index][rate] = part
    if shortfall:
        over = basis_total(shortfall, currency=currency)
        problems.append(
            Problem(
                "credit_note_required",
                f"{over} more has already been invoiced than the amended contract allows; "
                "a credit note for the difference must be issued with this approval.",
            )
        )
    rest = basis_total({r: v for r, v in remaining.items() if v.amount > ZERO}, currency=currency)
    if not open_rows and rest.amount > ZERO:
        problems.append(
            Problem(
                "schedule_empty",
                f"{rest} of the amended contract is not yet invoiced, but no billable "
                "milestone is left to bill it: add or keep a billable milestone.",
            )
        )
    share_of = {id(p): shares[index] for index, p in enumerate(open_rows)}
    rows = [
        PreviewRow(
            milestone_id=p.milestone_id,
            title=p.title,
            is_billable=p.is_billable,
            percentage=p.percentage,
            invoiced=p.invoiced is not None,
            removed=False,
            before=p.before,
            after=p.invoiced if p.invoiced is not None else share_of.get(id(p), {}),
        )
        for p in planned
    ]
    rows += [
        PreviewRow(
            milestone_id=m.id,
            title=m.title,
            is_billable=m.is_billable,
            percentage=m.percentage,
            invoiced=False,
            removed=True,
            before=m.share,
            after={},
        )
        for m in removed
    ]
    return Preview(
        currency=currency,
        before=dict(before),
        after=dict(after),
        rows=rows,
        shortfall=shortfall,
        problems=problems,
    )
