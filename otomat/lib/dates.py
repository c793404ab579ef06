"""Dates and times as a reader reads them: the active language's medium date format ("Dec 5,
2026", "5 Des 2026", "5 gru 2026", never "12/05/2026") and, where a deadline is meant, the
time in the active time zone with that zone named ("Dec 5, 2026, 2:00 PM WIB").

The one place pages format dates: support's ``zoned``/``medium_date`` filters and billing's
``local_date``/``local_datetime``/``local_moment`` filters are thin wrappers of these."""

from __future__ import annotations

from datetime import date, datetime

from babel.dates import format_date, format_time
from django.conf import settings
from django.utils import timezone, translation


def _locale() -> str:
    return (translation.get_language() or settings.LANGUAGE_CODE).replace("-", "_")


def zone_label(moment: datetime) -> str:
    """The zone of an aware ``moment`` as people write it: its abbreviation ("WIB", "CET",
    "UTC") where it has one, else its IANA name ("America/Sao_Paulo" rather than "-03")."""
    abbreviation = moment.tzname() or ""
    if abbreviation[:1].isalpha():
        return abbreviation
    return getattr(moment.tzinfo, "key", abbreviation)


def medium_date(value: date | datetime | None) -> str:
    """A date, or the date of a moment in the active time zone, in the medium format of the
    active language; "" for None."""
    if not value:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return format_date(value, "medium", locale=_locale())


def zoned_datetime(value: datetime | None) -> str:
    """A moment in the active time zone with the zone named: "Dec 5, 2026, 2:00 PM WIB",
    "5 Des 2026 14.00 WIB", "5 gru 2026, 14:00 CET"; "" for None."""
    if not value:
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    locale = _locale()
    day = format_date(local.date(), "medium", locale=locale)
    time = format_time(local.time(), "short", locale=locale)
    separator = " " if locale.startswith("id") else ", "
    label = zone_label(local) if timezone.is_aware(local) else ""
    return f"{day}{separator}{time} {label}".strip()


def local_moment(value: datetime | None) -> str:
    """A moment in the active time zone without the zone, for timelines on a page that names
    it elsewhere: "Dec 3, 2026 5:00 PM", "3 Des 2026 17.00"; "" for None."""
    if not value:
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    locale = _locale()
    day = format_date(local.date(), "medium", locale=locale)
    return f"{day} {format_time(local.time(), 'short', locale=locale)}"


def named_zone_datetime(value: datetime | None) -> str:
    """A moment in the active time zone with the zone's IANA name, as invoices give a due
    time: "Dec 3, 2026 5:00 PM (Asia/Jakarta)"; "" for None."""
    if not value:
        return ""
    zone = timezone.get_current_timezone()
    local = timezone.localtime(value, zone) if timezone.is_aware(value) else value
    return f"{local_moment(local)} ({getattr(zone, 'key', str(zone))})"
