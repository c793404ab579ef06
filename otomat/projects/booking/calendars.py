"""Import of external calendars' busy times by iCal URL, on a schedule.

Each read fetches the URL through ``otomat.lib.http`` (public addresses only, size-capped,
time-bounded; a conditional GET with the last ETag/Last-Modified), reads it with
``ical.read_bounded`` for the window from yesterday to the host's horizon, and replaces the
calendar's busy times in one transaction. A refused or failed read keeps the busy times of the
last good read (a calendar that cannot be read for an hour should not free the host's whole
week) and stores the reason in ``last_error``, shown on the host's calendars page.

Claims are conditional updates (``last_fetch_at`` moves only if nobody else moved it), so two
workers never read one calendar at the same time.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from otomat.lib import http
from otomat.projects.booking import ical
from otomat.projects.booking.models import BusyTime, ExternalCalendar

log = logging.getLogger("otomat.booking")
REFRESH_MINUTES = 15
FETCH_TIMEOUT = 15.0


def _window(host, now):
    return now - timedelta(days=1), now + timedelta(days=host.horizon_days + 1)


def refresh(calendar: ExternalCalendar, *, now=None) -> bool:
    """Read ``calendar`` now; True when its busy times were replaced (or unchanged: 304)."""
    now = now or timezone.now()
    previous = calendar.last_fetch_at
    claimed = ExternalCalendar.objects.filter(pk=calendar.pk, last_fetch_at=previous).update(
        last_fetch_at=now
    )
    if not claimed:
        return False
    calendar.last_fetch_at = now
    host = calendar.host
    headers = {}
    if calendar.etag:
        headers["If-None-Match"] = calendar.etag
    if calendar.last_modified:
        headers["If-Modified-Since"] = calendar.last_modified
    try:
        response = http.fetch(
            calendar.url,
            max_bytes=ical.MAX_BYTES,
            timeout=FETCH_TIMEOUT,
            headers=headers,
        )
        if response.status == 304:
            _succeeded(calendar, now=now, busy=None, response=response)
            return True
        if not response.ok:
            raise ical.CalendarRefused(f"The server answered HTTP {response.status}.")
        busy = ical.read_bounded(
            response.content, zone_name=host.timezone, window=_window(host, now)
        )
    except (http.FetchError, ical.CalendarRefused) as exc:
        _failed(calendar, str(exc))
        return False
    _succeeded(calendar, now=now, busy=busy, response=response)
    return True


def _failed(calendar: ExternalCalendar, reason: str) -> None:
    log.info("external calendar %s not read: %s", calendar.pk, reason)
    ExternalCalendar.objects.filter(pk=calendar.pk).update(last_error=reason[:500])
    calendar.last_error = reason[:500]


@transaction.atomic
def _succeeded(calendar: ExternalCalendar, *, now, busy, response) -> None:
    changes = {"last_error": "", "last_success_at": now}
    if busy is not None:
        BusyTime.objects.filter(calendar=calendar).delete()
        BusyTime.objects.bulk_create(
            [
                BusyTime(calendar=calendar, host_id=calendar.host_id, start=s, end=e)
                for s, e in busy
            ],
            batch_size=1000,
        )
        changes["busy_count"] = len(busy)
        changes["etag"] = response.headers.get("etag", "")[:300]
        changes["last_modified"] = response.headers.get("last-modified", "")[:100]
    ExternalCalendar.objects.filter(pk=calendar.pk).update(**changes)
    for name, value in changes.items():
        setattr(calendar, name, value)


def refresh_due(*, now=None, minutes: int | None = None) -> int:
    """Read every active calendar not read in the last ``minutes`` (REFRESH_MINUTES, or the
    ``minutes`` argument); returns how many were read successfully."""
    now = now or timezone.now()
    minutes = minutes or REFRESH_MINUTES
    before = now - timedelta(minutes=minutes)
    due = ExternalCalendar.objects.filter(is_active=True).filter(
        Q(last_fetch_at__isnull=True) | Q(last_fetch_at__lt=before)
    )
    done = 0
    for calendar in due.select_related("host").order_by("last_fetch_at", "pk")[:200]:
        done += refresh(calendar, now=now)
    return done
