"""What an offer is made of, as the editor, the API and ``from_estimate`` pass it in, and its
validation: ``validate`` returns the cleaned input or raises OfferError naming the first
problem, before anything is saved."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from otomat.billing.money import Money
from otomat.projects.offers.models import Offer, OfferLine, PaymentStep

MAX_MINOR = 10**13  # 100 billion in major units: far above any project, below overflow
MAX_LINES = 100
MAX_MILESTONES = 30
MAX_STEPS = 20
MAX_WEEKS = Decimal(520)
LANGUAGES = tuple(code for code, _name in settings.LANGUAGES)


class OfferError(Exception):
    """A refused offer action; the message is shown to the person (already translated)."""


# -- input -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineIn:
    title: str
    kind: str = OfferLine.Kind.EXACT
    description: str = ""
    quantity: int = 1
    unit_price_minor: int = 0
    cost_min_minor: int = 0
    cost_max_minor: int = 0
    weeks_min: Decimal = Decimal(0)
    weeks_max: Decimal = Decimal(0)


@dataclass(frozen=True)
class MilestoneIn:
    title: str
    weeks: Decimal | None = None
    due_date: dt.date | None = None
    amount_minor: int | None = None


@dataclass(frozen=True)
class StepIn:
    """``milestone``: the index of the milestone (in the list saved with it) for a
    ``milestone`` trigger. Exactly one of ``percent`` and ``amount_minor``."""

    label: str
    trigger: str
    percent: Decimal | None = None
    amount_minor: int | None = None
    milestone: int | None = None


@dataclass(frozen=True)
class OfferIn:
    title: str
    currency: str
    language: str
    valid_until: dt.date
    revision_rounds: int = 2
    summary: str = ""
    agreed_total_minor: int | None = None
    lines: tuple[LineIn, ...] = ()
    milestones: tuple[MilestoneIn, ...] = ()
    steps: tuple[StepIn, ...] = ()


def today_utc(now: dt.datetime) -> dt.date:
    return now.astimezone(dt.UTC).date()


def _minor(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MINOR:
        raise OfferError(
            _("%(what)s must be an amount from 0 to %(most)s.")
            % {"what": what, "most": MAX_MINOR // 100}
        )
    return value


def _weeks(value, what: str) -> Decimal:
    try:
        weeks = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise OfferError(_("%(what)s must be a number of weeks.") % {"what": what}) from None
    if not weeks.is_finite() or not 0 <= weeks <= MAX_WEEKS or weeks != round(weeks, 1):
        raise OfferError(_("%(what)s must be 0 to 520 weeks, in tenths at most.") % {"what": what})
    return weeks


def clean_text(value: str, what: str, *, most: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise OfferError(_("%(what)s is required.") % {"what": what})
    if len(value) > most:
        raise OfferError(
            _("%(what)s is too long (%(most)s characters at most).") % {"what": what, "most": most}
        )
    return value


def validate(data: OfferIn, *, now: dt.datetime) -> OfferIn:
    """Return ``data`` with every text stripped, or raise OfferError naming the first problem
    (nothing is saved either way)."""
    title = clean_text(data.title, _("The title"), most=200)
    summary = clean_text(data.summary, _("The summary"), most=20000, required=False)
    if data.currency not in {code for code, _n in Offer._meta.get_field("currency").choices}:
        raise OfferError(_("Unknown currency."))
    if data.language not in LANGUAGES:
        raise OfferError(_("Unknown language."))
    if not isinstance(data.valid_until, dt.date) or data.valid_until < today_utc(now):
        raise OfferError(_("The validity date must be today or later."))
    if data.valid_until > today_utc(now) + dt.timedelta(days=366):
        raise OfferError(_("An offer can be valid for a year at most."))
    if isinstance(data.revision_rounds, bool) or not isinstance(data.revision_rounds, int):
        raise OfferError(_("Revision rounds must be a whole number."))
    if not 0 <= data.revision_rounds <= 50:
        raise OfferError(_("Revision rounds must be from 0 to 50."))
    if not data.lines:
        raise OfferError(_("An offer needs at least one line."))
    if len(data.lines) > MAX_LINES:
        raise OfferError(_("An offer has %(most)s lines at most.") % {"most": MAX_LINES})
    lines = []
    for n, line in enumerate(data.lines, start=1):
        label = _("Line %(n)s") % {"n": n}
        if line.kind not in OfferLine.Kind.values:
            raise OfferError(_("%(what)s: unknown kind.") % {"what": label})
        line_title = clean_text(line.title, _("%(what)s: the title") % {"what": label}, most=200)
        description = clean_text(line.description, label, most=5000, required=False)
        weeks_min = _weeks(line.weeks_min, label)
        weeks_max = _weeks(line.weeks_max, label)
        if line.kind == OfferLine.Kind.EXACT:
            quantity = line.quantity
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                raise OfferError(
                    _("%(what)s: the quantity must be a whole number.") % {"what": label}
                )
            if not 1 <= quantity <= 10000:
                raise OfferError(
                    _("%(what)s: the quantity must be from 1 to 10000.") % {"what": label}
                )
            unit = _minor(line.unit_price_minor, label)
            if quantity * unit > MAX_MINOR:
                raise OfferError(_("%(what)s: the amount is too large.") % {"what": label})
            lines.append(
                LineIn(
                    line_title, line.kind, description, quantity, unit, 0, 0, weeks_max, weeks_max
                )
            )
        else:
            low, high = _minor(line.cost_min_minor, label), _minor(line.cost_max_minor, label)
            if low > high or weeks_min > weeks_max:
                raise OfferError(
                    _("%(what)s: the range's start is after its end.") % {"what": label}
                )
            lines.append(
                LineIn(line_title, line.kind, description, 1, 0, low, high, weeks_min, weeks_max)
            )
    low = sum(_low(line) for line in lines)
    high = sum(_high(line) for line in lines)
    if high > MAX_MINOR:
        raise OfferError(_("The offer's total is too large."))
    is_range = any(line.kind == OfferLine.Kind.RANGE for line in lines)
    agreed = data.agreed_total_minor
    if agreed is not None:
        _minor(agreed, _("The agreed price"))
        if not is_range:
            agreed = None  # an exact offer's schedule is computed on its total
        elif not low <= agreed <= high:
            raise OfferError(_("The agreed price must lie within the offer's range."))
    if len(data.milestones) > MAX_MILESTONES:
        raise OfferError(_("An offer has %(most)s milestones at most.") % {"most": MAX_MILESTONES})
    milestones = []
    for n, m in enumerate(data.milestones, start=1):
        label = _("Milestone %(n)s") % {"n": n}
        m_title = clean_text(m.title, _("%(what)s: the title") % {"what": label}, most=200)
        weeks = _weeks(m.weeks, label) if m.weeks is not None else None
        if m.due_date is not None and not isinstance(m.due_date, dt.date):
            raise OfferError(_("%(what)s: the due date is not a date.") % {"what": label})
        amount = _minor(m.amount_minor, label) if m.amount_minor is not None else None
        milestones.append(MilestoneIn(m_title, weeks, m.due_date, amount))
    steps = _validate_steps(
        data.steps,
        milestones,
        base=agreed if is_range else high,
        is_range=is_range,
        currency=data.currency,
    )
    return OfferIn(
        title,
        data.currency,
        data.language,
        data.valid_until,
        data.revision_rounds,
        summary,
        agreed,
        tuple(lines),
        tuple(milestones),
        tuple(steps),
    )


def _low(line: LineIn) -> int:
    return line.quantity * line.unit_price_minor if line.kind == "exact" else line.cost_min_minor


def _high(line: LineIn) -> int:
    return line.quantity * line.unit_price_minor if line.kind == "exact" else line.cost_max_minor


def _validate_steps(
    steps, milestones: list[MilestoneIn], *, base: int | None, is_range: bool, currency: str
) -> list[StepIn]:
    if not steps:
        return []
    if len(steps) > MAX_STEPS:
        raise OfferError(_("A schedule has %(most)s payments at most.") % {"most": MAX_STEPS})
    if is_range and base is None:
        raise OfferError(
            _("A range offer's payment schedule needs the agreed price it is computed on.")
        )
    out = []
    fixed, percent_sum = 0, Decimal(0)
    for n, step in enumerate(steps, start=1):
        label = _("Payment %(n)s") % {"n": n}
        step_label = clean_text(step.label, _("%(what)s: the label") % {"what": label}, most=200)
        if step.trigger not in PaymentStep.Trigger.values:
            raise OfferError(_("%(what)s: unknown trigger.") % {"what": label})
        milestone = step.milestone
        if step.trigger == PaymentStep.Trigger.MILESTONE:
            if isinstance(milestone, bool) or not isinstance(milestone, int):
                raise OfferError(_("%(what)s: choose its milestone.") % {"what": label})
            if not 0 <= milestone < len(milestones):
                raise OfferError(_("%(what)s: choose its milestone.") % {"what": label})
        else:
            milestone = None
        if (step.percent is None) == (step.amount_minor is None):
            raise OfferError(
                _("%(what)s: give either a percentage or an amount.") % {"what": label}
            )
        percent = None
        if step.percent is not None:
            try:
                percent = Decimal(step.percent)
            except (InvalidOperation, TypeError, ValueError):
                raise OfferError(
                    _("%(what)s: the percentage is not a number.") % {"what": label}
                ) from None
            if not percent.is_finite() or not 0 < percent <= 100 or percent != round(percent, 2):
                raise OfferError(
                    _("%(what)s: the percentage must be above 0 and at most 100.") % {"what": label}
                )
            percent_sum += percent
        amount = None
        if step.amount_minor is not None:
            amount = _minor(step.amount_minor, label)
            if amount == 0:
                raise OfferError(_("%(what)s: the amount must be above 0.") % {"what": label})
            fixed += amount
        out.append(StepIn(step_label, step.trigger, percent, amount, milestone))
    # Fixed amounts first, the percentages of the base on top: together exactly the base.
    added = fixed + Decimal(base) * percent_sum / 100
    if added != base:
        language = translation.get_language() or "en"
        raise OfferError(
            _("The payments must add up to %(total)s; they add up to %(sum)s.")
            % {
                "total": Money(base, currency).format(language),
                "sum": Money(int(added), currency).format(language),
            }
        )
    return out
