"""Billing page helpers: an invoice's figures in reading order, dates in the reader's locale."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

from otomat.billing.totals import Totals, invoice_totals
from otomat.lib import dates

register = template.Library()


@register.filter
def method_label(code: str) -> str:
    """``{{ payment.gateway|method_label }}``: "Bank transfer" or the provider's name."""
    from otomat.billing.payments import method_label as label

    return label(code)


@register.simple_tag
def totals_of(invoice, lines) -> Totals:
    """``{% totals_of invoice lines as totals %}``: see otomat.billing.totals."""
    return invoice_totals(invoice, lines, default_discount_label=_("Discount"))


@register.filter
def local_date(value) -> str:
    """A date (or the date of a moment, in the active time zone) in the locale's medium
    format: "Dec 3, 2026", "3 Des 2026", "3 gru 2026" (``otomat.lib.dates.medium_date``)."""
    return dates.medium_date(value)


@register.filter
def local_datetime(value) -> str:
    """A moment in the active time zone, in the locale's format, with the zone named:
    "Dec 3, 2026 5:00 PM (Asia/Jakarta)" (``otomat.lib.dates.named_zone_datetime``)."""
    return dates.named_zone_datetime(value)


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
    on a page whose due time names it): "Dec 3, 2026 5:00 PM" (``otomat.lib.dates``)."""
    return dates.local_moment(value)
