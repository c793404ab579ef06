"""``{{ moment|zoned }}`` for deadlines (the time with its zone named) and
``{{ day|medium_date }}`` for dates, in the reader's language and time zone
(``otomat.lib.dates``)."""

from __future__ import annotations

from django import template

from otomat.lib import dates

register = template.Library()


@register.filter
def zoned(value) -> str:
    return dates.zoned_datetime(value)


@register.filter
def medium_date(value) -> str:
    return dates.medium_date(value)
