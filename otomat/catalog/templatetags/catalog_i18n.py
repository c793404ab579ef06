"""Template filters for a product's texts in the reader's language (otomat.catalog.i18n):
``{{ plan|plan_name }}``, ``{{ plan.price|money }} / {{ plan|per_period }}`` and
``{{ version|product_text:"name" }}``."""

from __future__ import annotations

from typing import Any

from django import template

from otomat.catalog import i18n

register = template.Library()


@register.filter
def plan_name(plan: Any) -> str:
    return i18n.plan_name(plan)


@register.filter
def per_period(plan: Any) -> str:
    return i18n.per_period(plan.period_months)


@register.filter
def product_text(version: Any, field: str) -> str:
    return i18n.product_text(version, field)
