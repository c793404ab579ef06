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


@register.filter
def with_trial(plans) -> list:
    """The plans among ``plans`` that start with a free trial (the order form's wording)."""
    return [plan for plan in plans or () if getattr(plan, "trial_days", 0)]


@register.filter
def kind_label(invoice) -> str:
    """The invoice's kind as its reader names it: a subscription's first invoice after a trial
    is issued as a renewal but reads "First period". Looks at the subscription only when it
    is already loaded (select_related) or the page shows one invoice, so lists cost no query
    per row."""
    kind = invoice.get_kind_display()
    if invoice.kind != "renewal" or not invoice.subscription_id or not invoice.period_start:
        return kind
    cached = invoice._state.fields_cache.get("subscription")
    if cached is None:
        return kind
    if cached.anchor_at == invoice.period_start:
        return _("First period")
    return kind


@register.simple_tag
def load_subscription(invoice) -> str:
    """Load ``invoice.subscription`` once (a detail page) so ``kind_label`` can use it."""
    if invoice.subscription_id:
        invoice.subscription  # noqa: B018 - fills the relation cache
    return ""


@register.filter
def local_moment(value) -> str:
    """A moment in the active time zone in the locale's format, without the zone (timelines
    on a page whose due time names it): "Dec 3, 2026 5:00 PM"."""
    if not value:
        return ""
    local = timezone.localtime(value)
    day = format_date(local.date(), "medium", locale=_locale())
    return f"{day} {format_time(local.time(), 'short', locale=_locale())}"
