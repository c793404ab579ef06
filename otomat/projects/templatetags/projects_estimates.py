"""Saying an estimate's ranges in the reader's language: ``{{ estimate|estimate_summary }}``,
``{{ line|line_cost:estimate.currency }}``, ``{{ line|line_weeks }}``, ``{{ minor|minor_amount:currency }}``."""

from __future__ import annotations

from django import template

from otomat.billing.money import Money
from otomat.projects import estimator

register = template.Library()


@register.filter
def estimate_summary(estimate) -> str:
    return estimator.summary(estimate) if estimate else ""


@register.filter
def estimate_weeks(estimate) -> str:
    from decimal import Decimal

    return estimator.format_weeks(Decimal(estimate.weeks_min), Decimal(estimate.weeks_max))


@register.filter
def estimate_cost(estimate) -> str:
    return estimator.format_money_range(
        estimate.cost_min_minor, estimate.cost_max_minor, estimate.currency
    )


@register.filter
def line_cost(line, currency: str) -> str:
    return estimator.line_cost(line, currency)


@register.filter
def line_weeks(line) -> str:
    return estimator.line_weeks(line)


@register.filter
def minor_amount(minor: int, currency: str) -> str:
    from django.utils.translation import get_language

    return Money(int(minor or 0), currency).format((get_language() or "en")[:2])


@register.filter
def lead_status(value: str) -> str:
    """A lead status's label in the active language (the value itself when unknown)."""
    from otomat.projects.models import Lead

    try:
        return str(Lead.Status(value).label)
    except ValueError:
        return value or ""
