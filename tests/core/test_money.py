"""allocate(): the parts always sum to the total, each within one minor unit of its share."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tranche.core.money import (
    CurrencyMismatch,
    Money,
    UnknownCurrency,
    allocate,
    format_amount,
    format_for_people,
    from_minor_units,
    has_currency_precision,
    normalize_currency,
    precision,
    to_minor_units,
)

CURRENCIES = ("USD", "JPY", "KWD")


@st.composite
def totals_and_percentages(draw: st.DrawFn) -> tuple[str, Decimal, list[Decimal]]:
    currency = draw(st.sampled_from(CURRENCIES))
    places = precision(currency)
    # 0 … 99,999,999.99 expressed in the currency's minor units.
    max_units = 9_999_999_999 if places == 2 else (99_999_999 if places == 0 else 99_999_999_999)
    total = from_minor_units(draw(st.integers(0, max_units)), currency)
    count = draw(st.integers(1, 20))
    # Percentages with two decimals, each > 0, summing to at most 100.
    budget = 10_000
    hundredths = []
    for _ in range(count):
        if budget < 1:
            break
        part = draw(st.integers(1, budget))
        hundredths.append(part)
        budget -= part
    if draw(st.booleans()) and budget:  # often the schedule covers exactly 100 %
        hundredths[-1] += budget
    return currency, total, [Decimal(h) / 100 for h in hundredths]


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(totals_and_percentages())
def test_parts_sum_exactly_to_the_total_and_stay_within_one_minor_unit(
    case: tuple[str, Decimal, list[Decimal]],
) -> None:
    currency, total, percentages = case
    parts = allocate(total, percentages, currency)

    assert sum(parts, Decimal(0)) == total
    scheduled = sum(percentages, Decimal(0))
    expected_count = len(percentages) + (1 if scheduled < 100 else 0)
    assert len(parts) == expected_count
    weights = [*percentages, *([Decimal(100) - scheduled] if scheduled < 100 else [])]
    unit = Fraction(1, 10 ** precision(currency))
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total) * Fraction(weight) / 100
        assert abs(Fraction(part) - exact) < unit
        assert part >= 0
        assert has_currency_precision(part, currency)


def test_three_thirds_of_1000_01_usd_sum_to_1000_01() -> None:
    parts = allocate(
        Decimal("1000.01"), [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")], "USD"
    )
    assert parts == [Decimal("333.30"), Decimal("333.30"), Decimal("333.41")]
    assert sum(parts) == Decimal("1000.01")


def test_jpy_is_allocated_in_whole_yen() -> None:
    parts = allocate(
        Decimal("100000"), [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")], "JPY"
    )
    assert parts == [Decimal("33330"), Decimal("33330"), Decimal("33340")]
    assert all(p == p.to_integral_value() for p in parts)


def test_kwd_keeps_three_decimals() -> None:
    parts = allocate(Decimal("10.000"), [Decimal("33.33"), Decimal("66.67")], "KWD")
    assert parts == [Decimal("3.333"), Decimal("6.667")]


def test_an_unscheduled_rest_is_an_implicit_last_part() -> None:
    assert allocate(Decimal("100.00"), [Decimal("30"), Decimal("30")], "USD") == [
        Decimal("30.00"),
        Decimal("30.00"),
        Decimal("40.00"),
    ]


@pytest.mark.parametrize(
    ("percentages", "message"),
    [
        ([Decimal("60"), Decimal("50")], "more than 100"),
        ([Decimal("0")], "greater than zero"),
        ([Decimal("-5")], "greater than zero"),
    ],
)
def test_invalid_percentages_are_refused(percentages: list[Decimal], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        allocate(Decimal("10.00"), percentages, "USD")


def test_a_negative_total_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        allocate(Decimal("-1.00"), [Decimal("100")], "USD")


def test_formatting_and_minor_units_follow_the_currency() -> None:
    assert format_amount(Decimal("1000.01"), "USD") == "1000.01"
    assert format_amount(Decimal("1000"), "JPY") == "1000"
    assert format_amount(Decimal("1.5"), "KWD") == "1.500"
    assert format_for_people(Decimal("1234.5"), "USD") == "$1,234.50"
    assert format_for_people(Decimal("1234"), "JPY") == "¥1,234"
    assert to_minor_units(Decimal("10.01"), "USD") == 1001
    assert to_minor_units(Decimal("1000"), "JPY") == 1000
    assert to_minor_units(Decimal("1.234"), "KWD") == 1234


def test_currency_codes_are_checked_and_normalised() -> None:
    assert normalize_currency("usd") == "USD"
    for bad in ("US", "DOLLARS", "XYZ", "12$"):
        with pytest.raises(UnknownCurrency):
            normalize_currency(bad)


def test_money_formats_itself_for_people_and_for_the_api() -> None:
    kwd = Money(Decimal("1.5"), "KWD")
    assert (kwd.api, str(kwd)) == ("1.500", "KWD1.500")
    assert (Money(Decimal("1000.005"), "USD").api, str(Money(Decimal(1000), "JPY"))) == (
        "1000.01",
        "¥1,000",
    )
    assert Money.from_minor(360005, "USD") == Money(Decimal("3600.05"), "USD")
    assert Money(Decimal("3600.05"), "USD").minor_units == 360005


def test_money_adds_and_compares_within_one_currency() -> None:
    total = Money(Decimal("3600.05"), "USD")
    paid = Money(Decimal("1000.00"), "USD")
    assert total - paid == Money(Decimal("2600.05"), "USD")
    assert paid + paid < total
    assert total - total == Money(Decimal(0), "USD")


@pytest.mark.parametrize(
    "combine",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a >= b,
    ],
)
def test_money_refuses_to_mix_currencies(combine: Callable[[Money, Money], object]) -> None:
    with pytest.raises(CurrencyMismatch, match="Cannot combine USD with EUR"):
        combine(Money(Decimal(1), "USD"), Money(Decimal(1), "EUR"))


def test_money_refuses_to_combine_with_a_bare_number() -> None:
    with pytest.raises(TypeError, match="Cannot combine Money with int"):
        Money(Decimal(1), "USD") + 5  # type: ignore[operator]


def test_money_refuses_a_float() -> None:
    with pytest.raises(TypeError, match="Decimal amount, not float"):
        Money(0.1, "USD")  # type: ignore[arg-type]
