"""Billing page helpers: an invoice's figures in reading order, dates in the reader's locale."""

from __future__ import annotations

from babel.dates import format_date, format_time
from django import template
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from otomat.billing.totals import Totals, invoice_totals

register = template.Library()


def _locale() -> str:
    return (translation.get_language() or "en").replace("-", "_")


@register.simple_tag
def totals_of(invoice, lines) -> Totals:
    """``{% totals_of invoice lines as totals %}``: see otomat.billing.totals."""
    return invoice_totals(invoice, lines, default_discount_label=_("Discount"))


@register.filter
def local_date(value) -> str:
    """A date (or the date of a moment, in the active time zone) in the locale's medium
    format: "Dec 3, 2026", "3 Des 2026", "3 gru 2026"."""
    if not value:
        return ""
    if hasattr(value, "astimezone"):
        value = timezone.localtime(value).date()
    return format_date(value, "medium", locale=_locale())


@register.filter
def local_datetime(value) -> str:
    """A moment in the active time zone, in the locale's format, with the zone named:
    "Dec 3, 2026 5:00 PM (Asia/Jakarta)"."""
    if not value:
        return ""
    zone = timezone.get_current_timezone()
    local = timezone.localtime(value, zone)
    day = format_date(local.date(), "medium", locale=_locale())
    time = format_time(local.time(), "short", locale=_locale())
    return f"{day} {time} ({getattr(zone, 'key', str(zone))})"
