"""Tax arithmetic for milestone billing: pure functions on Money, no database.

A contract's price basis is kept **per tax rate**: the net sums of its lines when the
business quotes tax-exclusive, the gross sums when it quotes tax-inclusive. Two steps:

1. `split_contract` cuts each rate's basis into milestone shares with the one
   `allocate()`, rate by rate, so that per rate the milestones' bases add up to the
   contract's basis exactly (an unscheduled rest is its own last share, as in allocate).
2. `invoice_tax` works out one invoice (a milestone's per-rate bases): per rate its net,
   tax and gross, and the totals.

Rounding rule: tax is computed once per rate on the invoice's whole basis at that rate
(never per line, never carried between invoices) and rounded to the currency's minor
unit half up (ROUND_HALF_UP: 0.005 USD → 0.01, 0.5 JPY → 1, 0.0005 KWD → 0.001).
Exclusive: net = basis, tax = round(net * rate / 100), gross = net + tax.
Inclusive: gross = basis, tax = round(gross * rate / (100 + rate)), net = gross - tax.
The products are taken exactly (fractions), so only that one rounding ever happens, and
the invoice totals are plain sums of the per-rate figures, so net + tax = gross holds per
rate and in total without a second rounding. Because every invoice rounds its own tax,
the taxes of all milestones may differ from the tax of the whole quote by a few minor
units; the bases never do.

Exempt (reverse charge or a tax-exempt customer) charges 0 % on every rate: the basis is
the net and nothing is added. With inclusive prices this means the quoted price is what
the customer pays, all of it net: no tax is taken out of it, so the amounts due, and the
milestones' shares of the contract, stay the same whoever the customer is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from math import floor

from tranche.core.money import (
    HUNDRED,
    ZERO,
    CurrencyMismatch,
    Money,
    allocate,
    from_minor_units,
    has_currency_precision,
    normalize_currency,
    precision,
    to_minor_units,
)


class PriceMode(StrEnum):
    """How the business quotes: the price basis is the net (exclusive) or the gross."""

    EXCLUSIVE = "exclusive"
    INCLUSIVE = "inclusive"


@dataclass(frozen=True, slots=True)
class TaxRate:
    """A named rate ("VAT 20 %", "Exempt 0 %"). Two rates with the same percentage but
    different names stay apart: an invoice shows each tax category on its own."""

    name: str
    percentage: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.percentage, Decimal):
            raise TypeError(f"A tax rate needs a Decimal, not {type(self.percentage).__name__}.")
        if not self.percentage.is_finite() or not ZERO <= self.percentage <= HUNDRED:
            raise ValueError(f"A tax rate is between 0 and 100 %, not {self.percentage}.")


@dataclass(frozen=True, slots=True)
class TaxLine:
    """One rate on one invoice. `percentage` is what was charged: the rate's own, or 0
    when the invoice is exempt (then `rate` still says which contract rate it bills)."""

    rate: TaxRate
    percentage: Decimal
    net: Money
    tax: Money
    gross: Money

    @property
    def caption(self) -> str:
        """ "VAT 20 %", "VAT 20 %, charged 0 %" … (see tax_caption)."""
        return tax_caption(self.rate.name, self.rate.percentage, self.percentage)


@dataclass(frozen=True, slots=True)
class InvoiceTax:
    """An invoice's tax breakdown: one TaxLine per rate, in the contract's rate order."""

    currency: str
    mode: PriceMode
    exempt: bool
    lines: tuple[TaxLine, ...]

    @property
    def net(self) -> Money:
        return sum((line.net for line in self.lines), Money.zero(self.currency))

    @property
    def tax(self) -> Money:
        return sum((line.tax for line in self.lines), Money.zero(self.currency))

    @property
    def gross(self) -> Money:
        return sum((line.gross for line in self.lines), Money.zero(self.currency))


Bases = dict[TaxRate, Money]


def _check_basis(amount: Money, currency: str) -> None:
    if amount.currency != currency:
        raise CurrencyMismatch(f"Cannot combine {currency} with {amount.currency}.")
    if amount.amount < 0:
        raise ValueError(f"A price basis cannot be negative: {amount.api}.")
    if not has_currency_precision(amount.amount, currency):
        raise ValueError(f"{amount.amount} has more decimal places than {currency} allows.")


def contract_bases(lines: Iterable[tuple[TaxRate, Money]], *, currency: str) -> Bases:
    """Sum a contract's line totals per rate, rates in the order they first appear."""
    currency = normalize_currency(currency)
    bases: Bases = {}
    for rate, amount in lines:
        _check_basis(amount, currency)
        bases[rate] = bases.get(rate, Money.zero(currency)) + amount
    return bases


