"""The estimator: what a project of the picked options takes, as a time and a cost range.

``compute(selections, language=...)`` checks what a visitor picked against the seller's active
options and returns the range: the base range (what every project costs) plus, for every picked
option, its range times the quantity. ``create_estimate`` stores the result as an
:class:`~otomat.projects.models.Estimate` (frozen: the options may change later), which the
visitor reopens by its token (``reopen``). ``summary`` says it for people: "4–7 weeks,
PLN 18,000–31,000", in the reader's locale.

Every refusal is an :class:`EstimateError` whose message is a sentence for the visitor, in the
active language; nothing is stored then.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from babel import Locale
from django.db import transaction
from django.utils import translation
from django.utils.translation import get_language, gettext, ngettext, pgettext

from otomat.billing.money import Money
from otomat.projects.models import Estimate, EstimatorOption, EstimatorSettings, Lead

BASE_KEY = "_base"  # the key of the base line; option keys never start with "_"
MAX_SELECTIONS = 200  # more picks than any real option set, fewer than a hostile list
MAX_WEEKS = Decimal("99999.9")  # Estimate.weeks_* holds 6 digits before the point
MAX_COST_MINOR = 2**63 - 1  # PositiveBigIntegerField on every database


class EstimateError(ValueError):
    """A selection the estimator refuses; the message says why, for a person."""


@dataclass(frozen=True)
class Line:
    """One part of a result: an option times its quantity (or the base range, ``BASE_KEY``)."""

    key: str
    title: str
    quantity: int
    weeks_min: Decimal
    weeks_max: Decimal
    cost_min_minor: int  # in the currency's minor unit (grosze, cents, whole rupiah)
    cost_max_minor: int

    def as_json(self) -> dict:
        return {
            "key": self.key,
            "title": self.title,
            "quantity": self.quantity,
            "weeks_min": str(self.weeks_min),
            "weeks_max": str(self.weeks_max),
            "cost_min_minor": self.cost_min_minor,
            "cost_max_minor": self.cost_max_minor,
        }


@dataclass(frozen=True)
class Result:
    """A computed range: the lines sum to the totals exactly."""

    currency: str
    language: str
    selections: list[dict]  # [{"key": "shop", "quantity": 1}], in the options' order
    lines: list[Line] = field(default_factory=list)
    weeks_min: Decimal = Decimal(0)
    weeks_max: Decimal = Decimal(0)
    cost_min_minor: int = 0
    cost_max_minor: int = 0


def _language(language: str | None) -> str:
    return (language or get_language() or "en")[:2]


def settings_text(row: EstimatorSettings, name: str, language: str) -> str:
    """The settings' ``title`` or ``intro`` in ``language`` (English fields when untranslated)."""
    translated = (row.translations or {}).get(_language(language), {}).get(name)
    return translated or getattr(row, name)


def active_options() -> list[EstimatorOption]:
    """The options a visitor may pick, in the seller's order, with what each requires."""
    return list(EstimatorOption.objects.filter(is_active=True).prefetch_related("requires"))


def parse_selections(raw: object) -> dict[str, int]:
    """``{"key": quantity}`` from what a caller sent: a mapping of key to quantity, or a list of
    ``{"key": ..., "quantity": ...}`` (quantity 1 when left out). Raises EstimateError for any
    other shape, a repeated key or a quantity that is not a whole number."""
    if isinstance(raw, Mapping):
        items = list(raw.items())
    elif isinstance(raw, list | tuple):
        items = []
        for entry in raw:
            if not isinstance(entry, Mapping) or "key" not in entry:
                raise EstimateError(gettext("Each picked option needs its key."))
            items.append((entry["key"], entry.get("quantity", 1)))
    else:
        raise EstimateError(gettext("The picked options are not a list."))
    if len(items) > MAX_SELECTIONS:
        raise EstimateError(
            gettext("At most %(n)d options can be picked at once.") % {"n": MAX_SELECTIONS}
        )
    picked: dict[str, int] = {}
    for key, quantity in items:
        if not isinstance(key, str) or not key or len(key) > 64:
            raise EstimateError(gettext("An option's key must be a short text."))
        if isinstance(quantity, bool) or not isinstance(quantity, int | str):
            raise EstimateError(
                gettext("The quantity of “%(key)s” must be a whole number.") % {"key": key}
            )
        try:
            number = int(str(quantity).strip())
        except ValueError:
            raise EstimateError(
                gettext("The quantity of “%(key)s” must be a whole number.") % {"key": key}
            ) from None
        if key in picked:
            raise EstimateError(gettext("“%(key)s” is picked twice.") % {"key": key})
        picked[key] = number
    return picked


