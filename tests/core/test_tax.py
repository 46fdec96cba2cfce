"""Tax per rate on milestone invoices: the bases split exactly, each invoice rounds its own
tax once per rate (half up, to the currency), and every invoice adds up."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tranche.core.money import (
    MAX_AMOUNT,
    CurrencyMismatch,
    Money,
    from_minor_units,
    has_currency_precision,
    precision,
    quantum,
    to_minor_units,
)
from tranche.core.tax import (
    InvoiceTax,
    PriceMode,
    TaxRate,
    bases_from_rows,
    bases_to_rows,
    contract_bases,
    invoice_tax,
    rebase,
    split_contract,
    tax_caption,
)

CURRENCIES = ("USD", "JPY", "KWD")
COMMON_RATES = ("0", "2.5", "5", "7.7", "8", "10", "19", "20", "21", "25", "27")

VAT = TaxRate("VAT 20 %", Decimal(20))
EXEMPT = TaxRate("Exempt 0 %", Decimal(0))


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def jpy(amount: int) -> Money:
    return Money(Decimal(amount), "JPY")


# --- examples that read like the specification ---------------------------------------


def test_a_30_30_40_schedule_over_vat_20_and_exempt_lines_in_usd() -> None:
    bases = contract_bases(
        [(VAT, usd("1000.00")), (EXEMPT, usd("500.01")), (VAT, usd("333.33"))],
        currency="USD",
    )
    assert bases == {VAT: usd("1333.33"), EXEMPT: usd("500.01")}

    shares = split_contract(bases, [Decimal(30), Decimal(30), Decimal(40)], currency="USD")
    assert shares == [
        {VAT: usd("400.00"), EXEMPT: usd("150.00")},
        {VAT: usd("400.00"), EXEMPT: usd("150.00")},
        {VAT: usd("533.33"), EXEMPT: usd("200.01")},
    ]

    first, _, last = (invoice_tax(s, currency="USD", mode=PriceMode.EXCLUSIVE) for s in shares)
    assert [(ln.net, ln.tax, ln.gross) for ln in first.lines] == [
        (usd("400.00"), usd("80.00"), usd("480.00")),
        (usd("150.00"), usd("0.00"), usd("150.00")),
    ]
    assert (first.net, first.tax, first.gross) == (usd("550.00"), usd("80.00"), usd("630.00"))
    # 533.33 * 20 % = 106.666, rounded half up to the cent.
    assert [(ln.net, ln.tax, ln.gross) for ln in last.lines] == [
        (usd("533.33"), usd("106.67"), usd("640.00")),
        (usd("200.01"), usd("0.00"), usd("200.01")),
    ]
    assert (last.net, last.tax, last.gross) == (usd("733.34"), usd("106.67"), usd("840.01"))


def test_tax_inclusive_yen_at_10_and_8_percent_is_taken_out_of_the_gross() -> None:
    standard = TaxRate("消費税 10 %", Decimal(10))
    reduced = TaxRate("軽減税率 8 %", Decimal(8))
    bases = {standard: jpy(100000), reduced: jpy(54000)}
    shares = split_contract(
        bases, [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")], currency="JPY"
    )
    assert shares[0] == {standard: jpy(33330), reduced: jpy(17998)}
    assert shares[2] == {standard: jpy(33340), reduced: jpy(18004)}

    first = invoice_tax(shares[0], currency="JPY", mode=PriceMode.INCLUSIVE)
    # 33330 * 10/110 = 3030 exactly; 17998 * 8/108 = 1333.18… → 1333.
    assert [(ln.gross, ln.tax, ln.net) for ln in first.lines] == [
        (jpy(33330), jpy(3030), jpy(30300)),
        (jpy(17998), jpy(1333), jpy(16665)),
    ]
    assert (first.gross, first.tax, first.net) == (jpy(51328), jpy(4363), jpy(46965))

    last = invoice_tax(shares[2], currency="JPY", mode=PriceMode.INCLUSIVE)
    # 33340 * 10/110 = 3030.90… → 3031; 18004 * 8/108 = 1333.62… → 1334.
    assert [(ln.gross, ln.tax, ln.net) for ln in last.lines] == [
        (jpy(33340), jpy(3031), jpy(30309)),
        (jpy(18004), jpy(1334), jpy(16670)),
    ]
    assert (last.gross, last.tax, last.net) == (jpy(51344), jpy(4365), jpy(46979))


def test_half_a_minor_unit_of_tax_rounds_up() -> None:
    assert invoice_tax(
        {TaxRate("GST 10 %", Decimal(10)): usd("0.05")}, currency="USD", mode=PriceMode.EXCLUSIVE
    ).tax == usd("0.01")
    kwd = invoice_tax(
        {TaxRate("VAT 5 %", Decimal(5)): Money(Decimal("0.010"), "KWD")},
        currency="KWD",
        mode=PriceMode.EXCLUSIVE,
    )
    assert kwd.tax == Money(Decimal("0.001"), "KWD")  # 0.0005 → 0.001


def test_each_invoice_rounds_its_own_tax_so_the_milestones_tax_may_differ_from_the_quotes() -> None:
    gst = TaxRate("GST 10 %", Decimal(10))
    contract = {gst: usd("0.05")}
    quote = invoice_tax(contract, currency="USD", mode=PriceMode.EXCLUSIVE)
    halves = [
        invoice_tax(share, currency="USD", mode=PriceMode.EXCLUSIVE)
        for share in split_contract(contract, [Decimal(50), Decimal(50)], currency="USD")
    ]
    assert [h.net for h in halves] == [usd("0.03"), usd("0.02")]  # the bases add up …
    assert [h.tax for h in halves] == [usd("0.00"), usd("0.00")]  # … each tax is its own …
    assert quote.tax == usd("0.01")  # … and the quote's is rounded on its own total.


@pytest.mark.parametrize("mode", list(PriceMode))
def test_an_exempt_invoice_charges_nothing_and_the_basis_is_all_net(mode: PriceMode) -> None:
    result = invoice_tax({VAT: usd("1200.00")}, currency="USD", mode=mode, exempt=True)
    (line,) = result.lines
    assert (line.rate, line.percentage) == (VAT, Decimal(0))
    assert (result.net, result.tax, result.gross) == (usd("1200.00"), usd("0"), usd("1200.00"))


def test_an_unscheduled_rest_is_a_last_share_for_every_rate() -> None:
    shares = split_contract(
        {VAT: usd("100.00"), EXEMPT: usd("0.00")}, [Decimal(30), Decimal(30)], currency="USD"
    )
    assert [s[VAT] for s in shares] == [usd("30.00"), usd("30.00"), usd("40.00")]
    assert [s[EXEMPT] for s in shares] == [usd("0.00")] * 3


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: TaxRate("bad", Decimal(-1)), ValueError, "between 0 and 100"),
        (lambda: TaxRate("bad", Decimal(101)), ValueError, "between 0 and 100"),
        (lambda: TaxRate("bad", Decimal("NaN")), ValueError, "between 0 and 100"),
        (lambda: TaxRate("bad", 20.0), TypeError, "needs a Decimal"),  # type: ignore[arg-type]
        (
            lambda: contract_bases([(VAT, usd("-1.00"))], currency="USD"),
            ValueError,
            "cannot be negative",
        ),
        (
            lambda: contract_bases([(VAT, usd("1.005"))], currency="USD"),
            ValueError,
            "more decimal places",
        ),
        (
            lambda: invoice_tax({VAT: jpy(1)}, currency="USD", mode=PriceMode.EXCLUSIVE),
            CurrencyMismatch,
            "USD with JPY",
        ),
        (
            lambda: split_contract({VAT: usd("1.00")}, [Decimal(60), Decimal(50)], currency="USD"),
            ValueError,
            "more than 100",
        ),
    ],
)
def test_nonsense_is_refused(make: object, error: type[Exception], message: str) -> None:
    assert callable(make)
    with pytest.raises(error, match=message):
        make()


# --- properties over USD, JPY and KWD ------------------------------------------------


@dataclass(frozen=True)
class Case:
    currency: str
    mode: PriceMode
    exempt: bool
    contract: dict[TaxRate, Money]
    percentages: list[Decimal]


rates = st.one_of(
    st.sampled_from(COMMON_RATES).map(Decimal),
    st.decimals(min_value=0, max_value=100, places=3),
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    currency = draw(st.sampled_from(CURRENCIES))
    max_units = to_minor_units(
        MAX_AMOUNT.quantize(quantum(currency), rounding=ROUND_DOWN), currency
    )
    percentages_of_rates = draw(st.lists(rates, min_size=1, max_size=4, unique=True))
    tax_rates = [TaxRate(f"Rate {p} %", p) for p in percentages_of_rates]

    # Lines at the currency's precision, 0 up to a contract total of MAX_AMOUNT.
    budget = max_units
    lines = []
    for _ in range(draw(st.integers(1, 8))):
        units = draw(st.integers(0, budget))
        budget -= units
        lines.append((draw(st.sampled_from(tax_rates)), Money.from_minor(units, currency)))

    # 1-10 billable percentages with two decimals, each > 0, summing to at most 100.
    left = 10_000
    hundredths: list[int] = []
    for _ in range(draw(st.integers(1, 10))):
        if left < 1:
            break
        part = draw(st.integers(1, left))
        hundredths.append(part)
        left -= part
    if draw(st.booleans()) and left:  # often the schedule covers exactly 100 %
        hundredths[-1] += left

    return Case(
        currency=currency,
        mode=draw(st.sampled_from(PriceMode)),
        exempt=draw(st.booleans()),
        contract=contract_bases(lines, currency=currency),
        percentages=[Decimal(h) / 100 for h in hundredths],
    )


def invoices(case: Case) -> list[InvoiceTax]:
    return [
        invoice_tax(share, currency=case.currency, mode=case.mode, exempt=case.exempt)
        for share in split_contract(case.contract, case.percentages, currency=case.currency)
    ]


def expected_tax(basis: Decimal, percentage: Decimal, mode: PriceMode, currency: str) -> Decimal:
    """The rounding rule again, in plain Decimal arithmetic (with room for every digit)."""
    with localcontext() as context:
        context.prec = 60
        divisor = 100 if mode is PriceMode.EXCLUSIVE else 100 + percentage
        return (basis * percentage / divisor).quantize(quantum(currency), ROUND_HALF_UP)


EXAMPLES = settings(max_examples=300, deadline=None)


@EXAMPLES
@given(cases())
def test_per_rate_the_milestones_bases_add_up_to_the_contracts_exactly(case: Case) -> None:
    shares = split_contract(case.contract, case.percentages, currency=case.currency)
    scheduled = sum(case.percentages, Decimal(0))
    assert len(shares) == len(case.percentages) + (1 if scheduled < 100 else 0)
    for rate, basis in case.contract.items():
        assert sum((s[rate] for s in shares), Money.zero(case.currency)) == basis
    # … so the invoices' nets (exclusive) or grosses (inclusive) add up to the contract's.
    billed = [i.net if case.mode is PriceMode.EXCLUSIVE else i.gross for i in invoices(case)]
    total = sum(case.contract.values(), Money.zero(case.currency))
    assert sum(billed, Money.zero(case.currency)) == total


@EXAMPLES
@given(cases())
def test_each_invoices_tax_is_its_own_basis_times_the_rate_rounded(case: Case) -> None:
    unit = Fraction(1, 10 ** precision(case.currency))
    for invoice in invoices(case):
        for line in invoice.lines:
            percentage = Decimal(0) if case.exempt else line.rate.percentage
            assert line.percentage == percentage
            if case.mode is PriceMode.EXCLUSIVE:
                assert line.tax.amount == expected_tax(
                    line.net.amount, percentage, case.mode, case.currency
                )
            else:
                assert line.tax.amount == expected_tax(
                    line.gross.amount, percentage, case.mode, case.currency
                )
                # Taken out of the gross, the tax is still within one minor unit of
                # net * rate (EN 16931's BR-CO-17 tolerance).
                exact = Fraction(line.net.amount) * Fraction(percentage) / 100
                assert abs(Fraction(line.tax.amount) - exact) <= unit


@EXAMPLES
@given(cases())
def test_every_invoice_adds_up_at_the_currencys_precision_and_nothing_is_negative(
    case: Case,
) -> None:
    for invoice in invoices(case):
        assert [line.rate for line in invoice.lines] == list(case.contract)
        for line in invoice.lines:
            assert line.net + line.tax == line.gross
        assert invoice.net == sum((ln.net for ln in invoice.lines), Money.zero(case.currency))
        assert invoice.tax == sum((ln.tax for ln in invoice.lines), Money.zero(case.currency))
        assert invoice.net + invoice.tax == invoice.gross
        figures = [invoice.net, invoice.tax, invoice.gross]
        figures += [m for ln in invoice.lines for m in (ln.net, ln.tax, ln.gross)]
        for money in figures:
            assert money.currency == case.currency
            assert money.amount >= 0
            assert has_currency_precision(money.amount, case.currency)


@EXAMPLES
@given(cases())
def test_exempt_invoices_carry_no_tax_and_their_basis_is_their_net(case: Case) -> None:
    exempt = Case(case.currency, case.mode, True, case.contract, case.percentages)
    shares = split_contract(exempt.contract, exempt.percentages, currency=exempt.currency)
    for invoice, share in zip(invoices(exempt), shares, strict=True):
        assert invoice.tax == Money.zero(case.currency)
        for line in invoice.lines:
            assert line.percentage == 0
            assert line.net == line.gross == share[line.rate]


def test_the_largest_contract_splits_without_losing_a_minor_unit() -> None:
    for currency in CURRENCIES:
        top = Money(MAX_AMOUNT.quantize(quantum(currency), rounding=ROUND_DOWN), currency)
        contract = {VAT: top, EXEMPT: Money.from_minor(1, currency)}
        shares = split_contract(contract, [Decimal("33.33")] * 3, currency=currency)
        assert sum((s[VAT] for s in shares), Money.zero(currency)) == top
        assert sum((s[EXEMPT] for s in shares), Money.zero(currency)) == Money(
            from_minor_units(1, currency), currency
        )
        result = invoice_tax(shares[0], currency=currency, mode=PriceMode.EXCLUSIVE)
        assert result.net + result.tax == result.gross


# --- rebasing an edited amount over the same rates ------------------------------------


def test_an_admin_billing_less_keeps_the_milestones_mix_of_rates() -> None:
    """A $1,500.00 share ($1,000.00 at VAT 20 %, $500.00 exempt) billed at $1,200.00
    instead: two thirds and one third of it, exactly."""
    share = {VAT: usd("1000.00"), EXEMPT: usd("500.00")}
    assert rebase(share, usd("1200.00")) == {VAT: usd("800.00"), EXEMPT: usd("400.00")}


def test_a_rebased_cent_that_cannot_split_goes_to_the_largest_remainder() -> None:
    share = {VAT: usd("1.00"), EXEMPT: usd("2.00")}
    # A third and two thirds of 0.01: the larger remainder takes the cent.
    assert rebase(share, usd("0.01")) == {VAT: usd("0.00"), EXEMPT: usd("0.01")}


def test_with_nothing_to_weigh_by_the_amount_goes_to_the_first_rate() -> None:
    share = {VAT: usd("0.00"), EXEMPT: usd("0.00")}
    assert rebase(share, usd("10.00")) == {VAT: usd("10.00"), EXEMPT: usd("0.00")}


def test_rebasing_refuses_nothing_to_spread_over_and_negative_amounts() -> None:
    with pytest.raises(ValueError, match="no rate"):
        rebase({}, usd("1.00"))
    with pytest.raises(ValueError, match="negative"):
        rebase({VAT: usd("1.00")}, usd("-1.00"))


@EXAMPLES
@given(cases(), st.integers(min_value=0, max_value=10**14))
def test_a_rebased_share_adds_up_exactly_and_keeps_each_rate_within_a_unit(
    case: Case, units: int
) -> None:
    total = Money.from_minor(units, case.currency)
    rebased = rebase(case.contract, total)
    assert list(rebased) == list(case.contract)
    assert sum(rebased.values(), Money.zero(case.currency)) == total
    whole = sum((m.amount for m in case.contract.values()), Decimal(0))
    for rate, part in rebased.items():
        assert part.amount >= 0
        assert has_currency_precision(part.amount, case.currency)
        if whole:
            exact = Fraction(total.amount) * Fraction(case.contract[rate].amount) / Fraction(whole)
            assert abs(Fraction(part.amount) - exact) < Fraction(quantum(case.currency))


@EXAMPLES
@given(cases())
def test_bases_survive_the_round_trip_through_stored_rows(case: Case) -> None:
    rows = bases_to_rows(case.contract)
    assert bases_from_rows(rows, currency=case.currency) == case.contract


@pytest.mark.parametrize(
    ("name", "rate", "charged", "caption"),
    [
        ("VAT 20 %", "20", "20", "VAT 20 %"),
        ("Services", "7.7", "7.7", "Services (7.7 %)"),
        ("", "0", "0", "No tax (0 %)"),
        ("VAT 20 %", "20.00", "0", "VAT 20 %, charged 0 %"),
    ],
)
def test_a_tax_line_names_its_rate_once_and_says_when_it_charged_another(
    name: str, rate: str, charged: str, caption: str
) -> None:
    assert tax_caption(name, Decimal(rate), Decimal(charged)) == caption
