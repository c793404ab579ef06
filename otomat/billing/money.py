"""Exact money: integer minor units per currency, no floats anywhere.

Every amount is a `Money(amount_minor, currency)`, where `amount_minor` is an `int` counted in the
currency's billing minor unit (cents for USD/EUR, grosze for PLN, whole rupiah for IDR). The helpers
below split, prorate, tax and credit amounts so that the parts always add up to the whole exactly:
no function here creates or loses a minor unit, and the property tests in `tests/test_money.py`
check that for every currency.

Errors: floats and other non-exact inputs raise `TypeError`; unknown currencies, too many decimals,
naive datetimes and out-of-range arguments raise `ValueError`; mixing currencies raises
`CurrencyMismatchError` (a `ValueError`).
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import functools
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from babel import Locale

__all__ = [
    "CURRENCIES",
    "CreditApplication",
    "CurrencyMismatchError",
    "Money",
    "TaxBreakdown",
    "allocate",
    "apply_credit",
    "apply_tax",
    "exponent",
    "percentage",
    "prorated_credit",
]

# Billing exponent per ISO 4217 code: amount_minor == amount * 10**exponent.
# IDR is 0, not ISO 4217's 2: rupiah prices are quoted, invoiced and paid in whole rupiah (sen
# have not circulated for decades; CLDR, which Babel ships, gives IDR 0 cash digits; Midtrans
# takes `gross_amount` as an integer). Storing whole rupiah means an IDR amount can never carry a
# fraction that a gateway would refuse or silently truncate. Converting to a gateway that wants
# ISO minor units is then an explicit `* 100` at that adapter's edge.
# To add a currency, add its code and exponent here; nothing else needs to change.
CURRENCIES: dict[str, int] = {
    "IDR": 0,
    "PLN": 2,
    "USD": 2,
    "EUR": 2,
}

# Bound on Money.of() input (10**36 major units, far beyond any price): a string such as "1e999999"
# would otherwise make int() build a million-digit number or overflow the decimal context.
_MAX_MAGNITUDE_DIGITS = 36

_ROUNDING_MODES = frozenset(
    {
        decimal.ROUND_05UP,
        decimal.ROUND_CEILING,
        decimal.ROUND_DOWN,
        decimal.ROUND_FLOOR,
        decimal.ROUND_HALF_DOWN,
        decimal.ROUND_HALF_EVEN,
        decimal.ROUND_HALF_UP,
        decimal.ROUND_UP,
    }
)


class CurrencyMismatchError(ValueError):
    """Raised when two amounts in different currencies are combined or compared."""


def exponent(currency: str) -> int:
    """Return the billing minor-unit exponent of `currency`; raises ValueError if it is unknown."""
    try:
        return CURRENCIES[currency]
    except (KeyError, TypeError):
        known = ", ".join(sorted(CURRENCIES))
        raise ValueError(f"unknown currency {currency!r}; known: {known}") from None


def _check_exact(value: object, what: str) -> None:
    """Refuse floats (and bools, which are ints by accident) with a message saying what to use."""
    if isinstance(value, float):
        raise TypeError(
            f"{what} must be exact (Decimal, str or int), not float {value!r}; "
            f"floats cannot represent most prices, e.g. 0.1 + 0.2 != 0.3"
        )
    if isinstance(value, bool):
        raise TypeError(f"{what} must be a number, not bool {value!r}")


def _to_decimal(value: Decimal | str | int, what: str) -> Decimal:
    _check_exact(value, what)
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise ValueError(f"{what} {value!r} is not a decimal number") from None
    else:
        raise TypeError(f"{what} must be Decimal, str or int, not {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"{what} must be finite, not {value!r}")
    return result


def _round_half_even(value: Fraction) -> int:
    return round(value)  # Fraction.__round__ without ndigits rounds half to even


def _round_half_up(value: Fraction) -> int:
    """Round to the nearest integer, halves away from zero, so that f(-x) == -f(x)."""
    magnitude = (abs(value) + Fraction(1, 2)).__floor__()
    return magnitude if value >= 0 else -magnitude


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: `amount_minor` minor units (see `CURRENCIES`) of `currency`.

    Immutable and hashable. `+`, `-` and comparisons need the same currency (else
    CurrencyMismatchError); `*` takes an int only — to scale by a fraction use `allocate`,
    `prorated_credit` or `apply_tax`, which say how they round.
    """

    amount_minor: int  # in the currency's billing minor unit (cents, grosze, whole rupiah)
    currency: str  # ISO 4217 code, a key of CURRENCIES

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise TypeError(
                f"amount_minor must be an int number of minor units, "
                f"not {type(self.amount_minor).__name__}; use Money.of() for decimal amounts"
            )
        exponent(self.currency)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def of(
        cls, amount: Decimal | str | int, currency: str, *, rounding: str | None = None
    ) -> Money:
        """Build from a major-unit amount: `Money.of("12.50", "USD")` is 1250 cents.

        Raises TypeError for floats, ValueError for unknown currencies, unparsable strings and
        amounts of 10**36 or more, and amounts with more decimals than the currency allows — unless `rounding` (a `decimal`
        rounding mode such as `decimal.ROUND_HALF_EVEN`) says how to drop them.
        """
        exp = exponent(currency)
        value = _to_decimal(amount, "amount")
        if value and value.adjusted() >= _MAX_MAGNITUDE_DIGITS:
            raise ValueError(f"amount {amount!r} is too large for a price")
        if rounding is not None and rounding not in _ROUNDING_MODES:
            raise ValueError(f"unknown rounding mode {rounding!r}; use a decimal.ROUND_* constant")
        # Exact, whatever the size of the number: scale by a power of ten in a context wide enough
        # that nothing rounds, then turn the (possibly fractional) minor amount into an int.
        with decimal.localcontext() as ctx:
            ctx.prec = max(28, len(value.as_tuple().digits) + exp + 2)
            ctx.traps[decimal.Inexact] = True
            minor = value.scaleb(exp)
            whole = minor.to_integral_value(rounding=decimal.ROUND_DOWN)
            if whole != minor:
                if rounding is None:
                    raise ValueError(
                        f"{value} {currency} has more decimals than {currency} allows "
                        f"({exp}); pass rounding= to round it"
                    )
                whole = minor.to_integral_value(rounding=rounding)
        return cls(int(whole), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in `currency`; raises ValueError if the currency is unknown."""
        return cls(0, currency)

    # -- views ----------------------------------------------------------------------------------

    @property
    def exponent(self) -> int:
        return CURRENCIES[self.currency]

    @property
    def decimal(self) -> Decimal:
        """The amount in major units, with exactly `exponent` decimals (`Decimal('12.50')`)."""
        sign, digits, _ = Decimal(self.amount_minor).as_tuple()
        return Decimal((sign, digits, -self.exponent))

    @property
    def is_zero(self) -> bool:
        return self.amount_minor == 0

    def format(self, locale: str | Locale = "en") -> str:
        """Format for display with Babel, e.g. `Rp500.000` (id), `1 234,50 zł` (pl), `$12.50` (en).

        Shows exactly `exponent` decimals (so whole rupiah, not Babel's ISO default of two).
        Display only: never parse this back or compute with it.
        """
        loc, pattern = _currency_pattern(locale, self.exponent)
        return pattern.apply(self.decimal, loc, currency=self.currency, currency_digits=False)

    def __str__(self) -> str:
        return f"{self.decimal} {self.currency}"

    # -- arithmetic -----------------------------------------------------------------------------

    def _same_currency(self, other: Money, op: str) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatchError(
                f"cannot {op} {self} and {other}: different currencies; convert explicitly first"
            )

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "add")
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other, "subtract")
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount_minor), self.currency)

    def __mul__(self, other: object) -> Money:
        if isinstance(other, bool) or not isinstance(other, int):
            if isinstance(other, float | Decimal | Fraction):
                raise TypeError(
                    f"Money can only be multiplied by an int (a quantity), not "
                    f"{type(other).__name__}; use allocate(), prorated_credit() or apply_tax() "
                    f"so the rounding is explicit"
                )
            return NotImplemented
        return Money(self.amount_minor * other, self.currency)

    __rmul__ = __mul__

    def _compare(self, other: object) -> tuple[int, int]:
        if not isinstance(other, Money):
            raise TypeError(f"cannot compare Money with {type(other).__name__}")
        self._same_currency(other, "compare")
        return self.amount_minor, other.amount_minor

    def __lt__(self, other: object) -> bool:
        a, b = self._compare(other)
        return a < b

    def __le__(self, other: object) -> bool:
        a, b = self._compare(other)
        return a <= b

    def __gt__(self, other: object) -> bool:
        a, b = self._compare(other)
        return a > b

    def __ge__(self, other: object) -> bool:
        a, b = self._compare(other)
        return a >= b


# -- allocation ------------------------------------------------------------------------------------


def allocate(total: Money, weights: list[int | Decimal]) -> list[Money]:
    """Split `total` in proportion to `weights`, returning one part per weight.

    The parts always sum to `total` exactly (largest-remainder method): each part gets the floor of
    its exact share, and the minor units left over go one each to the parts with the largest
    fractional remainders, earlier parts first on ties. A negative total is split like its
    absolute value and negated, so `allocate(-m, w) == [-p for p in allocate(m, w)]`.

    Raises TypeError for float weights, ValueError for an empty list, a negative weight or
    weights summing to zero.
    """
    if not isinstance(total, Money):
        raise TypeError(f"total must be Money, not {type(total).__name__}")
    if not weights:
        raise ValueError("allocate() needs at least one weight")
    exact: list[Fraction] = []
    for i, weight in enumerate(weights):
        value = _to_decimal(weight, f"weight #{i}")
        if value < 0:
            raise ValueError(f"weight #{i} is negative ({weight}); weights must be >= 0")
        exact.append(Fraction(value))
    weight_sum = sum(exact, Fraction(0))
    if weight_sum == 0:
        raise ValueError("weights sum to zero; at least one weight must be positive")

    units = abs(total.amount_minor)
    shares = [units * w / weight_sum for w in exact]
    parts = [s.__floor__() for s in shares]
    leftover = units - sum(parts)
    # Largest remainder first; on ties the earlier line wins so the result is deterministic.
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
    for i in order[:leftover]:
        parts[i] += 1
    sign = -1 if total.amount_minor < 0 else 1
    return [Money(sign * p, total.currency) for p in parts]


# -- proration -------------------------------------------------------------------------------------


def _require_aware(value: dt.datetime, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(
            f"{name} is a naive datetime ({value.isoformat()}); billing needs aware datetimes "
            f"(django.utils.timezone.now() or datetime.now(UTC))"
        )
    return value


def prorated_credit(
    price: Money, period_start: dt.datetime, period_end: dt.datetime, change_at: dt.datetime
) -> Money:
    """The unused part of `price` paid for [period_start, period_end) when the plan changes at
    `change_at`: `price * (period_end - change_at) / (period_end - period_start)`, rounded half
    to even to the minor unit.

    A change at or before the start credits the whole price, at or after the end credits nothing,
    so the result is always between zero and `price`; the used part is `price - result`, so the
    two never create or lose a minor unit. Half-even (banker's) rounding is used because this is
    an internal split rather than a taxed line, and it does not drift in either party's favour
    over many changes.

    Raises ValueError for naive datetimes, a negative price or an empty/inverted period.
    """
    # WARNING — period arithmetic. Durations are measured in elapsed real time (microseconds in
    # UTC), not in calendar units or wall-clock time:
    # * All three datetimes must be aware; naive ones are refused, never guessed.
    # * Each is converted to UTC before subtracting. Python subtracts two datetimes sharing one
    #   tzinfo by *wall clock*, ignoring DST, so a Europe/Warsaw month containing the October
    #   change would otherwise be an hour short and the credit slightly wrong.
    # * A "month" is therefore whatever real length the caller's period has (28–31 days, ± 1 h
    #   around DST); the same price prorates to slightly different amounts per day in different
    #   months. That is intended: the customer is credited for the exact share of time unused.
    # * Periods are half-open [start, end): a change exactly at `end` credits nothing.
    start = _require_aware(period_start, "period_start").astimezone(dt.UTC)
    end = _require_aware(period_end, "period_end").astimezone(dt.UTC)
    change = _require_aware(change_at, "change_at").astimezone(dt.UTC)
    if not isinstance(price, Money):
        raise TypeError(f"price must be Money, not {type(price).__name__}")
    if price.amount_minor < 0:
        raise ValueError(f"price must not be negative, got {price}")
    if end <= start:
        raise ValueError(
            f"period_end ({end.isoformat()}) must be after period_start ({start.isoformat()})"
        )

    change = min(max(change, start), end)
    one_us = dt.timedelta(microseconds=1)
    unused = (end - change) // one_us
    length = (end - start) // one_us
    credit = _round_half_even(Fraction(price.amount_minor * unused, length))
    return Money(credit, price.currency)


# -- percentages -----------------------------------------------------------------------------------


def percentage(amount: Money, percent: Decimal | int | str) -> Money:
    """`percent` % of `amount` (a coupon's discount, a late fee), rounded half-up to the minor
    unit; `percentage(m, p) + percentage(m, 100 - p)` may differ from `m` by one unit, so a
    caller that splits an amount in two uses `amount - percentage(...)` for the other part.

    Raises TypeError for a float percent, ValueError for a percent outside 0..100.
    """
    if not isinstance(amount, Money):
        raise TypeError(f"amount must be Money, not {type(amount).__name__}")
    rate = Fraction(_to_decimal(percent, "percent"))
    if not 0 <= rate <= 100:
        raise ValueError(f"percent must be between 0 and 100, got {percent}")
    return Money(_round_half_up(amount.amount_minor * rate / 100), amount.currency)


# -- tax -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaxBreakdown:
    """One line's tax: `net + tax == gross` always holds (checked on construction)."""

    net: Money
    tax: Money
    gross: Money

    def __post_init__(self) -> None:
        if self.net + self.tax != self.gross:
            raise ValueError(f"inconsistent tax breakdown: {self.net} + {self.tax} != {self.gross}")


def apply_tax(amount: Money, rate_percent: Decimal | int | str, *, inclusive: bool) -> TaxBreakdown:
    """Split one line into net, tax and gross at `rate_percent` (e.g. `Decimal("23")`).

    `inclusive=False`: `amount` is the net price; tax = net × rate / 100 (Polish VAT 23 %:
    100.00 PLN net → 23.00 tax → 123.00 gross).
    `inclusive=True`: `amount` already contains the tax; tax = gross × rate / (100 + rate)
    (Indonesian PPN 11 %: Rp111.000 gross → Rp11.000 tax, Rp100.000 net).
    For Indonesia's 2025 PPN of 12 % on a tax base (DPP) of 11/12 of the price, pass the
    effective rate, 11.

    The tax is rounded to the minor unit half-up (halves away from zero) once per line, and the
    other figure is derived by subtraction, so `net + tax == gross` exactly. Half-up is what the
    Polish VAT Act (art. 106e(11): "końcówki 0,5 grosza i wyższe zaokrągla się do 1 grosza")
    prescribes and what invoices are read against; rounding away from zero keeps a credit note's
    tax the exact negative of its invoice's.

    Raises TypeError for a float rate, ValueError for a negative rate.
    """
    if not isinstance(amount, Money):
        raise TypeError(f"amount must be Money, not {type(amount).__name__}")
    if not isinstance(inclusive, bool):
        raise TypeError("inclusive must be True or False, say whether the price includes tax")
    rate = Fraction(_to_decimal(rate_percent, "rate_percent"))
    if rate < 0:
        raise ValueError(f"rate_percent must not be negative, got {rate_percent}")
    minor = amount.amount_minor
    if inclusive:
        tax = _round_half_up(minor * rate / (100 + rate))
        gross = minor
        net = gross - tax
    else:
        tax = _round_half_up(minor * rate / 100)
        net = minor
        gross = net + tax
    cur = amount.currency
    return TaxBreakdown(net=Money(net, cur), tax=Money(tax, cur), gross=Money(gross, cur))


# -- credit balance --------------------------------------------------------------------------------


class CreditApplication(NamedTuple):
    """Result of `apply_credit`: `applied + new_balance == balance`, `applied + still_due == due`."""

    applied: Money
    new_balance: Money
    still_due: Money


def apply_credit(balance: Money, due: Money) -> CreditApplication:
    """Pay as much of `due` as the credit `balance` covers.

    Returns (applied, new_balance, still_due), all >= 0 and in the same currency. Raises
    CurrencyMismatchError for different currencies and ValueError for a negative balance or due.
    """
    if not isinstance(balance, Money) or not isinstance(due, Money):
        raise TypeError("balance and due must be Money")
    if balance.currency != due.currency:
        raise CurrencyMismatchError(
            f"credit balance is in {balance.currency} but the amount due is in {due.currency}"
        )
    if balance.amount_minor < 0:
        raise ValueError(f"balance must not be negative, got {balance}")
    if due.amount_minor < 0:
        raise ValueError(f"due must not be negative, got {due}")
    applied = min(balance, due)
    return CreditApplication(
        applied=applied, new_balance=balance - applied, still_due=due - applied
    )


@functools.lru_cache(maxsize=256)
def _currency_pattern(locale: str | Locale, exponent: int):
    """The Babel locale and its standard currency pattern showing exactly ``exponent`` decimals,
    parsed once per process (a page of amounts formats each with the same few)."""
    # Django language codes use "-" ("pt-br"), Babel's use "_".
    loc = Locale.parse(locale.replace("-", "_") if isinstance(locale, str) else locale)
    pattern = copy.copy(loc.currency_formats["standard"])
    pattern.frac_prec = (exponent, exponent)
    return loc, pattern
