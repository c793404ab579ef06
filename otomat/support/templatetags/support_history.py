"""``{{ event|event_text }}``: a ticket event's detail in the reader's language
(``otomat.support.history``)."""

from __future__ import annotations

from django import template

from otomat.support import history

register = template.Library()


@register.filter
def event_text(event) -> str:
    return history.event_text(event)
