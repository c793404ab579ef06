"""Exact money: construction, arithmetic, formatting, and the invariants billing relies on —
allocation, proration, tax and credit never create or lose a minor unit."""

from __future__ import annotations

import decimal
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otomat.billing.money import (
    CURRENCIES,
    CreditApplication,
    CurrencyMismatchError,
    Money,
    TaxBreakdown,
    allocate,
    apply_credit,
    apply_tax,
    exponent,
    prorated_credit,
)

NBSP = "\xa0"
WARSAW = ZoneInfo("Europe/Warsaw")
JAKARTA = ZoneInfo("Asia/Jakarta")

amounts = st.integers(min_value=-(10**15), max_value=10**15)
non_negative = st.integers(min_value=0, max_value=10**15)


# Every invariant test runs once per currency, so each currency is exercised on its own.
each_currency = pytest.mark.parametrize("cur", sorted(CURRENCIES))


# -- construction ----------------------------------------------------------------------------------


def test_it_uses_whole_rupiah_and_cents():
    assert exponent("IDR") == 0
    assert [exponent(c) for c in ("PLN", "USD", "EUR")] == [2, 2, 2]
    assert Money.of("500000", "IDR") == Money(500_000, "IDR")
    assert Money.of("12.50", "USD") == Money(1250, "USD")
    assert Money.of(Decimal("0.01"), "EUR") == Money(1, "EUR")
    assert Money.of(7, "PLN") == Money(700, "PLN")
    assert Money.of("-3.5", "EUR") == Money(-350, "EUR")
    assert Money.of("12.500", "USD") == Money(1250, "USD")  # trailing zeros are not precision


def test_it_keeps_huge_amounts_exact():
    assert Money.of("123456789012345678901234567890.12", "USD").amount_minor == (
        12345678901234567890123456789012
    )
    assert Money.of("1e35", "IDR").amount_minor == 10**35
    with pytest.raises(ValueError, match="too large"):
        Money.of("1e36", "USD")
    with pytest.raises(ValueError, match="too large"):
        Money.of("1e999999999", "USD")
    assert Money.of("0e999999999", "USD") == Money.zero("USD")
    assert Money.of("1e-999999", "USD", rounding=decimal.ROUND_DOWN) == Money.zero("USD")


def test_it_rejects_floats():
    with pytest.raises(TypeError, match=r"not float 0\.1"):
        Money.of(0.1, "USD")
    with pytest.raises(TypeError, match="int number of minor units"):
        Money(10.0, "USD")
    with pytest.raises(TypeError, match="not bool"):
        Money(True, "USD")
    with pytest.raises(TypeError, match="not bool"):
        Money.of(True, "USD")


def test_it_rejects_unknown_currencies():
    with pytest.raises(ValueError, match="unknown currency 'GBP'; known: EUR, IDR, PLN, USD"):
        Money.of("1", "GBP")
    with pytest.raises(ValueError, match="unknown currency 'usd'"):
        Money(1, "usd")
    with pytest.raises(ValueError, match="unknown currency"):
        Money.zero("XXX")


def test_it_rejects_extra_decimals_unless_told_how_to_round():
    with pytest.raises(ValueError, match=r"500000.5 IDR has more decimals than IDR allows \(0\)"):
        Money.of("500000.5", "IDR")
    with pytest.raises(ValueError, match="more decimals than USD allows"):
        Money.of("0.005", "USD")
    assert Money.of("500000.5", "IDR", rounding=decimal.ROUND_HALF_EVEN) == Money(500_000, "IDR")
    assert Money.of("500001.5", "IDR", rounding=decimal.ROUND_HALF_EVEN) == Money(500_002, "IDR")
    assert Money.of("0.005", "USD", rounding=decimal.ROUND_HALF_UP) == Money(1, "USD")
    assert Money.of("-0.005", "USD", rounding=decimal.ROUND_HALF_UP) == Money(-1, "USD")
    with pytest.raises(ValueError, match="unknown rounding mode"):
        Money.of("0.005", "USD", rounding="nearest")


def test_it_rejects_garbage():
    with pytest.raises(ValueError, match="not a decimal number"):
        Money.of("12,50", "PLN")
    with pytest.raises(ValueError, match="must be finite"):
        Money.of("NaN", "USD")
    with pytest.raises(ValueError, match="must be finite"):
        Money.of(Decimal("Infinity"), "USD")
    with pytest.raises(TypeError, match="Decimal, str or int"):
        Money.of([1], "USD")


