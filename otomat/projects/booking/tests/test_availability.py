"""Free slots from the host's rules: weekly hours in the host's zone across DST, buffers,
minimum notice, the daily cap, days off and public holidays, bookings and imported busy
times."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from otomat.projects.booking.availability import MAX_RANGE_DAYS, free_slots, is_free
from otomat.projects.booking.models import (
    Booking,
    BusyTime,
    DayOff,
    ExternalCalendar,
    WeeklyHours,
)

WARSAW = ZoneInfo("Europe/Warsaw")
MONDAY = date(2027, 1, 11)  # winter: Warsaw is UTC+1


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=WARSAW)


def day_slots(meeting_type, day: date, **kwargs):
    start = at(day, 0)
    return [
        s.start.astimezone(WARSAW).strftime("%H:%M")
        for s in free_slots(
            meeting_type,
            start,
            start + timedelta(days=1),
            now=kwargs.pop("now", at(day, 0) - timedelta(days=1)),
            **kwargs,
        )
    ]


def booked(call, start: datetime, minutes: int = 60) -> Booking:
    return Booking.objects.create(
        meeting_type=call,
        host=call.host,
        start=start.astimezone(UTC),
        end=(start + timedelta(minutes=minutes)).astimezone(UTC),
        attendee_name="Ann",
        attendee_email="ann@example.com",
    )


def test_it_offers_the_working_day_in_steps(call):
    slots = day_slots(call, MONDAY)
    assert slots[0] == "09:00" and slots[-1] == "16:00"
    assert len(slots) == 15  # 09:00, 09:30 … 16:00: a 60-minute call ends by 17:00
    assert day_slots(call, MONDAY + timedelta(days=5)) == []  # Saturday


def test_several_intervals_a_day(call, host):
    WeeklyHours.objects.filter(host=host, weekday=0).delete()
    WeeklyHours.objects.create(host=host, weekday=0, start=time(9), end=time(11))
    WeeklyHours.objects.create(host=host, weekday=0, start=time(14), end=time(15, 30))
    assert day_slots(call, MONDAY) == ["09:00", "09:30", "10:00", "14:00", "14:30"]


def test_the_hours_are_wall_clock_across_dst(call):
    # 2027-03-28 Warsaw moves to summer time: 09:00 is 08:00 UTC the Friday before, 07:00 after.
    friday, monday = date(2027, 3, 26), date(2027, 3, 29)
    now = datetime(2027, 3, 1, tzinfo=UTC)
    before = free_slots(call, at(friday, 0), at(friday, 23), now=now)
    after = free_slots(call, at(monday, 0), at(monday, 23), now=now)
    assert before[0].start == datetime(2027, 3, 26, 8, tzinfo=UTC)
    assert after[0].start == datetime(2027, 3, 29, 7, tzinfo=UTC)
    assert len(before) == len(after) == 15


def test_a_night_shift_skips_the_hour_that_does_not_exist(call, host):
    # Sunday 2027-03-28 02:00–03:00 does not exist in Warsaw; 01:00–04:00 leaves 01:00 and 03:00.
    sunday = date(2027, 3, 28)
    WeeklyHours.objects.create(host=host, weekday=6, start=time(1), end=time(4))
    slots = free_slots(call, at(sunday, 0), at(sunday, 12), now=datetime(2027, 3, 1, tzinfo=UTC))
    local = [s.start.astimezone(WARSAW).strftime("%H:%M") for s in slots]
    assert "02:00" not in local and "02:30" not in local
    assert all(s.end - s.start == timedelta(hours=1) for s in slots)
    assert "01:00" in local and "03:00" in local


def test_buffers_keep_meetings_apart(call, host):
    host.buffer_after_minutes = 30
    host.save()
    booked(call, at(MONDAY, 11))
    slots = day_slots(call, MONDAY)
    # 11:00–12:00 taken; with 30 minutes between meetings, 10:00 (ends 11:00) and 12:00 go.
    assert "09:30" in slots and "10:00" not in slots and "12:00" not in slots
    assert "12:30" in slots


def test_buffers_around_an_imported_event(call, host):
    host.buffer_before_minutes = 15
    host.save()
    cal = ExternalCalendar.objects.create(host=host, name="Google", url="https://x.example/a.ics")
    BusyTime.objects.create(
        calendar=cal, host=host, start=at(MONDAY, 12).astimezone(UTC), end=at(MONDAY, 13)
    )
    slots = day_slots(call, MONDAY)
    assert "11:00" in slots  # ends 12:00, when the event starts: no buffer after asked for
    assert "11:30" not in slots and "12:30" not in slots
    assert "13:00" not in slots  # needs 15 free minutes before it
    assert "13:30" in slots


def test_minimum_notice(call, host):
    host.min_notice_minutes = 120
    host.save()
    slots = day_slots(call, MONDAY, now=at(MONDAY, 10, 10))
    assert slots[0] == "12:30"


def test_the_horizon(call, host):
    host.horizon_days = 3
    host.save()
    now = at(MONDAY, 8)
    assert (
        free_slots(
            call, at(MONDAY + timedelta(days=4), 0), at(MONDAY + timedelta(days=5), 0), now=now
        )
        == []
    )


def test_the_daily_cap_closes_a_full_day(call, host):
    host.max_per_day = 2
    host.save()
    booked(call, at(MONDAY, 9))
    assert day_slots(call, MONDAY)  # one of two
    booked(call, at(MONDAY, 15))
    assert day_slots(call, MONDAY) == []
    assert day_slots(call, MONDAY + timedelta(days=1))  # Tuesday is free


def test_the_daily_cap_counts_the_mornings_meetings_too(call, host):
    host.max_per_day = 1
    host.save()
    booked(call, at(MONDAY, 9))
    assert day_slots(call, MONDAY, now=at(MONDAY, 12)) == []


def test_a_cancelled_booking_frees_its_slot(call):
    b = booked(call, at(MONDAY, 10))
    assert "10:00" not in day_slots(call, MONDAY)
    b.status = Booking.Status.CANCELLED
    b.save()
    assert "10:00" in day_slots(call, MONDAY)


def test_days_off_and_public_holidays(call, host):
    DayOff.objects.create(host=host, date=MONDAY, reason="Away")
    assert day_slots(call, MONDAY) == []
    host.holiday_country = "PL"
    host.save()
    epiphany = date(2027, 1, 6)  # Wednesday, a public holiday in Poland
    assert day_slots(call, epiphany) == []
    assert day_slots(call, epiphany + timedelta(days=1))


def test_an_imported_busy_time_blocks_its_slots(call, host):
    cal = ExternalCalendar.objects.create(host=host, name="Google", url="https://x.example/a.ics")
    BusyTime.objects.create(calendar=cal, host=host, start=at(MONDAY, 10), end=at(MONDAY, 10, 45))
    slots = day_slots(call, MONDAY)
    assert "09:00" in slots and "09:30" not in slots and "10:00" not in slots
    assert "10:30" not in slots and "11:00" in slots


def test_another_hosts_busy_times_do_not_count(call, host, cast):
    from otomat.projects.booking.models import Host

    other = Host.objects.create(user=cast.staff)
    cal = ExternalCalendar.objects.create(host=other, name="Theirs", url="https://x.example/b.ics")
    BusyTime.objects.create(calendar=cal, host=other, start=at(MONDAY, 9), end=at(MONDAY, 17))
    assert len(day_slots(call, MONDAY)) == 15


def test_is_free_is_exactly_the_offered_starts(call):
    now = at(MONDAY, 0) - timedelta(days=1)
    assert is_free(call, at(MONDAY, 9, 30), now=now)
    assert not is_free(call, at(MONDAY, 9, 10), now=now)  # not on the step
    assert not is_free(call, at(MONDAY, 16, 30), now=now)  # would end after 17:00
    assert not is_free(call, at(MONDAY, 7), now=now)


def test_a_range_is_bounded(call):
    with pytest.raises(ValueError):
        free_slots(call, at(MONDAY, 0), at(MONDAY, 0) + timedelta(days=MAX_RANGE_DAYS + 1))


def test_now_defaults_to_the_clock(call):
    with time_machine.travel(at(MONDAY, 16, 10), tick=False):
        start = at(MONDAY, 0)
        assert free_slots(call, start, start + timedelta(days=1)) == []  # the day is over
