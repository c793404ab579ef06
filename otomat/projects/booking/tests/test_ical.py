"""Reading external calendars: events, recurrences with exceptions and overrides, all-day and
floating times, free and cancelled events — and hostile input (huge, malformed, nested,
unbounded or costly recurrences, thousands of events) refused with a clear reason, quickly."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from otomat.projects.booking import ical

WARSAW = ZoneInfo("Europe/Warsaw")
WINDOW = (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC))


def cal(*events: str) -> bytes:
    body = "\r\n".join(
        ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", *events, "END:VCALENDAR"]
    )
    return body.encode()


def event(uid: str, *lines: str) -> str:
    return "\r\n".join(
        ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261201T000000Z", *lines, "END:VEVENT"]
    )


def read(data: bytes, window=WINDOW):
    return ical.busy_times(data, zone=WARSAW, window=window)


def test_a_plain_event_in_its_zone():
    busy = read(
        cal(
            event(
                "a",
                "DTSTART;TZID=Europe/Warsaw:20270111T100000",
                "DTEND;TZID=Europe/Warsaw:20270111T113000",
            )
        )
    )
    assert busy == [
        (datetime(2027, 1, 11, 9, tzinfo=UTC), datetime(2027, 1, 11, 10, 30, tzinfo=UTC))
    ]


def test_utc_floating_all_day_and_duration():
    busy = read(
        cal(
            event("u", "DTSTART:20270112T080000Z", "DURATION:PT45M"),
            event("f", "DTSTART:20270113T100000", "DTEND:20270113T110000"),  # floating: host zone
            event("d", "DTSTART;VALUE=DATE:20270114", "DTEND;VALUE=DATE:20270115"),
        )
    )
    assert (datetime(2027, 1, 12, 8, tzinfo=UTC), datetime(2027, 1, 12, 8, 45, tzinfo=UTC)) in busy
    assert (datetime(2027, 1, 13, 9, tzinfo=UTC), datetime(2027, 1, 13, 10, tzinfo=UTC)) in busy
    assert (datetime(2027, 1, 13, 23, tzinfo=UTC), datetime(2027, 1, 14, 23, tzinfo=UTC)) in busy


def test_free_cancelled_and_out_of_window_events_are_not_busy():
    busy = read(
        cal(
            event("t", "DTSTART:20270112T080000Z", "DTEND:20270112T090000Z", "TRANSP:TRANSPARENT"),
            event("c", "DTSTART:20270112T100000Z", "DTEND:20270112T110000Z", "STATUS:CANCELLED"),
            event("o", "DTSTART:20260112T100000Z", "DTEND:20260112T110000Z"),
            event(
                "booking-5b1d1c8e-9c1e-4c55-8d55-1f0c7a1c2b3d@otomat",
                "DTSTART:20270112T120000Z",
                "DTEND:20270112T130000Z",
            ),
        )
    )
    assert busy == []


def test_a_weekly_rule_with_an_exception_and_an_override():
    data = cal(
        event(
            "w",
            "DTSTART;TZID=Europe/Warsaw:20261207T090000",
            "DTEND;TZID=Europe/Warsaw:20261207T100000",
            "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20270301T000000Z",
            "EXDATE;TZID=Europe/Warsaw:20270118T090000",
        ),
        event(
            "w",
            "RECURRENCE-ID;TZID=Europe/Warsaw:20270125T090000",
            "DTSTART;TZID=Europe/Warsaw:20270125T150000",
            "DTEND;TZID=Europe/Warsaw:20270125T160000",
        ),
    )
    starts = sorted(s for s, _ in read(data))
    local = [s.astimezone(WARSAW).strftime("%m-%d %H:%M") for s in starts]
    assert "01-11 09:00" in local and "01-18 09:00" not in local
    assert "01-25 09:00" not in local and "01-25 15:00" in local
    assert "02-22 09:00" in local
    assert len(local) == 7  # Jan 4, 11, 25 (moved), Feb 1, 8, 15, 22: Jan 18 excluded


def test_a_daily_rule_since_long_ago_is_read():
    data = cal(event("d", "DTSTART:20200101T120000Z", "DTEND:20200101T130000Z", "RRULE:FREQ=DAILY"))
    assert len(read(data)) == 59  # every day of January and February 2027


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"hello, world", "not an iCalendar"),
        (b"", "not an iCalendar"),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\nEND:VEVENT\r\nEND:VCALENDAR",
            "DTSTART cannot be read",
        ),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20270101T000000Z", "could not be read"),
        (cal(*["BEGIN:VTODO"] * 10, *["END:VTODO"] * 10).decode().encode(), "nests"),
        (
            cal(*[event(str(n), "DTSTART:20270111T100000Z") for n in range(ical.MAX_EVENTS + 1)]),
            "more than 5,000 events",
        ),
        (
            cal(
                event(
                    "s", "DTSTART:20270111T100000Z", "DTEND:20270111T100001Z", "RRULE:FREQ=SECONDLY"
                )
            ),
            "every second",
        ),
        (
            cal(
                event(
                    "m",
                    "DTSTART:20270111T100000Z",
                    "DTEND:20270111T100100Z",
                    "RRULE:FREQ=MINUTELY;INTERVAL=1",
                )
            ),
            "every second or minute",
        ),
        (
            cal(
                event(
                    "h", "DTSTART:19000101T100000Z", "DTEND:19000101T110000Z", "RRULE:FREQ=HOURLY"
                )
            ),
            "steps",
        ),
        (
            cal(
                event(
                    "h2", "DTSTART:20270101T000000Z", "DTEND:20270101T000500Z", "RRULE:FREQ=HOURLY"
                )
            ),
            "repeats more than",
        ),
        (
            cal(event("r", "DTSTART:20270111T100000Z", "RRULE:FREQ=WHENEVER")),
            "RRULE cannot be read",
        ),
        (
            cal(
                event(
                    "r2",
                    "DTSTART:20270111T100000Z",
                    "DTEND:20270111T110000Z",
                    "RRULE:FREQ=WEEKLY;BYDAY=XX",
                )
            ),
            "RRULE cannot be read|repeat rule",
        ),
    ],
)
def test_hostile_calendars_are_refused_with_a_reason(data, reason):
    started = time.monotonic()
    with pytest.raises(ical.CalendarRefused, match=reason):
        read(data)
    assert time.monotonic() - started < 30  # bounded, never hanging (generous: shared CPUs)


def test_many_busy_events_together_are_refused():
    hourly = [
        event(
            f"e{n}",
            f"DTSTART:202701{1 + n % 28:02d}T{n % 24:02d}0000Z",
            "DTEND:20270201T000000Z",
            "RRULE:FREQ=DAILY;COUNT=50",
        )
        for n in range(500)
    ]
    with pytest.raises(ical.CalendarRefused, match=r"busy times|steps"):
        read(cal(*hourly))


def test_a_rule_that_never_yields_is_stopped_in_time():
    """FREQ=DAILY on February 30th has no occurrence: dateutil would look until the year
    9999. The child process is stopped and the reason given."""
    data = cal(
        event(
            "x",
            "DTSTART:20270101T100000Z",
            "DTEND:20270101T110000Z",
            "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
        )
    )
    started = time.monotonic()
    with pytest.raises(ical.CalendarRefused, match="longer than"):
        ical.read_bounded(data, zone_name="Europe/Warsaw", window=WINDOW, seconds=2)
    assert time.monotonic() - started < 20


def test_read_bounded_gives_the_same_answer():
    data = cal(event("a", "DTSTART:20270112T080000Z", "DURATION:PT45M"))
    assert ical.read_bounded(data, zone_name="Europe/Warsaw", window=WINDOW) == read(data)
    with pytest.raises(ical.CalendarRefused, match="not an iCalendar"):
        ical.read_bounded(b"nope", zone_name="Europe/Warsaw", window=WINDOW)


def test_a_huge_file_is_refused():
    with pytest.raises(ical.CalendarRefused, match="larger"):
        read(b"BEGIN:VCALENDAR\r\n" + b"X" * (ical.MAX_BYTES + 1))


def test_a_long_event_is_cut_to_a_month():
    busy = read(cal(event("l", "DTSTART:20270101T000000Z", "DTEND:20300101T000000Z")))
    assert busy[0][1] - busy[0][0] == timedelta(days=ical.MAX_EVENT_DAYS)