def test_it_shows_decimals():
    assert Money(1250, "USD").decimal == Decimal("12.50")
    assert str(Money(1250, "USD").decimal) == "12.50"
    assert str(Money(-5, "EUR").decimal) == "-0.05"
    assert str(Money(500_000, "IDR").decimal) == "500000"
    assert str(Money.zero("PLN").decimal) == "0.00"
    assert str(Money(1250, "USD")) == "12.50 USD"
    assert Money.zero("IDR").is_zero


def test_it_is_immutable_and_hashable():
    m = Money(100, "USD")
    with pytest.raises(AttributeError):
        m.amount_minor = 5
    assert {m, Money(100, "USD")} == {m}


# -- arithmetic ------------------------------------------------------------------------------------


def test_it_adds_subtracts_negates_and_multiplies_by_int():
    a, b = Money.of("10.25", "PLN"), Money.of("0.75", "PLN")
    assert a + b == Money.of("11", "PLN")
    assert a - b == Money.of("9.50", "PLN")
    assert -a == Money(-1025, "PLN")
    assert abs(-a) == a
    assert a * 3 == 3 * a == Money(3075, "PLN")
    assert b < a and a > b and a >= a and b <= a
    assert max(a, b) == a


def test_it_refuses_to_mix_currencies():
    usd, eur = Money(100, "USD"), Money(100, "EUR")
    with pytest.raises(CurrencyMismatchError, match=r"cannot add 1.00 USD and 1.00 EUR"):
        usd + eur
    with pytest.raises(CurrencyMismatchError, match="cannot subtract"):
        usd - eur
    with pytest.raises(CurrencyMismatchError, match="cannot compare"):
        assert usd < eur
    assert usd != eur  # equality across currencies is simply False
    assert issubclass(CurrencyMismatchError, ValueError)


def test_it_multiplies_by_int_only():
    m = Money(100, "USD")
    with pytest.raises(TypeError, match="only be multiplied by an int"):
        m * 1.5
    with pytest.raises(TypeError, match="only be multiplied by an int"):
        m * Decimal("1.5")
    with pytest.raises(TypeError):
        m * True
    with pytest.raises(TypeError):
        m * m
    with pytest.raises(TypeError):
        m + 1
    with pytest.raises(TypeError, match="cannot compare Money with int"):
        assert m < 1


# -- formatting (what Babel 2.x actually produces) -------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "locale", "expected"),
    [
        (Money(500_000, "IDR"), "id", "Rp500.000"),
        (Money(500_000, "IDR"), "en", "IDR500,000"),
        (Money(500_000, "IDR"), "pl", f"500{NBSP}000{NBSP}IDR"),
        (Money(-1500, "IDR"), "id", "-Rp1.500"),
        (Money(123450, "PLN"), "pl", f"1{NBSP}234,50{NBSP}zł"),
        (Money(123450, "PLN"), "en", "PLN1,234.50"),
        (Money(123450, "PLN"), "id", "PLN1.234,50"),
        (Money(1250, "USD"), "en", "$12.50"),
        (Money(1250, "USD"), "id", "US$12,50"),
        (Money(1250, "USD"), "pl", f"12,50{NBSP}USD"),
        (Money(-350, "EUR"), "en", "-€3.50"),
        (Money(-350, "EUR"), "pl", f"-3,50{NBSP}€"),
        (Money(5, "EUR"), "id", "€0,05"),
    ],
)
def test_it_formats_per_locale(amount, locale, expected):
    assert amount.format(locale) == expected


def test_it_accepts_django_language_codes():
    assert Money(1250, "USD").format("en-us") == "$12.50"
    assert Money(1250, "USD").format("en_US") == "$12.50"


# -- allocation ------------------------------------------------------------------------------------


def test_it_allocates_leftover_units_by_largest_remainder():
    assert allocate(Money(100, "USD"), [1, 1, 1]) == [
        Money(34, "USD"),
        Money(33, "USD"),
        Money(33, "USD"),
    ]
    assert allocate(Money(10, "IDR"), [Decimal("0.3"), Decimal("0.7")]) == [
        Money(3, "IDR"),
        Money(7, "IDR"),
    ]
    # 5 * 1/6 = 0.83, 5 * 2/6 = 1.67, 5 * 3/6 = 2.5 → floors 0, 1, 2; two units go to .83 and .67
    assert [m.amount_minor for m in allocate(Money(5, "EUR"), [1, 2, 3])] == [1, 2, 2]
    assert allocate(Money(-100, "USD"), [1, 1, 1]) == [
        Money(-34, "USD"),
        Money(-33, "USD"),
        Money(-33, "USD"),
    ]
    assert allocate(Money(7, "PLN"), [0, 1]) == [Money(0, "PLN"), Money(7, "PLN")]