def split_contract(
    bases: Mapping[TaxRate, Money], percentages: Sequence[Decimal], *, currency: str
) -> list[Bases]:
    """Each milestone's bases per rate, one dict per percentage (plus the unscheduled rest
    when they sum to less than 100). Every share names every rate, zero or not, and per
    rate the shares add up to the contract's basis exactly."""
    currency = normalize_currency(currency)
    for amount in bases.values():
        _check_basis(amount, currency)
    scheduled = sum(percentages, ZERO)
    count = len(percentages) + (1 if scheduled < HUNDRED else 0)
    shares: list[Bases] = [{} for _ in range(count)]
    for rate, amount in bases.items():
        parts = allocate(amount.amount, percentages, currency)
        for share, part in zip(shares, parts, strict=True):
            share[rate] = Money(part, currency)
    return shares


def _round_half_up(value: Fraction, currency: str) -> Decimal:
    """`value` (never negative here) rounded half up to the currency's minor unit."""
    units = floor(value * 10 ** precision(currency) + Fraction(1, 2))
    return from_minor_units(units, currency)


def tax_line(rate: TaxRate, basis: Money, *, mode: PriceMode, exempt: bool = False) -> TaxLine:
    """Net, tax and gross of one rate's basis on one invoice (see the rounding rule)."""
    currency = basis.currency
    _check_basis(basis, currency)
    percentage = ZERO if exempt else rate.percentage
    share = Fraction(percentage)
    if mode is PriceMode.EXCLUSIVE:
        net = basis
        tax = Money(_round_half_up(Fraction(net.amount) * share / 100, currency), currency)
        gross = net + tax
    else:
        gross = basis
        tax = Money(
            _round_half_up(Fraction(gross.amount) * share / (100 + share), currency), currency
        )
        net = gross - tax
    return TaxLine(rate=rate, percentage=percentage, net=net, tax=tax, gross=gross)


def invoice_tax(
    bases: Mapping[TaxRate, Money],
    *,
    currency: str,
    mode: PriceMode,
    exempt: bool = False,
) -> InvoiceTax:
    """The tax breakdown of one invoice whose price basis per rate is `bases`."""
    currency = normalize_currency(currency)
    for amount in bases.values():
        _check_basis(amount, currency)
    lines = tuple(
        tax_line(rate, amount, mode=mode, exempt=exempt) for rate, amount in bases.items()
    )
    return InvoiceTax(currency=currency, mode=mode, exempt=exempt, lines=lines)


def rebase(bases: Mapping[TaxRate, Money], total: Money) -> Bases:
    """`total` spread over the same rates in proportion to `bases` (an admin who bills a
    milestone for less than its share keeps its mix of rates). The parts add up to `total`
    exactly: each starts at the floor of its share in minor units and the units left over
    go to the largest remainders, earlier rates first on a tie. With no basis to weigh by,
    all of it goes to the first rate."""
    currency = total.currency
    _check_basis(total, currency)
    if not bases:
        raise ValueError("There is no rate to put the amount on.")
    for amount in bases.values():
        _check_basis(amount, currency)
    rates = list(bases)
    total_units = to_minor_units(total.amount, currency)
    weights = [to_minor_units(bases[rate].amount, currency) for rate in rates]
    whole = sum(weights)
    if whole == 0:
        weights = [1] + [0] * (len(rates) - 1)
        whole = 1
    shares = [Fraction(total_units * weight, whole) for weight in weights]
    units = [floor(share) for share in shares]
    leftover = total_units - sum(units)
    by_remainder = sorted(range(len(rates)), key=lambda i: (-(shares[i] - units[i]), i))
    for index in by_remainder[:leftover]:
        units[index] += 1
    return {
        rate: Money(from_minor_units(u, currency), currency)
        for rate, u in zip(rates, units, strict=True)
    }


def bases_from_rows(rows: Iterable[Mapping[str, str]], *, currency: str) -> Bases:
    """Bases stored as [{"name", "percentage", "amount"}] (a project's contract)."""
    return contract_bases(
        (
            (
                TaxRate(row["name"], Decimal(row["percentage"])),
                Money(Decimal(row["amount"]), currency),
            )
            for row in rows
        ),
        currency=currency,
    )


def bases_to_rows(bases: Mapping[TaxRate, Money]) -> list[dict[str, str]]:
    return [
        {"name": rate.name, "percentage": str(rate.percentage), "amount": str(amount.amount)}
        for rate, amount in bases.items()
    ]


def basis_total(bases: Mapping[TaxRate, Money], *, currency: str) -> Money:
    return sum(bases.values(), Money.zero(currency))


def percent_text(value: Decimal) -> str:
    """30 → "30", 33.30 → "33.3", 33.33 → "33.33": how a person writes a percentage."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def tax_caption(name: str, rate: Decimal, charged: Decimal) -> str:
    """How documents name a tax line: "VAT 20 %" (the name says its rate), "Services
    (7.7 %)" (it does not), "No tax (0 %)" (no rate), and what was charged when that is
    not the rate ("VAT 20 %, charged 0 %": reverse charge or exempt)."""
    label = name or "No tax"
    percent = f"{percent_text(rate)} %"
    text = label if name and percent in name else f"{label} ({percent})"
    if charged != rate:
        text += f", charged {percent_text(charged)} %"
    return text
