"""External calendars read by iCal URL from a local server: their busy time blocks a slot,
a conditional GET keeps what was read, and a calendar that fails or is hostile keeps the last
good busy times with a clear stored reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from otomat.projects.booking import calendars, services
from otomat.projects.booking.availability import free_slots
from otomat.projects.booking.models import BusyTime, ExternalCalendar
from otomat.projects.booking.tasks import refresh_calendars_task

WARSAW = ZoneInfo("Europe/Warsaw")
MONDAY = date(2027, 1, 11)
NOW = datetime(2027, 1, 8, 10, tzinfo=UTC)

BUSY_MONDAY_10 = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Google Inc//Google Calendar 70.9054//EN\r
BEGIN:VEVENT\r
UID:dentist@google.com\r
DTSTAMP:20270101T000000Z\r
DTSTART;TZID=Europe/Warsaw:20270111T100000\r
DTEND;TZID=Europe/Warsaw:20270111T110000\r
SUMMARY:Dentist\r
END:VEVENT\r
END:VCALENDAR\r
"""


def at(hour, minute=0, day=MONDAY):
    return datetime.combine(day, time(hour, minute), tzinfo=WARSAW).astimezone(UTC)


@pytest.fixture(autouse=True)
def local_fetch(settings):
    settings.HTTP_ALLOW_PRIVATE = True  # the calendars come from a server on 127.0.0.1


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def monday_starts(call):
    start = datetime.combine(MONDAY, time(0), tzinfo=WARSAW)
    return [s.start for s in free_slots(call, start, start + timedelta(days=1), now=NOW)]


def test_an_external_busy_time_blocks_a_slot(call, host, cast, calendar_server, frozen):
    url = calendar_server.serve("/google.ics", BUSY_MONDAY_10, headers={"ETag": '"v1"'})
    calendar = services.add_calendar(host, actor=cast.owner, name="Google", url=url)
    assert at(10) in monday_starts(call)
    assert calendars.refresh(calendar)
    calendar.refresh_from_db()
    assert calendar.last_error == "" and calendar.busy_count == 1 and calendar.etag == '"v1"'
    starts = monday_starts(call)
    assert at(10) not in starts and at(9, 30) not in starts and at(10, 30) not in starts
    assert at(9) in starts and at(11) in starts
    with pytest.raises(services.SlotTaken):
        services.book(call, at(10), name="Ann", email="ann@example.com", tz="UTC", now=NOW)


def test_the_schedule_reads_due_calendars_once(call, host, cast, calendar_server, settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    url = calendar_server.serve("/google.ics", BUSY_MONDAY_10, headers={"ETag": '"v1"'})
    services.add_calendar(host, actor=cast.owner, name="Google", url=url)
    with time_machine.travel(NOW, tick=False):
        result = refresh_calendars_task.enqueue()
        assert result.return_value == 1
        assert calendars.refresh_due() == 0  # just read: not due
    assert BusyTime.objects.count() == 1
    with time_machine.travel(NOW + timedelta(minutes=16), tick=False):
        assert calendars.refresh_due() == 1  # due again: a conditional GET, 304
    assert calendar_server.requests[-1]["headers"].get("If-None-Match") == '"v1"'
    assert BusyTime.objects.count() == 1  # the 304 kept what was read


@pytest.mark.parametrize(
    "body, status, reason",
    [
        (b"<html>Sign in to Google</html>", 200, "not an iCalendar"),
        (b"", 404, "HTTP 404"),
        (
            b"BEGIN:VCALENDAR\r\n" + b"X:" + b"y" * (6 * 1024 * 1024),
            200,
            "more than the 5,242,880 allowed",
        ),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:19000101T000000Z\r\n"
            b"DTEND:19000101T000100Z\r\nRRULE:FREQ=HOURLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            200,
            "steps",
        ),
    ],
)
def test_a_bad_calendar_keeps_the_last_good_read(
    call, host, cast, calendar_server, frozen, body, status, reason
):
    url = calendar_server.serve("/cal.ics", BUSY_MONDAY_10)
    calendar = services.add_calendar(host, actor=cast.owner, name="Google", url=url)
    assert calendars.refresh(calendar)
    calendar_server.serve("/cal.ics", body, status=status)
    with time_machine.travel(NOW + timedelta(minutes=20), tick=False):
        assert not calendars.refresh(calendar)
    calendar.refresh_from_db()
    assert reason in calendar.last_error
    assert calendar.last_success_at == NOW
    assert BusyTime.objects.filter(calendar=calendar).count() == 1  # still blocks Monday 10:00
    assert at(10) not in monday_starts(call)


def test_a_calendar_on_an_inner_address_is_refused_in_production(
    host, cast, calendar_server, settings, frozen
):
    settings.HTTP_ALLOW_PRIVATE = False
    url = calendar_server.serve("/cal.ics", BUSY_MONDAY_10)
    calendar = services.add_calendar(host, actor=cast.owner, name="Sneaky", url=url)
    assert not calendars.refresh(calendar)
    calendar.refresh_from_db()
    assert "loopback" in calendar.last_error
    assert calendar_server.requests == []


def test_the_hosts_page_shows_the_last_fetch_and_reads_on_demand(
    client, call, host, cast, calendar_server, frozen
):
    url = calendar_server.serve("/cal.ics", b"garbage")
    calendar = services.add_calendar(host, actor=cast.owner, name="Booking.com", url=url)
    client.force_login(cast.owner)
    client.post(f"/projects/booking/host/calendars/{calendar.pk}/", {"action": "refresh"})
    page = client.get("/projects/booking/host/calendars/").content.decode()
    assert "Booking.com" in page and "not an iCalendar" in page
    calendar_server.serve("/cal.ics", BUSY_MONDAY_10)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        client.post(f"/projects/booking/host/calendars/{calendar.pk}/", {"action": "refresh"})
    calendar.refresh_from_db()
    assert calendar.last_error == "" and calendar.busy_count == 1
    # Another host's calendar is a 404, and removing takes its busy times with it.
    client.force_login(cast.staff)
    assert (
        client.post(
            f"/projects/booking/host/calendars/{calendar.pk}/", {"action": "remove"}
        ).status_code
        == 404
    )
    client.force_login(cast.owner)
    client.post(f"/projects/booking/host/calendars/{calendar.pk}/", {"action": "remove"})
    assert not ExternalCalendar.objects.exists() and not BusyTime.objects.exists()