def test_it_refuses_bad_weights():
    total = Money(100, "USD")
    with pytest.raises(ValueError, match=r"weight #1 is negative \(-1\)"):
        allocate(total, [2, -1])
    with pytest.raises(ValueError, match="weights sum to zero"):
        allocate(total, [0, 0])
    with pytest.raises(ValueError, match="at least one weight"):
        allocate(total, [])
    with pytest.raises(TypeError, match="weight #0 must be exact"):
        allocate(total, [0.5, 0.5])
    with pytest.raises(TypeError, match="total must be Money"):
        allocate(100, [1])


weights = st.lists(
    st.one_of(
        st.integers(min_value=0, max_value=10**6),
        st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
    ),
    min_size=1,
    max_size=20,
).filter(lambda ws: sum(ws) > 0)


@each_currency
@given(minor=amounts, ws=weights)
def test_allocation_never_creates_or_loses_a_unit(cur, minor, ws):
    total = Money(minor, cur)
    parts = allocate(total, ws)
    assert len(parts) == len(ws)
    assert sum(p.amount_minor for p in parts) == total.amount_minor
    assert {p.currency for p in parts} == {total.currency}
    # Each part is within one unit of its exact share, and zero weights get nothing.
    weight_sum = sum(Decimal(w) for w in ws)
    for part, w in zip(parts, ws, strict=True):
        share = abs(total.amount_minor) * Decimal(w) / weight_sum
        assert abs(abs(part.amount_minor) - share) < 1
        if w == 0:
            assert part.amount_minor == 0
    assert allocate(-total, ws) == [-p for p in parts]


# -- proration -------------------------------------------------------------------------------------


START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)  # 31 days


def test_it_credits_the_unused_part():
    price = Money.of("31", "USD")
    assert prorated_credit(price, START, END, START + timedelta(days=10)) == Money.of("21", "USD")
    assert prorated_credit(price, START, END, START) == price
    assert prorated_credit(price, START, END, END) == Money.zero("USD")
    # IDR rounds to whole rupiah: 100 000 × 20/31 = 64 516.13 → 64 516
    idr = Money(100_000, "IDR")
    assert prorated_credit(idr, START, END, START + timedelta(days=11)) == Money(64_516, "IDR")


def test_it_rounds_proration_half_even():
    period_end = START + timedelta(seconds=4)
    # 1 unit × 2/4 = 0.5 → 0 (even); 3 units × 2/4 = 1.5 → 2 (even)
    half = START + timedelta(seconds=2)
    assert prorated_credit(Money(1, "EUR"), START, period_end, half) == Money(0, "EUR")
    assert prorated_credit(Money(3, "EUR"), START, period_end, half) == Money(2, "EUR")


def test_it_clamps_changes_outside_the_period():
    price = Money(1000, "PLN")
    assert prorated_credit(price, START, END, START - timedelta(days=3)) == price
    assert prorated_credit(price, START, END, END + timedelta(days=3)) == Money(0, "PLN")


def test_it_measures_periods_in_real_time_across_dst():
    # Europe/Warsaw: 2026-10-25 has 25 hours. Same-tzinfo subtraction would say 24.
    start = datetime(2026, 10, 25, tzinfo=WARSAW)
    end = datetime(2026, 10, 26, tzinfo=WARSAW)
    price = Money(2500, "PLN")  # 100 grosze per real hour
    change = datetime(2026, 10, 25, 12, tzinfo=WARSAW)  # 13 real hours after midnight
    assert prorated_credit(price, start, end, change) == Money(1200, "PLN")
    # Mixed zones describe the same instants.
    assert prorated_credit(price, start, end, change.astimezone(JAKARTA)) == Money(1200, "PLN")


def test_it_counts_the_repeated_hour_at_the_end_of_summer_time():
    # 02:00 happens twice in Warsaw on 2026-10-25; fold=1 is the second time, one real hour later.
    # Subtracting the two as given (same tzinfo) would yield zero and refuse the period.
    first = datetime(2026, 10, 25, 2, tzinfo=WARSAW)
    second = datetime(2026, 10, 25, 2, fold=1, tzinfo=WARSAW)
    half = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert prorated_credit(Money(100, "EUR"), first, second, half) == Money(50, "EUR")


