"""Money as Decimal with a currency code.

No float ever touches an amount: JSON bodies are parsed with Decimal, amounts are stored
in DecimalFields and rounded to the currency's own precision (JPY 0, USD 2, KWD 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

HUNDRED = Decimal(100)
ZERO = Decimal(0)

MAX_AMOUNT = Decimal("99999999999.999")


class UnknownCurrency(ValueError):
    pass


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def normalize_currency(code: str) -> str:
    """Return the ISO 4217 code in upper case, or raise UnknownCurrency."""
    upper = code.strip().upper()
    if len(upper) != 3 or not upper.isalpha() or upper not in _known_currencies():
        raise UnknownCurrency(f"{code!r} is not an ISO 4217 currency code.")
    return upper


@cache
def precision(currency: str) -> int:
    """Number of decimal places of the currency's minor unit."""
    return int(get_currency_precision(normalize_currency(currency)))


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-precision(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def has_currency_precision(amount: Decimal, currency: str) -> bool:
    """True when `amount` needs no more decimal places than the currency has."""
    return amount == amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def format_amount(amount: Decimal, currency: str) -> str:
    """The API's representation: a plain string at the currency's precision ("1000.01", "1000")."""
    return f"{round_money(amount, currency):f}"


def format_for_people(amount: Decimal, currency: str, locale: str = "en_US") -> str:
    return str(format_currency(round_money(amount, currency), currency, locale=locale))


def to_minor_units(amount: Decimal, currency: str) -> int:
    return int(round_money(amount, currency).scaleb(precision(currency)))


def from_minor_units(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-precision(currency))


def allocate(total: Decimal, percentages: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Split `total` by `percentages` so that the parts sum to `total` exactly.

    Percentages must be positive and sum to at most 100. When they sum to less, the
    unscheduled rest is an implicit last part, returned after the others, so the parts
    always account for the whole total. Each part is within one minor unit of its exact
    share: every part starts at the floor of its share in minor units, and the minor units
    left over go one each to the parts with the largest remainders (earlier parts first on
    a tie), the largest remainder method.
    """
    if total < 0:
        raise ValueError("Cannot allocate a negative total.")
    if any(p <= 0 for p in percentages):
        raise ValueError("Every percentage must be greater than zero.")
    scheduled = sum(percentages, ZERO)
    if scheduled > HUNDRED:
        raise ValueError(f"Percentages sum to {scheduled}, more than 100.")
    weights = [Fraction(p) for p in percentages]
    if scheduled < HUNDRED:
        weights.append(Fraction(HUNDRED - scheduled))

    total_units = to_minor_units(total, currency)
    shares = [Fraction(total_units) * w / 100 for w in weights]
    units = [int(share) for share in shares]  # shares are >= 0, so int() is the floor
    leftover = total_units - sum(units)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - units[i]), i))
    for index in by_remainder[:leftover]:
        units[index] += 1
    return [from_minor_units(u, currency) for u in units]


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined: a bug, never a rounding matter."""


@dataclass(frozen=True, slots=True)
class Money:
    """An amount with its currency. It formats itself for people (`str`) and for the API
    (`.api`), and arithmetic or comparison across currencies raises CurrencyMismatch."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"Money needs a Decimal amount, not {type(self.amount).__name__}.")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(ZERO, currency)

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        return cls(from_minor_units(units, currency), currency)

    def _amount_of(self, other: object) -> Decimal:
        """`other`'s amount, if it is Money in this currency; a mix of currencies is a
        bug, so it raises rather than compares or adds."""
        if not isinstance(other, Money):
            raise TypeError(f"Cannot combine Money with {type(other).__name__}.")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"Cannot combine {self.currency} with {other.currency}.")
        return other.amount

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._amount_of(other), self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._amount_of(other), self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._amount_of(other)

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._amount_of(other)

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._amount_of(other)

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._amount_of(other)

    @property
    def minor_units(self) -> int:
        return to_minor_units(self.amount, self.currency)

    @property
    def api(self) -> str:
        """The API's string at the currency's precision: "1000.01", "1000", "1.500"."""
        return format_amount(self.amount, self.currency)

    def __str__(self) -> str:
        return format_for_people(self.amount, self.currency)
