"""The business-hours calendar: concrete SLA cases (weekends, Indonesian and Polish public
holidays, lunch breaks, 24/7, Warsaw DST days) and hypothesis properties over random schedules.
Pure Python: no database, no Django."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from otomat.support.business_hours import END_OF_DAY, BusinessCalendar, Schedule

H = timedelta(hours=1)
JAKARTA, WARSAW = ZoneInfo("Asia/Jakarta"), ZoneInfo("Europe/Warsaw")


def at(tz: ZoneInfo, *args: int) -> datetime:
    """A local wall-clock time (first pass if repeated) as an aware datetime."""
    return datetime(*args, tzinfo=tz)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- Schedule -----------------------------------------------------------------------------


def test_parse_ranges_lists_and_round_trip():
    schedule = Schedule.parse({"mon-fri": "09:00-17:00", "sat": "10:00-14:00"})
    assert schedule.hours[4] == ((time(9), time(17)),)
    assert schedule.hours[5] == ((time(10), time(14)),)
    assert 6 not in schedule.hours
    assert schedule.to_spec() == {"mon-fri": "09:00-17:00", "sat": "10:00-14:00"}
    assert Schedule.parse(schedule.to_spec()) == schedule
    assert schedule.per_week() == 44 * H

    split = Schedule.parse({"MON": "13:00-17:00, 08:00-12:00", "wed,fri": " 8:00 - 12:00 "})
    assert split.hours[0] == ((time(8), time(12)), (time(13), time(17)))
    assert split.to_spec() == {
        "mon": "08:00-12:00, 13:00-17:00",
        "wed": "08:00-12:00",
        "fri": "08:00-12:00",
    }
    assert Schedule.parse({"mon": "08:00-12:00", "mon,tue": "12:00-13:00"}).hours[0][1] == (
        time(12),
        time(13),
    )


def test_always_and_office():
    assert Schedule.parse({"mon-sun": "00:00-24:00"}) == Schedule.always()
    assert Schedule.always().hours[6] == ((time(0), END_OF_DAY),)
    assert Schedule.always().to_spec() == {"mon-sun": "00:00-24:00"}
    assert Schedule.always().per_week() == 168 * H
    assert Schedule.parse({"mon-fri": "09:00-17:00"}) == Schedule.office()
    assert hash(Schedule.office()) == hash(Schedule.parse(Schedule.office().to_spec()))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "empty"),
        ({"mon": ""}, "expected intervals"),
        ({"funday": "09:00-17:00"}, "unknown day"),
        ({"mon-": "09:00-17:00"}, "unknown day"),
        ({"fri-mon": "09:00-17:00"}, "backwards"),
        ({"mon": "9-17"}, "not an interval"),
        ({"mon": "09:00-25:00"}, "invalid time"),
        ({"mon": "24:00-24:00"}, "invalid time"),
        ({"mon": "09:60-17:00"}, "invalid time"),
        ({"mon": "17:00-09:00"}, "must end after"),
        ({"mon": "09:00-09:00"}, "must end after"),
        ({"mon": "09:00-13:00, 12:00-17:00"}, "overlaps"),
        ({"mon-fri": "09:00-13:00", "wed": "12:30-14:00"}, "overlaps"),
    ],
)
def test_parse_rejects_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        Schedule.parse(spec)


def test_constructor_validates_and_copies():
    with pytest.raises(ValueError, match="weekday"):
        Schedule({7: ((time(9), time(17)),)})
    with pytest.raises(ValueError, match="whole-minute"):
        Schedule({0: ((time(9, 0, 30), time(17)),)})
    hours = {0: [(time(9), time(17))], 1: []}
    schedule = Schedule(hours)
    hours[0].append((time(18), time(19)))
    assert schedule.hours == {0: ((time(9), time(17)),)}


# -- BusinessCalendar: concrete cases ------------------------------------------------------


def test_weekend_in_jakarta():
    cal = BusinessCalendar(Schedule.office(), "Asia/Jakarta")
    friday = at(JAKARTA, 2026, 5, 8, 16)
    due = cal.add(friday, 2 * H)
    assert due == at(JAKARTA, 2026, 5, 11, 10) == utc(2026, 5, 11, 3)
    assert due.tzinfo is UTC
    assert cal.between(friday, due) == 2 * H
    # Running out exactly at closing time gives the closing time, not Monday's opening.
    assert cal.add(friday, H) == at(JAKARTA, 2026, 5, 8, 17)


def test_indonesian_independence_day():
    assert holidays.country_holidays("ID", years=2026).get(date(2026, 8, 17)) == "Independence Day"
    plain = BusinessCalendar(Schedule.office(), "Asia/Jakarta")
    cal = BusinessCalendar(Schedule.office(), "Asia/Jakarta", country="ID")
    friday = at(JAKARTA, 2026, 8, 14, 16)  # Monday the 17th is the holiday
    assert plain.add(friday, 2 * H) == at(JAKARTA, 2026, 8, 17, 10)
    assert cal.add(friday, 2 * H) == at(JAKARTA, 2026, 8, 18, 10)
    assert cal.is_holiday(date(2026, 8, 17)) and not cal.is_open(at(JAKARTA, 2026, 8, 17, 10))
    assert cal.between(friday, at(JAKARTA, 2026, 8, 19, 9)) == 9 * H


def test_polish_holidays():
    public = holidays.country_holidays("PL", years=[2026, 2027])
    for day in (
        date(2026, 5, 1),
        date(2026, 5, 3),
        date(2026, 11, 11),
        date(2026, 12, 24),
        date(2027, 1, 1),
    ):
        assert day in public
    cal = BusinessCalendar(Schedule.office(), "Europe/Warsaw", country="PL")
    # Wednesday 11 November (Independence Day): Tuesday 16:00 + 2 h runs into Thursday.
    assert (
        cal.add(at(WARSAW, 2026, 11, 10, 16), 2 * H)
        == at(WARSAW, 2026, 11, 12, 10)
        == utc(2026, 11, 12, 9)
    )
    # Friday 1 May closes the long weekend; 3 May falls on a Sunday, closed anyway.
    assert cal.add(at(WARSAW, 2026, 4, 30, 16), 2 * H) == at(WARSAW, 2026, 5, 4, 10)
    # Christmas Eve (a public holiday since 2025) and Christmas Day.
    assert cal.add(at(WARSAW, 2026, 12, 23, 16), 2 * H) == at(WARSAW, 2026, 12, 28, 10)
    # Across the year boundary and New Year's Day (Friday 1 January 2027).
    start = at(WARSAW, 2026, 12, 30, 16)
    assert cal.add(start, 10 * H) == at(WARSAW, 2027, 1, 4, 10)
    assert cal.between(start, at(WARSAW, 2027, 1, 4, 10)) == 10 * H


def test_explicit_holidays_add_to_public_ones():
    extra = [date(2026, 8, 18)]  # a company day off after Independence Day
    cal = BusinessCalendar(Schedule.office(), "Asia/Jakarta", extra, country="ID")
    assert cal.add(at(JAKARTA, 2026, 8, 14, 16), 2 * H) == at(JAKARTA, 2026, 8, 19, 10)
    only_extra = BusinessCalendar(Schedule.office(), "UTC", [date(2026, 6, 1), date(2026, 6, 2)])
    assert only_extra.add(utc(2026, 5, 29, 16), 2 * H) == utc(2026, 6, 3, 10)
    assert only_extra.next_open(utc(2026, 6, 1, 12)) == utc(2026, 6, 3, 9)


def test_lunch_break():
    cal = BusinessCalendar(Schedule.parse({"mon-fri": "08:00-12:00, 13:00-17:00"}), "UTC")
    assert cal.add(utc(2026, 6, 1, 11), 2 * H) == utc(2026, 6, 1, 14)
    assert cal.add(utc(2026, 6, 1, 11), H) == utc(2026, 6, 1, 12)
    assert cal.between(utc(2026, 6, 1, 11, 30), utc(2026, 6, 1, 13, 30)) == H
    assert not cal.is_open(utc(2026, 6, 1, 12, 30))
    assert cal.is_open(utc(2026, 6, 1, 13)) and not cal.is_open(utc(2026, 6, 1, 17))
    assert cal.next_open(utc(2026, 6, 1, 12, 30)) == utc(2026, 6, 1, 13)


def test_always_open():
    cal = BusinessCalendar(Schedule.always(), "Asia/Jakarta")
    start = datetime(2026, 12, 31, 22, 15, 7, 123, tzinfo=JAKARTA)
    assert cal.add(start, 500 * H) == start + 500 * H
    assert cal.between(start, start + 500 * H) == 500 * H
    assert cal.is_open(start) and cal.next_open(start) == start


def test_start_outside_hours_and_zero_duration():
    cal = BusinessCalendar(Schedule.office(), "UTC")
    assert cal.add(utc(2026, 6, 6, 3), H) == utc(2026, 6, 8, 10)  # Saturday night
    assert cal.add(utc(2026, 6, 8, 7), 30 * timedelta(minutes=1)) == utc(2026, 6, 8, 9, 30)
    assert cal.add(utc(2026, 6, 5, 17), timedelta(0)) == utc(2026, 6, 8, 9)  # Friday closing
    assert cal.add(utc(2026, 6, 5, 12), timedelta(0)) == utc(2026, 6, 5, 12)
    assert cal.between(utc(2026, 6, 6), utc(2026, 6, 8, 9)) == timedelta(0)
    assert cal.between(utc(2026, 6, 9), utc(2026, 6, 8)) == timedelta(0)
    # Any aware zone is accepted; results come back in UTC.
    assert cal.add(at(JAKARTA, 2026, 6, 8, 16), H) == utc(2026, 6, 8, 10)


def test_errors():
    cal = BusinessCalendar(Schedule.office(), "UTC")
    with pytest.raises(ValueError, match="negative"):
        cal.add(utc(2026, 6, 8), -H)
    with pytest.raises(ValueError, match="naive"):
        cal.add(datetime(2026, 6, 8, 9), H)
    with pytest.raises(ValueError, match="naive"):
        cal.between(utc(2026, 6, 8), datetime(2026, 6, 9))
    for zone in ("Mars/Olympus", "", "Europe", "../etc"):
        with pytest.raises(ValueError, match="time zone"):
            BusinessCalendar(Schedule.office(), zone)
    with pytest.raises(ValueError, match="country"):
        BusinessCalendar(Schedule.office(), "UTC", country="XX")
    with pytest.raises(ValueError, match="country"):
        BusinessCalendar(Schedule.office(), "UTC", country="PL", subdiv="ZZ")
    with pytest.raises(ValueError, match="dates"):
        BusinessCalendar(Schedule.office(), "UTC", [utc(2026, 6, 8)])
    never = BusinessCalendar(Schedule({}), "UTC")
    with pytest.raises(ValueError, match="no open time"):
        never.add(utc(2026, 6, 8), H)
    assert not never.is_open(utc(2026, 6, 8))
    assert never.between(utc(2026, 1, 1), utc(2036, 1, 1)) == timedelta(0)


# -- Daylight saving in Europe/Warsaw: real elapsed time, bounds by the first-shown rule ------


def test_dst_whole_days():
    cal = BusinessCalendar(Schedule.always(), "Europe/Warsaw")
    assert cal.between(at(WARSAW, 2026, 3, 29), at(WARSAW, 2026, 3, 30)) == 23 * H
    assert cal.between(at(WARSAW, 2026, 10, 25), at(WARSAW, 2026, 10, 26)) == 25 * H


def test_dst_night_interval_is_shorter_or_longer():
    cal = BusinessCalendar(Schedule.parse({"sun": "01:00-04:00"}), "Europe/Warsaw")
    spring, autumn = at(WARSAW, 2026, 3, 29), at(WARSAW, 2026, 10, 25)
    assert cal.between(spring, spring + 24 * H) == 2 * H  # 01:00 CET to 04:00 CEST
    assert cal.between(autumn, autumn + 25 * H) == 4 * H  # 01:00 CEST to 04:00 CET
    assert cal.add(spring, 90 * timedelta(minutes=1)) == utc(2026, 3, 29, 1, 30)  # 03:30 CEST
    assert cal.add(autumn, 3 * H) == utc(2026, 10, 25, 2)  # 03:00 CET, an hour after 02:00 CET
    assert cal.between(at(WARSAW, 2026, 3, 22), at(WARSAW, 2026, 3, 23)) == 3 * H  # ordinary Sunday


def test_dst_bounds_in_the_skipped_hour():
    late = BusinessCalendar(Schedule.parse({"sun": "02:30-05:00"}), "Europe/Warsaw")
    spring = at(WARSAW, 2026, 3, 29)
    assert late.next_open(spring) == utc(2026, 3, 29, 1)  # the jump to 03:00 CEST
    assert late.between(spring, spring + 24 * H) == 2 * H
    inside = BusinessCalendar(Schedule.parse({"sun": "02:00-02:30"}), "Europe/Warsaw")
    assert inside.between(spring, spring + 24 * H) == timedelta(0)
    assert inside.next_open(spring) == at(WARSAW, 2026, 4, 5, 2)  # the next Sunday


def test_dst_bounds_in_the_repeated_hour():
    early = BusinessCalendar(Schedule.parse({"sun": "01:00-02:30"}), "Europe/Warsaw")
    autumn = at(WARSAW, 2026, 10, 25)
    assert early.between(autumn, autumn + 25 * H) == 90 * timedelta(minutes=1)
    assert early.is_open(utc(2026, 10, 25, 0, 15))  # 02:15 CEST, first pass
    assert not early.is_open(utc(2026, 10, 25, 1, 15))  # 02:15 CET, second pass
    late = BusinessCalendar(Schedule.parse({"sun": "02:30-05:00"}), "Europe/Warsaw")
    assert late.next_open(autumn) == utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    assert late.between(autumn, autumn + 25 * H) == 210 * timedelta(minutes=1)


def test_dst_office_weekends():
    cal = BusinessCalendar(Schedule.office(), "Europe/Warsaw")
    assert cal.add(at(WARSAW, 2026, 3, 27, 16), 2 * H) == utc(2026, 3, 30, 8)  # 10:00 CEST
    assert cal.add(at(WARSAW, 2026, 10, 23, 16), 2 * H) == utc(2026, 10, 26, 9)  # 10:00 CET
    assert cal.between(at(WARSAW, 2026, 3, 23), at(WARSAW, 2026, 11, 2)) == 32 * 40 * H


def test_long_durations_are_exact():
    # Not a timing assertion: long spans go through the whole-week shortcut, and must agree
    # with `between` and with a walk over every day.
    cal = BusinessCalendar(Schedule.office(), "Europe/Warsaw", country="PL")
    start = at(WARSAW, 2026, 1, 5, 9)
    due = cal.add(start, 2000 * H)
    assert cal.between(start, due) == 2000 * H
    assert due == _day_by_day(cal).add(start, 2000 * H)
    assert date(2026, 12, 1) < due.date() < date(2027, 3, 1)  # 50 weeks plus holidays
    decade = BusinessCalendar(
        Schedule.parse({"mon-fri": "08:00-12:00, 13:00-16:00"}), "Asia/Jakarta", country="ID"
    )
    start = at(JAKARTA, 2026, 1, 1)
    due = decade.add(start, 35 * 52 * 10 * H)
    assert decade.between(start, due) == 35 * 52 * 10 * H
    assert decade.between(start, due + 300 * H) == _day_by_day(decade).between(start, due + 300 * H)


# -- Properties -----------------------------------------------------------------------------


def _day_by_day(cal: BusinessCalendar) -> BusinessCalendar:
    """The same calendar with the whole-week shortcut turned off: an oracle for it."""
    slow = BusinessCalendar(
        cal.schedule, cal.tz.key, cal.holidays, country=cal.country, subdiv=cal.subdiv
    )
    slow._plain_week_end = lambda day, midnight: None  # type: ignore[method-assign]
    return slow


ZONES = [
    "UTC",
    "Asia/Jakarta",
    "Europe/Warsaw",
    "America/New_York",
    "Australia/Lord_Howe",
    "America/Santiago",
]
# Near DST changes (Warsaw, New York, Santiago at midnight, Lord Howe by half an hour).
TRANSITIONS = [utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2026, 3, 8, 7), utc(2026, 11, 1, 6)]
TRANSITIONS += [
    utc(2026, 4, 5, 3),
    utc(2026, 9, 6, 4),
    utc(2026, 4, 4, 15),
    utc(2026, 10, 3, 15, 30),
]


def _quarter(q: int) -> time:
    return END_OF_DAY if q == 96 else time(q // 4, q % 4 * 15)


@st.composite
def schedules(draw) -> Schedule:
    hours = {}
    for day in range(7):
        # Distinct quarter-hour cuts (96 = 24:00) paired up give ordered, disjoint intervals.
        cuts = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
        if pairs := [
            (_quarter(a), _quarter(b)) for a, b in zip(cuts[::2], cuts[1::2], strict=False)
        ]:
            hours[day] = tuple(pairs)
    return Schedule(hours)


instants = st.one_of(
    st.datetimes(datetime(2025, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
    st.builds(
        lambda t, d: t + d, st.sampled_from(TRANSITIONS), st.timedeltas(-2 * 24 * H, 2 * 24 * H)
    ),
)
durations = st.one_of(st.timedeltas(timedelta(0), 12 * H), st.timedeltas(timedelta(0), 800 * H))


@st.composite
def calendars(draw) -> BusinessCalendar:
    anchor = draw(st.sampled_from(TRANSITIONS)).date()
    days_off = draw(st.sets(st.integers(-10, 60), max_size=8))
    country = draw(st.sampled_from([None, None, "PL", "ID"]))
    schedule = draw(schedules())
    return BusinessCalendar(
        schedule,
        draw(st.sampled_from(ZONES)),
        [anchor + n * timedelta(1) for n in days_off],
        country=country,
    )


PROPERTY = settings(max_examples=60, deadline=None)


@PROPERTY
@given(calendars(), instants, durations)
def test_between_inverts_add_and_matches_the_slow_walk(cal, start, duration):
    assume(cal.schedule.per_week())
    due = cal.add(start, duration)
    assert due >= start and due.tzinfo is UTC
    assert cal.between(start, due) == duration
    slow = _day_by_day(cal)
    assert slow.add(start, duration) == due
    assert slow.between(start, due + duration) == cal.between(start, due + duration)


@PROPERTY
@given(
    calendars(),
    instants,
    st.timedeltas(timedelta(0), 40 * 24 * H),
    st.timedeltas(timedelta(0), 40 * 24 * H),
)
def test_between_is_additive(cal, a, ab, bc):
    b, c = a + ab, a + ab + bc
    assert cal.between(a, c) == cal.between(a, b) + cal.between(b, c)
    assert cal.between(c, a) == timedelta(0)


@PROPERTY
@given(calendars(), instants, durations, durations)
def test_add_composes(cal, start, first, second):
    assume(cal.schedule.per_week() and second > timedelta(0))
    assert cal.add(cal.add(start, first), second) == cal.add(start, first + second)


@PROPERTY
@given(calendars(), instants)
def test_next_open(cal, moment):
    assume(cal.schedule.per_week())
    opening = cal.next_open(moment)
    assert opening >= moment and cal.is_open(opening)
    assert cal.between(moment, opening) == timedelta(0)
    assert cal.is_open(moment) == (opening == moment)
    if opening > moment:
        assert not cal.is_open(moment + (opening - moment) / 2)


@PROPERTY
@given(schedules(), st.sampled_from(["UTC", "Asia/Jakarta"]), instants)
def test_is_open_matches_the_wall_clock_without_dst(schedule, zone, moment):
    cal = BusinessCalendar(schedule, zone)
    local = moment.astimezone(ZoneInfo(zone))
    clock = local.time().replace(tzinfo=None)
    intervals = schedule.hours.get(local.weekday(), ())
    expected = any(
        start <= clock and (clock < end or end == END_OF_DAY) for start, end in intervals
    )
    assert cal.is_open(moment) == expected


@PROPERTY
@given(schedules())
def test_spec_round_trip(schedule):
    assume(schedule.hours)
    assert Schedule.parse(schedule.to_spec()) == schedule
