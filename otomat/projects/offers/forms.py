"""The offer editor's form: the offer's fields and its rows of lines, milestones and payments,
parsed into ``OfferIn`` (amounts typed in major units, "1 250,50" or "1250.50"). A row with an
empty title (label) is left out, so clearing it removes the row. Parsing raises OfferError
naming the field; the services then validate the content as a whole."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from otomat.billing.money import Money
from otomat.projects.offers.models import Offer, PaymentStep
from otomat.projects.offers.validation import (
    LANGUAGES,
    LineIn,
    MilestoneIn,
    OfferError,
    OfferIn,
    StepIn,
)

EXTRA_ROWS = 3
MAX_ROWS = 100


def _decimal(raw: str, what: str) -> Decimal | None:
    text = (raw or "").strip().replace("\u00a0", "").replace(" ", "")
    if not text:
        return None
    if "," in text and "." in text:
        text = (
            text.replace(",", "")
            if text.rfind(".") > text.rfind(",")
            else text.replace(".", "").replace(",", ".")
        )
    else:
        text = text.replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise OfferError(_("%(what)s is not a number.") % {"what": what}) from None
    if not value.is_finite():
        raise OfferError(_("%(what)s is not a number.") % {"what": what})
    return value


def _amount(raw: str, currency: str, what: str) -> int | None:
    value = _decimal(raw, what)
    if value is None:
        return None
    if value < 0:
        raise OfferError(_("%(what)s cannot be negative.") % {"what": what})
    try:
        return Money.of(value, currency).amount_minor
    except ValueError:
        raise OfferError(
            _("%(what)s has more decimals than %(currency)s allows or is too large.")
            % {"what": what, "currency": currency}
        ) from None


def _int(raw: str, what: str, default: int | None = None) -> int | None:
    text = (raw or "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise OfferError(_("%(what)s must be a whole number.") % {"what": what}) from None


def _date(raw: str, what: str) -> dt.date | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise OfferError(_("%(what)s is not a date (YYYY-MM-DD).") % {"what": what}) from None


def _rows(post, prefix: str) -> list[dict[str, str]]:
    count = min(_int(post.get(f"{prefix}-count", "0"), prefix, 0) or 0, MAX_ROWS)
    rows = []
    for n in range(count):
        row = {
            key.removeprefix(f"{prefix}-{n}-"): value
            for key, value in post.items()
            if key.startswith(f"{prefix}-{n}-")
        }
        rows.append(row)
    return rows


def parse_editor(post) -> OfferIn:
    """``OfferIn`` from the editor's POST. Raises OfferError naming the first bad field."""
    currency = (post.get("currency") or "").strip().upper()
    if currency not in {code for code, _n in Offer._meta.get_field("currency").choices}:
        raise OfferError(_("Unknown currency."))
    valid_until = _date(post.get("valid_until"), _("The validity date"))
    if valid_until is None:
        raise OfferError(_("The validity date is required."))
    lines = []
    for n, row in enumerate(_rows(post, "line"), start=1):
        if not (row.get("title") or "").strip():
            continue
        what = _("Line %(n)s") % {"n": n}
        kind = row.get("kind") or "exact"
        weeks_min = _decimal(row.get("weeks_min"), what)
        weeks_max = _decimal(row.get("weeks_max"), what)
        lines.append(
            LineIn(
                title=row.get("title", ""),
                kind=kind,
                description=row.get("description", ""),
                quantity=_int(row.get("quantity"), what, 1),
                unit_price_minor=_amount(row.get("unit_price"), currency, what) or 0,
                cost_min_minor=_amount(row.get("cost_min"), currency, what) or 0,
                cost_max_minor=_amount(row.get("cost_max"), currency, what) or 0,
                weeks_min=weeks_min if weeks_min is not None else Decimal(0),
                weeks_max=weeks_max if weeks_max is not None else (weeks_min or Decimal(0)),
            )
        )
    milestones, milestone_index = [], {}
    for n, row in enumerate(_rows(post, "milestone"), start=1):
        if not (row.get("title") or "").strip():
            continue
        what = _("Milestone %(n)s") % {"n": n}
        milestone_index[n] = len(milestones)
        milestones.append(
            MilestoneIn(
                title=row.get("title", ""),
                weeks=_decimal(row.get("weeks"), what),
                due_date=_date(row.get("due_date"), what),
                amount_minor=_amount(row.get("amount"), currency, what),
            )
        )
    steps = []
    for n, row in enumerate(_rows(post, "step"), start=1):
        if not (row.get("label") or "").strip():
            continue
        what = _("Payment %(n)s") % {"n": n}
        trigger = row.get("trigger") or PaymentStep.Trigger.SIGNING
        milestone = None
        if trigger == PaymentStep.Trigger.MILESTONE:
            chosen = _int(row.get("milestone"), what)
            milestone = milestone_index.get(chosen, -1) if chosen is not None else None
        steps.append(
            StepIn(
                label=row.get("label", ""),
                trigger=trigger,
                percent=_decimal(row.get("percent"), what),
                amount_minor=_amount(row.get("amount"), currency, what),
                milestone=milestone,
            )
        )
    return OfferIn(
        title=post.get("title", ""),
        currency=currency,
        language=(post.get("language") or "").strip(),
        valid_until=valid_until,
        revision_rounds=_int(post.get("revision_rounds"), _("Revision rounds"), 0),
        summary=post.get("summary", ""),
        agreed_total_minor=_amount(post.get("agreed_total"), currency, _("The agreed price")),
        lines=tuple(lines),
        milestones=tuple(milestones),
        steps=tuple(steps),
    )


def major(minor: int | None, currency: str) -> str:
    """An amount as the editor shows it in its input ("1250.50"; "" for none)."""
    if minor is None:
        return ""
    return format(Money(minor, currency).decimal, "f")


class DeclineForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why do you decline?"), max_length=2000, widget=forms.Textarea
    )


class SignForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Your full name"), min_length=2, max_length=200)
    consent = forms.BooleanField(label=gettext_lazy("I agree"), required=True)


class TemplateForm(forms.Form):
    language = forms.ChoiceField(choices=[(c, c) for c in LANGUAGES])
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    body = forms.CharField(label=gettext_lazy("Text"), max_length=50000, widget=forms.Textarea)
