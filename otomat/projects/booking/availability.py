"""Free slots of a meeting type: the host's weekly hours, day by day in the host's zone, minus
days off and public holidays, minus the host's confirmed bookings and imported busy times (each
widened by the buffers), minus what is too soon (minimum notice) or too far (the horizon), and
no slots on a day that already has the day's maximum of meetings.

Wall-clock hours become moments per date with ``zoneinfo``, so 09:00 in Warsaw is 08:00 UTC in
winter and 07:00 UTC in summer; a local time that does not exist (the hour skipped in spring)
offers no slot, and one that exists twice (autumn) is its first occurrence.

Cost: two indexed range queries (bookings, busy times) for the whole window, then a merge of
sorted intervals — nothing per slot touches the database.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone

from otomat.projects.booking.models import Booking, BusyTime, DayOff, Host, MeetingType

MAX_RANGE_DAYS = 62  # one request covers at most two months


@dataclass(frozen=True)
class Slot:
    start: datetime  # UTC
    end: datetime


def _local_moment(day: date, at: time, zone) -> datetime | None:
    """``day`` ``at`` in ``zone`` as an aware UTC moment; None when that wall time does not
    exist there (skipped by a DST change)."""
    local = datetime.combine(day, at, tzinfo=zone)  # fold=0: the first of two
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return moment


def _holidays(host: Host, first: date, last: date) -> set[date]:
    days = set(
        DayOff.objects.filter(host=host, date__gte=first, date__lte=last).values_list(
            "date", flat=True
        )
    )
    if host.holiday_country:
        import holidays

        try:
            country = holidays.country_holidays(
                host.holiday_country, years=range(first.year, last.year + 1)
            )
        except NotImplementedError:
            country = {}
        days |= {d for d in country if first <= d <= last}
    return days


class Busy:
    """Sorted, merged busy intervals; ``overlaps(start, end)`` by bisection."""

    def __init__(self, intervals: list[tuple[datetime, datetime]]) -> None:
        merged: list[list[datetime]] = []
        for start, end in sorted(intervals):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [m[0] for m in merged]
        self.ends = [m[1] for m in merged]

    def overlaps(self, start: datetime, end: datetime) -> bool:
        # The last interval starting before ``end``: it is the only one that can reach ``start``.
        i = bisect.bisect_left(self.starts, end) - 1
        return i >= 0 and self.ends[i] > start


def busy_intervals(
    host: Host, start: datetime, end: datetime, *, exclude: Booking | None = None
) -> tuple[list[tuple[datetime, datetime]], dict[date, int]]:
    """(busy intervals near [start, end) — the host's bookings widened by the larger buffer,
    imported busy times by the buffer on each side a new meeting needs — and the number of
    confirmed bookings per local date of the host). A candidate slot is free when it overlaps
    none of them."""
    before = timedelta(minutes=host.buffer_before_minutes)
    after = timedelta(minutes=host.buffer_after_minutes)
    zone = host.zone
    # Between two meetings of the host the larger buffer is kept (the earlier one's "after"
    # and the later one's "before" overlap rather than add up).
    gap = max(before, after)
    bookings = Booking.objects.filter(
        host=host, status=Booking.Status.CONFIRMED, start__lt=end + gap, end__gt=start - gap
    )
    if exclude is not None:
        bookings = bookings.exclude(pk=exclude.pk)
    intervals: list[tuple[datetime, datetime]] = []
    per_day: dict[date, int] = defaultdict(int)
    for b_start, b_end in bookings.values_list("start", "end"):
        intervals.append((b_start - gap, b_end + gap))
        per_day[b_start.astimezone(zone).date()] += 1
    # Imported events are somebody else's time: a meeting keeps its buffers away from them.
    intervals += [
        (b_start - after, b_end + before)
        for b_start, b_end in BusyTime.objects.filter(
            host=host, start__lt=end + after, end__gt=start - before
        ).values_list("start", "end")
    ]
    return intervals, per_day


def free_slots(
    meeting_type: MeetingType,
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    exclude: Booking | None = None,
) -> list[Slot]:
    """The free slots of ``meeting_type`` starting in [start, end) (aware moments; at most
    MAX_RANGE_DAYS apart, else ValueError), in time order. ``exclude``: a booking being
    rescheduled, whose own time does not count as busy."""
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise ValueError(f"At most {MAX_RANGE_DAYS} days at once.")
    host = meeting_type.host
    now = now or timezone.now()
    zone = host.zone
    duration = timedelta(minutes=meeting_type.duration_minutes)
    step = timedelta(minutes=meeting_type.slot_step_minutes)
    earliest = max(start, now + timedelta(minutes=host.min_notice_minutes))
    latest = min(end, now + timedelta(days=host.horizon_days))
    if earliest >= latest:
        return []
    hours: dict[int, list[tuple[time, time]]] = defaultdict(list)
    for weekday, h_start, h_end in host.hours.values_list("weekday", "start", "end"):
        hours[weekday].append((h_start, h_end))
    if not hours:
        return []
    first_day = earliest.astimezone(zone).date()
    last_day = latest.astimezone(zone).date()
    days_off = _holidays(host, first_day, last_day)
    # Whole local days, so that the daily cap counts the day's earlier meetings too.
    window_start = datetime.combine(first_day, time(0), tzinfo=zone).astimezone(UTC)
    window_end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=zone)
    intervals, per_day = busy_intervals(
        host, window_start, window_end.astimezone(UTC) + duration, exclude=exclude
    )
    busy = Busy(intervals)
    cap = host.max_per_day
    slots: list[Slot] = []
    day = first_day
    while day <= last_day:
        if day not in days_off and not (cap and per_day.get(day, 0) >= cap):
            for h_start, h_end in sorted(hours.get(day.weekday(), ())):
                slots += _day_slots(
                    day, h_start, h_end, zone, duration, step, earliest, latest, busy
                )
        day += timedelta(days=1)
    return slots


def _day_slots(day, h_start, h_end, zone, duration, step, earliest, latest, busy) -> list[Slot]:
    found = []
    interval_end = _local_moment(day, h_end, zone)
    cursor = datetime.combine(day, h_start)
    limit = datetime.combine(day, h_end)
    while cursor + duration <= limit:
        moment = _local_moment(day, cursor.time(), zone)
        cursor += step
        if moment is None:
            continue
        slot_end = moment + duration
        if interval_end is not None and slot_end > interval_end:
            continue  # a DST change inside the interval made it shorter
        if moment < earliest or moment >= latest or busy.overlaps(moment, slot_end):
            continue
        found.append(Slot(moment, slot_end))
    return found


def is_free(
    meeting_type: MeetingType,
    start: datetime,
    *,
    now: datetime | None = None,
    exclude: Booking | None = None,
) -> bool:
    """Whether ``start`` is one of the meeting type's free slots right now."""
    window_start = start - timedelta(days=1)
    window_end = start + timedelta(days=1)
    return any(
        slot.start == start
        for slot in free_slots(meeting_type, window_start, window_end, now=now, exclude=exclude)
    )