def compute(
    selections: object,
    *,
    language: str | None = None,
    options: Iterable[EstimatorOption] | None = None,
    settings_row: EstimatorSettings | None = None,
) -> Result:
    """The range of ``selections`` (see :func:`parse_selections`; a quantity of 0 means not
    picked) in the seller's currency, with the lines' titles in ``language``.

    Raises EstimateError for an unknown or withdrawn option, a quantity outside 1..the option's
    most units, a yes-or-no option picked more than once, or an option picked without one it
    requires."""
    language = _language(language)
    row = settings_row or EstimatorSettings.current()
    offered = {o.key: o for o in (options if options is not None else active_options())}
    picked = {k: q for k, q in parse_selections(selections).items() if q != 0}
    for key, quantity in picked.items():
        option = offered.get(key)
        if option is None:
            raise EstimateError(
                gettext("“%(key)s” is not an option of this estimator.") % {"key": key}
            )
        most = 1 if option.kind == EstimatorOption.Kind.CHOICE else option.max_quantity
        if not 1 <= quantity <= most:
            title = option.text("title", language)
            if most == 1:
                raise EstimateError(
                    gettext("“%(option)s” is picked or not: its quantity must be 1.")
                    % {"option": title}
                )
            raise EstimateError(
                gettext("The quantity of “%(option)s” must be between 1 and %(most)d.")
                % {"option": title, "most": most}
            )
    for key in picked:
        option = offered[key]
        for needed in option.requires.all():
            if needed.key not in picked:
                raise EstimateError(
                    gettext("“%(option)s” needs “%(needed)s”: pick it too.")
                    % {
                        "option": option.text("title", language),
                        "needed": needed.text("title", language),
                    }
                )
    lines: list[Line] = []
    if row.base_weeks_max or row.base_cost_max_minor:
        lines.append(
            Line(
                key=BASE_KEY,
                title=base_title(language),
                quantity=1,
                weeks_min=Decimal(row.base_weeks_min),
                weeks_max=Decimal(row.base_weeks_max),
                cost_min_minor=row.base_cost_min_minor,
                cost_max_minor=row.base_cost_max_minor,
            )
        )
    chosen = []
    for option in sorted((offered[k] for k in picked), key=lambda o: (o.position, o.pk)):
        quantity = picked[option.key]
        chosen.append({"key": option.key, "quantity": quantity})
        lines.append(
            Line(
                key=option.key,
                title=option.text("title", language),
                quantity=quantity,
                weeks_min=option.weeks_min * quantity,
                weeks_max=option.weeks_max * quantity,
                cost_min_minor=option.cost_min_minor * quantity,
                cost_max_minor=option.cost_max_minor * quantity,
            )
        )
    result = Result(
        currency=row.currency,
        language=language,
        selections=chosen,
        lines=lines,
        weeks_min=sum((line.weeks_min for line in lines), Decimal(0)),
        weeks_max=sum((line.weeks_max for line in lines), Decimal(0)),
        cost_min_minor=sum(line.cost_min_minor for line in lines),
        cost_max_minor=sum(line.cost_max_minor for line in lines),
    )
    if result.weeks_max > MAX_WEEKS or result.cost_max_minor > MAX_COST_MINOR:
        raise EstimateError(gettext("This estimate is larger than the estimator can hold."))
    return result


def base_title(language: str) -> str:
    with translation.override(language):
        return gettext("Project foundation (every project)")


@transaction.atomic
def create_estimate(
    selections: object, *, language: str | None = None, lead: Lead | None = None
) -> Estimate:
    """Compute and store an estimate (see :func:`compute`, whose errors it raises, storing
    nothing); returns it with its private ``token``."""
    result = compute(selections, language=language)
    return Estimate.objects.create(
        lead=lead,
        currency=result.currency,
        language=result.language,
        selections=result.selections,
        lines=[line.as_json() for line in result.lines],
        weeks_min=result.weeks_min,
        weeks_max=result.weeks_max,
        cost_min_minor=result.cost_min_minor,
        cost_max_minor=result.cost_max_minor,
    )