def test_it_refuses_naive_datetimes_and_bad_periods():
    price = Money(1000, "USD")
    naive = datetime(2026, 3, 10)
    with pytest.raises(ValueError, match="change_at is a naive datetime"):
        prorated_credit(price, START, END, naive)
    with pytest.raises(ValueError, match="period_start is a naive datetime"):
        prorated_credit(price, datetime(2026, 3, 1), END, START)
    with pytest.raises(ValueError, match="must be after period_start"):
        prorated_credit(price, END, START, START)
    with pytest.raises(ValueError, match="must be after period_start"):
        prorated_credit(price, START, START, START)
    with pytest.raises(ValueError, match="price must not be negative"):
        prorated_credit(Money(-1, "USD"), START, END, START)
    with pytest.raises(TypeError, match="must be a datetime"):
        prorated_credit(price, START, END, START.date())


instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, WARSAW, JAKARTA]),
)


def in_utc(moment):
    return moment.astimezone(UTC)


def real_period(a, b):
    """Order two instants by real time. Sorting them as given would be the very bug the period
    warning describes: datetimes sharing a tzinfo compare by wall clock, and `fold` is ignored."""
    start, end = sorted([a, b], key=in_utc)
    if in_utc(start) == in_utc(end):
        end = in_utc(start) + timedelta(microseconds=1)
    return start, end


@each_currency
@given(minor=non_negative, a=instants, b=instants, change=instants)
def test_proration_never_creates_or_loses_a_unit(cur, minor, a, b, change):
    price = Money(minor, cur)
    start, end = real_period(a, b)
    credit = prorated_credit(price, start, end, change)
    used = price - credit
    assert credit.currency == price.currency
    assert credit + used == price
    assert Money.zero(price.currency) <= credit <= price
    assert used.amount_minor >= 0


@each_currency
@given(minor=non_negative, a=instants, b=instants, c1=instants, c2=instants)
def test_proration_credits_less_the_later_the_change(cur, minor, a, b, c1, c2):
    price = Money(minor, cur)
    start, end = real_period(a, b)
    early, late = sorted([c1, c2], key=in_utc)
    assert prorated_credit(price, start, end, early) >= prorated_credit(price, start, end, late)


# -- tax -------------------------------------------------------------------------------------------


def test_it_adds_polish_vat_on_top():
    assert apply_tax(Money.of("100", "PLN"), Decimal("23"), inclusive=False) == TaxBreakdown(
        net=Money.of("100", "PLN"), tax=Money.of("23", "PLN"), gross=Money.of("123", "PLN")
    )
    # 0.10 × 23 % = 0.023 → 0.02; 0.50 × 23 % = 0.115 → 0.12 (half-up)
    assert apply_tax(Money(10, "PLN"), 23, inclusive=False).tax == Money(2, "PLN")
    assert apply_tax(Money(50, "PLN"), 23, inclusive=False).tax == Money(12, "PLN")


def test_it_extracts_polish_vat_from_a_gross_price():
    tb = apply_tax(Money.of("123", "PLN"), "23", inclusive=True)
    assert (tb.net, tb.tax, tb.gross) == (
        Money.of("100", "PLN"),
        Money.of("23", "PLN"),
        Money.of("123", "PLN"),
    )
    # 99.99 gross: tax = 99.99 × 23/123 = 18.697… → 18.70, net 81.29
    tb = apply_tax(Money.of("99.99", "PLN"), 23, inclusive=True)
    assert (tb.net, tb.tax) == (Money.of("81.29", "PLN"), Money.of("18.70", "PLN"))


def test_it_handles_indonesian_ppn():
    # PPN 11 % included in Rp111.000 → Rp11.000 tax
    tb = apply_tax(Money(111_000, "IDR"), 11, inclusive=True)
    assert (tb.net, tb.tax) == (Money(100_000, "IDR"), Money(11_000, "IDR"))
    # PPN 12 % on top of Rp50.000 → Rp6.000; on Rp12.345 → 1 481.4 → Rp1.481
    assert apply_tax(Money(50_000, "IDR"), 12, inclusive=False).gross == Money(56_000, "IDR")
    assert apply_tax(Money(12_345, "IDR"), 12, inclusive=False).tax == Money(1_481, "IDR")
    # Rp 1 250 × 12 % = 150; Rp 1 254 × 12 % = 150.48 → 150; Rp 1 255 × 12 % = 150.6 → 151
    assert apply_tax(Money(1_254, "IDR"), 12, inclusive=False).tax == Money(150, "IDR")
    assert apply_tax(Money(1_255, "IDR"), 12, inclusive=False).tax == Money(151, "IDR")


