"""Times on booking pages and mails, in the active time zone with the zone named."""

from __future__ import annotations

from babel.dates import format_date, format_time
from django import template
from django.utils import timezone, translation

from otomat.lib import dates

register = template.Library()


def _locale() -> str:
    return (translation.get_language() or "en").replace("-", "_")


@register.filter
def zoned(value) -> str:
    """ "5 gru 2026, 14:00 CET" """
    return dates.zoned_datetime(value)


@register.filter
def clock(value) -> str:
    """The time of day of a moment in the active zone: "14:00", "2:00 PM"."""
    if not value:
        return ""
    return format_time(timezone.localtime(value).time(), "short", locale=_locale())


@register.filter
def long_day(value) -> str:
    """The weekday and date of a moment (or a date) in the active zone: "poniedziałek, 11 sty"."""
    if not value:
        return ""
    day = timezone.localtime(value).date() if hasattr(value, "hour") else value
    return format_date(day, "EEEE, d MMM y", locale=_locale())


@register.filter
def zone_label(value) -> str:
    """The active zone's name at that moment: "WIB", "CET", "America/Sao_Paulo"."""
    if not value:
        return ""
    return dates.zone_label(timezone.localtime(value))


@register.filter
def translated(meeting_type, field: str = "name") -> str:
    """A meeting type's ``name`` or ``description`` in the active language."""
    return meeting_type.text(field, (translation.get_language() or "en")[:2])