def reopen(token: str) -> Estimate | None:
    """The stored estimate of this link, or None for an unknown token."""
    if not isinstance(token, str) or not 8 <= len(token) <= 32:
        return None
    return Estimate.objects.select_related("lead").filter(token=token).first()


# -- saying it ---------------------------------------------------------------------------------


def _locale(language: str | None) -> Locale:
    return Locale.parse(_language(language).replace("-", "_"))


def _number(value: Decimal, loc: Locale, decimals: int) -> str:
    pattern = copy.copy(loc.decimal_formats[None])
    pattern.frac_prec = (decimals, decimals)
    return pattern.apply(value, loc)


def format_weeks(weeks_min: Decimal, weeks_max: Decimal, language: str | None = None) -> str:
    """``4–7 weeks`` (``2 weeks`` when both ends agree), in ``language`` (the active one by
    default), numbers in its locale."""
    loc = _locale(language)
    whole = weeks_min == weeks_min.to_integral() and weeks_max == weeks_max.to_integral()
    low, high = (_number(w, loc, 0 if w == w.to_integral() else 1) for w in (weeks_min, weeks_max))
    span = low if low == high else f"{low}–{high}"
    with translation.override(_language(language)):
        if whole:
            return ngettext("%(range)s week", "%(range)s weeks", int(weeks_max)) % {"range": span}
        return pgettext("a fractional number of weeks", "%(range)s weeks") % {"range": span}


def format_money_range(
    cost_min_minor: int, cost_max_minor: int, currency: str, language: str | None = None
) -> str:
    """``PLN 18,000–31,000`` (en), ``18 000–31 000 zł`` (pl): one currency sign, the numbers in
    the reader's locale, without decimals when both ends are whole units."""
    loc = _locale(language)
    low, high = Money(cost_min_minor, currency), Money(cost_max_minor, currency)
    whole = low.decimal == low.decimal.to_integral() and high.decimal == high.decimal.to_integral()
    decimals = 0 if whole else low.exponent
    pattern = copy.copy(loc.currency_formats["standard"])
    pattern.frac_prec = (decimals, decimals)
    formatted = _spaced(pattern.apply(high.decimal, loc, currency=currency, currency_digits=False))
    if low == high:
        return formatted
    high_number = _number(abs(high.decimal), loc, decimals)
    low_number = _number(abs(low.decimal), loc, decimals)
    if formatted.count(high_number) != 1:  # a locale whose sign holds digits: say both in full
        return f"{_spaced(low.format(loc))} – {_spaced(high.format(loc))}"
    return formatted.replace(high_number, f"{low_number}–{high_number}")


def _spaced(text: str) -> str:
    """CLDR's currency spacing, which Babel leaves out: a sign of letters (PLN, Rp) beside a
    digit gets a no-break space ("PLN 18,000", not "PLN18,000"); "$18" and "18 zł" stay."""
    text = re.sub(r"^(-?[^\W\d_]{2,})(?=\d)", "\\1\u00a0", text)
    return re.sub(r"(?<=\d)([^\W\d_]{2,})$", "\u00a0\\1", text)


def summary(estimate: Estimate | Result, language: str | None = None) -> str:
    """``4–7 weeks, PLN 18,000–31,000`` in the reader's language (the active one by default)."""
    with translation.override(_language(language)):
        pattern = gettext("%(weeks)s, %(cost)s")
    return pattern % {
        "weeks": format_weeks(Decimal(estimate.weeks_min), Decimal(estimate.weeks_max), language),
        "cost": format_money_range(
            estimate.cost_min_minor, estimate.cost_max_minor, estimate.currency, language
        ),
    }


def line_cost(line: Mapping | Line, currency: str, language: str | None = None) -> str:
    get = line.get if isinstance(line, Mapping) else lambda k: getattr(line, k)
    return format_money_range(get("cost_min_minor"), get("cost_max_minor"), currency, language)


def line_weeks(line: Mapping | Line, language: str | None = None) -> str:
    get = line.get if isinstance(line, Mapping) else lambda k: getattr(line, k)
    return format_weeks(Decimal(get("weeks_min")), Decimal(get("weeks_max")), language)