def test_it_rounds_tax_half_up_and_symmetrically():
    # 0.50 EUR × 1 % = 0.005 → 0.01 (half-up), and a credit note mirrors it
    assert apply_tax(Money(50, "EUR"), 1, inclusive=False).tax == Money(1, "EUR")
    assert apply_tax(Money(-50, "EUR"), 1, inclusive=False).tax == Money(-1, "EUR")
    assert apply_tax(Money(1000, "EUR"), 0, inclusive=True).tax == Money(0, "EUR")


def test_it_refuses_bad_tax_input():
    with pytest.raises(TypeError, match="rate_percent must be exact"):
        apply_tax(Money(100, "PLN"), 23.0, inclusive=False)
    with pytest.raises(ValueError, match="rate_percent must not be negative"):
        apply_tax(Money(100, "PLN"), -1, inclusive=False)
    with pytest.raises(TypeError, match="inclusive must be True or False"):
        apply_tax(Money(100, "PLN"), 23, inclusive=None)
    with pytest.raises(TypeError):
        apply_tax(Money(100, "PLN"), 23)  # inclusive is required, keyword-only
    with pytest.raises(ValueError, match="inconsistent tax breakdown"):
        TaxBreakdown(net=Money(100, "PLN"), tax=Money(23, "PLN"), gross=Money(124, "PLN"))


rates = st.one_of(
    st.sampled_from([0, 5, 8, 11, 12, 23]),
    st.decimals(min_value=0, max_value=100, places=2, allow_nan=False),
)


@each_currency
@given(minor=amounts, rate=rates, inclusive=st.booleans())
def test_tax_never_creates_or_loses_a_unit(cur, minor, rate, inclusive):
    amount = Money(minor, cur)
    tb = apply_tax(amount, rate, inclusive=inclusive)
    assert tb.net + tb.tax == tb.gross
    assert (tb.gross if inclusive else tb.net) == amount
    # The tax is the exact tax rounded to the nearest minor unit.
    exact = Decimal(amount.amount_minor) * Decimal(rate)
    exact /= Decimal(100) + (Decimal(rate) if inclusive else 0)
    assert abs(tb.tax.amount_minor - exact) <= Decimal("0.5")
    # Credit notes mirror invoices exactly.
    assert apply_tax(-amount, rate, inclusive=inclusive).tax == -tb.tax


# -- credit balance --------------------------------------------------------------------------------


def test_it_applies_credit():
    assert apply_credit(Money(500, "USD"), Money(300, "USD")) == CreditApplication(
        applied=Money(300, "USD"), new_balance=Money(200, "USD"), still_due=Money(0, "USD")
    )
    applied, new_balance, still_due = apply_credit(Money(10_000, "IDR"), Money(25_000, "IDR"))
    assert (applied, new_balance, still_due) == (
        Money(10_000, "IDR"),
        Money(0, "IDR"),
        Money(15_000, "IDR"),
    )
    assert apply_credit(Money(0, "EUR"), Money(0, "EUR")).applied == Money(0, "EUR")


def test_it_refuses_bad_credit_input():
    with pytest.raises(CurrencyMismatchError, match="balance is in USD but the amount due is in"):
        apply_credit(Money(100, "USD"), Money(100, "EUR"))
    with pytest.raises(ValueError, match="balance must not be negative"):
        apply_credit(Money(-1, "USD"), Money(100, "USD"))
    with pytest.raises(ValueError, match="due must not be negative"):
        apply_credit(Money(1, "USD"), Money(-100, "USD"))
    with pytest.raises(TypeError, match="must be Money"):
        apply_credit(100, Money(100, "USD"))


@each_currency
@given(balance=non_negative, due=non_negative)
def test_credit_never_creates_or_loses_a_unit(cur, balance, due):
    b, d = Money(balance, cur), Money(due, cur)
    applied, new_balance, still_due = apply_credit(b, d)
    assert applied + new_balance == b
    assert applied + still_due == d
    zero = Money.zero(cur)
    assert applied >= zero and new_balance >= zero and still_due >= zero
    assert new_balance.is_zero or still_due.is_zero  # credit is used before anything stays due


# -- arithmetic properties -------------------------------------------------------------------------


@each_currency
@given(a=amounts, b=amounts, n=st.integers(min_value=-1000, max_value=1000))
def test_arithmetic_is_exact(cur, a, b, n):
    x, y = Money(a, cur), Money(b, cur)
    assert (x + y) - y == x
    assert x + (-x) == Money.zero(cur)
    assert x * n == Money(a * n, cur)
    assert Money.of(x.decimal, cur) == x
    assert Money.of(str(x.decimal), cur) == x
