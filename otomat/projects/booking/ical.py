"""iCalendar in and out, with the ``icalendar`` library and dateutil's recurrence rules.

Out: :func:`invitation` (one booking, METHOD:REQUEST or CANCEL, UID stable per booking, SEQUENCE
from the booking) and :func:`feed` (a host's bookings, for their calendar to subscribe to).

In: :func:`busy_times` reads an external calendar's text into busy intervals inside a window,
and refuses hostile input with :class:`CalendarRefused` (a sentence the host can read) instead
of working without end:

- more than ``MAX_BYTES`` (the fetch refuses it first), components nested deeper than
  ``MAX_DEPTH``, more than ``MAX_EVENTS`` events;
- an event whose rule would need more than ``MAX_STEPS_PER_EVENT`` steps to walk (a rule by the
  second since 1900), or yields more than ``MAX_OCCURRENCES_PER_EVENT`` occurrences in the
  window; more than ``MAX_BUSY`` busy times in all, or more than ``MAX_STEPS`` steps in all;
- text that is not iCalendar at all;
- and, since some rules walk for seconds without yielding anything (``FREQ=DAILY;BYMONTH=2;
  BYMONTHDAY=30`` has no occurrence, and dateutil looks for one until the year 9999),
  :func:`read_bounded` reads in a child process that is stopped after ``READ_SECONDS``.

Transparent (free) and cancelled events are not busy; an all-day event is busy for its days in
the host's zone, as is a floating time; EXDATE removes occurrences and RECURRENCE-ID overrides
replace them. Events that are this site's own bookings (the host's calendar subscribed to our
feed and exports it again) are skipped: they are already busy here.
"""

from __future__ import annotations

import multiprocessing
import re
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

import icalendar
from dateutil.rrule import rrulestr
from django.conf import settings
from django.utils import translation

MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 4
MAX_EVENTS = 5_000
MAX_OCCURRENCES_PER_EVENT = 1_000
MAX_STEPS_PER_EVENT = 20_000
MAX_STEPS = 200_000
MAX_BUSY = 20_000
MAX_EVENT_DAYS = 31  # one event longer than this is cut to it
READ_SECONDS = 20.0
PRODID = "-//Otomat//Booking//EN"
# The properties that say when an event is busy: one of them unreadable refuses the calendar
# (guessing could free a busy time).
TIMING = {"DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"}
OWN_UID = re.compile(r"^booking-[0-9a-f-]{36}@otomat$")


class CalendarRefused(Exception):
    """The calendar could not be read or is beyond the limits; the message says which."""


# -- in ----------------------------------------------------------------------------------------


def _prescan(text: str) -> None:
    depth = events = 0
    for line in text.splitlines():
        upper = line[:20].upper()
        if upper.startswith("BEGIN:"):
            depth += 1
            if depth > MAX_DEPTH:
                raise CalendarRefused(
                    f"The calendar nests components deeper than {MAX_DEPTH} levels."
                )
            if upper.startswith("BEGIN:VEVENT"):
                events += 1
                if events > MAX_EVENTS:
                    raise CalendarRefused(
                        f"The calendar has more than {MAX_EVENTS:,} events; it was not read."
                    )
        elif upper.startswith("END:"):
            depth = max(0, depth - 1)


def _as_moment(value, zone) -> datetime:
    """A DTSTART/DTEND/EXDATE value as an aware UTC moment (a date: its midnight in ``zone``;
    a floating time: in ``zone``)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)
    raise CalendarRefused("An event has a start that is not a date or a time.")


def _exdates(event, zone) -> set[datetime]:
    found: set[datetime] = set()
    raw = event.get("EXDATE")
    if raw is None:
        return found
    for group in raw if isinstance(raw, list) else [raw]:
        for item in getattr(group, "dts", []):
            found.add(_as_moment(item.dt, zone))
    return found


def _rdates(event, zone) -> list[datetime]:
    found: list[datetime] = []
    raw = event.get("RDATE")
    if raw is None:
        return found
    for group in raw if isinstance(raw, list) else [raw]:
        for item in getattr(group, "dts", []):
            value = item.dt
            if isinstance(value, tuple):  # a PERIOD: (start, end or duration)
                value = value[0]
            found.append(_as_moment(value, zone))
    return found


class _Budget:
    def __init__(self) -> None:
        self.steps = 0

    def spend(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise CalendarRefused(
                f"The calendar's recurring events need more than {MAX_STEPS:,} steps to "
                "expand; it was not read."
            )


def _occurrences(event, start: datetime, length: timedelta, zone, window, budget) -> list:
    """The starts of ``event``'s occurrences overlapping ``window`` (UTC moments)."""
    w_start, w_end = window
    rule = event.get("RRULE")
    starts: list[datetime] = []
    if rule is None:
        starts = [start]
    else:
        rules = rule if isinstance(rule, list) else [rule]
        # dateutil wants the rule and DTSTART in one zone; walk in UTC for timed events and in
        # the host's zone (then converted) for all-day and floating ones.
        dtstart_value = event.decoded("DTSTART")
        local = not isinstance(dtstart_value, datetime) or dtstart_value.tzinfo is None
        anchor = start.astimezone(zone) if local else start
        for one in rules:
            text = one.to_ical().decode("utf-8", "replace")
            if re.search(r"FREQ=(SECONDLY|MINUTELY)", text, re.I):
                raise CalendarRefused(
                    "An event repeats every second or minute; such calendars are not read."
                )
            # UNTIL must match DTSTART's kind for dateutil: make it UTC (or floating) as needed.
            text = _fix_until(text, local=local)
            try:
                ruleset = rrulestr(text, dtstart=anchor, forceset=True)
            except (ValueError, TypeError, OverflowError):
                raise CalendarRefused("An event has a repeat rule that cannot be read.") from None
            taken = 0
            for steps, occurrence in enumerate(ruleset, start=1):
                if steps > MAX_STEPS_PER_EVENT:
                    raise CalendarRefused(
                        f"An event's repeat rule needs more than {MAX_STEPS_PER_EVENT:,} steps "
                        "to reach the weeks that matter; the calendar was not read."
                    )
                budget.spend()
                moment = occurrence.astimezone(UTC)
                if moment >= w_end:
                    break
                if moment + length > w_start:
                    starts.append(moment)
                    taken += 1
                    if taken > MAX_OCCURRENCES_PER_EVENT:
                        raise CalendarRefused(
                            f"An event repeats more than {MAX_OCCURRENCES_PER_EVENT:,} times "
                            "in the weeks read; the calendar was not read."
                        )
    starts += [r for r in _rdates(event, zone) if w_start - length < r < w_end]
    excluded = _exdates(event, zone)
    return sorted({s for s in starts if s not in excluded})


def _fix_until(text: str, *, local: bool) -> str:
    def repl(match: re.Match) -> str:
        value = match.group(1)
        if local:
            return "UNTIL=" + value.rstrip("Zz")
        if len(value) == 8:  # a date
            return f"UNTIL={value}T235959Z"
        return "UNTIL=" + (value if value.upper().endswith("Z") else value + "Z")

    return re.sub(r"UNTIL=([0-9TZz]+)", repl, text)


def busy_times(
    data: bytes, *, zone, window: tuple[datetime, datetime]
) -> list[tuple[datetime, datetime]]:
    """The busy intervals in ``window`` (UTC moments) of the iCalendar ``data``; raises
    :class:`CalendarRefused` for input that is not iCalendar or passes the module's limits."""
    if len(data) > MAX_BYTES:
        raise CalendarRefused(f"The calendar is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    text = data.decode("utf-8", errors="replace")
    if "BEGIN:VCALENDAR" not in text[:2000].upper():
        raise CalendarRefused("This is not an iCalendar file (no BEGIN:VCALENDAR).")
    _prescan(text)
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception as exc:  # the library raises ValueError, KeyError, IndexError …
        raise CalendarRefused(f"The calendar could not be read ({type(exc).__name__}).") from None
    budget = _Budget()
    w_start, w_end = window
    overrides: dict[str, set[datetime]] = {}
    events = []
    try:
        for event in calendar.walk("VEVENT"):
            uid = str(event.get("UID", ""))
            if OWN_UID.match(uid):
                continue
            if event.get("RECURRENCE-ID") is not None:
                overrides.setdefault(uid, set()).add(
                    _as_moment(event.decoded("RECURRENCE-ID"), zone)
                )
            events.append((uid, event))
        found: list[tuple[datetime, datetime]] = []
        for uid, event in events:
            broken = [name for name, _msg in getattr(event, "errors", []) if name in TIMING]
            if broken:
                raise CalendarRefused(
                    f"An event's {broken[0]} cannot be read; the calendar was not read."
                )
            if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
                continue
            if str(event.get("STATUS", "")).upper() == "CANCELLED":
                continue
            if event.get("DTSTART") is None:
                continue
            raw_start = event.decoded("DTSTART")
            start = _as_moment(raw_start, zone)
            if event.get("DTEND") is not None:
                end = _as_moment(event.decoded("DTEND"), zone)
            elif event.get("DURATION") is not None:
                end = start + event.decoded("DURATION")
            elif isinstance(raw_start, datetime):
                end = start  # RFC 5545: a moment, busy for no time
            else:
                end = start + timedelta(days=1)
            length = min(max(end - start, timedelta(0)), timedelta(days=MAX_EVENT_DAYS))
            if length <= timedelta(0):
                continue
            is_override = event.get("RECURRENCE-ID") is not None
            skipped = set() if is_override else overrides.get(uid, set())
            for occurrence in _occurrences(event, start, length, zone, (w_start, w_end), budget):
                if occurrence in skipped or occurrence + length <= w_start:
                    continue
                found.append((occurrence, occurrence + length))
                if len(found) > MAX_BUSY:
                    raise CalendarRefused(
                        f"The calendar has more than {MAX_BUSY:,} busy times in the weeks "
                        "read; it was not read."
                    )
    except CalendarRefused:
        raise
    except Exception as exc:  # a value the library decodes lazily and fails on
        raise CalendarRefused(
            f"An event of the calendar could not be read ({type(exc).__name__})."
        ) from None
    return found


def _child(conn, data: bytes, zone_name: str, window) -> None:
    try:
        found = busy_times(data, zone=zoneinfo.ZoneInfo(zone_name), window=window)
        conn.send(("ok", found))
    except CalendarRefused as exc:
        conn.send(("refused", str(exc)))
    except Exception as exc:
        conn.send(("refused", f"The calendar could not be read ({type(exc).__name__})."))
    finally:
        conn.close()


def read_bounded(
    data: bytes,
    *,
    zone_name: str,
    window: tuple[datetime, datetime],
    seconds: float | None = None,
) -> list[tuple[datetime, datetime]]:
    """:func:`busy_times` in a child process stopped after ``seconds`` (``READ_SECONDS``):
    the same answer or :class:`CalendarRefused`, and never longer than that."""
    seconds = READ_SECONDS if seconds is None else seconds
    context = multiprocessing.get_context("spawn")  # no fork of a threaded server
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(theirs, data, zone_name, window), daemon=True)
    child.start()
    theirs.close()
    try:
        if not ours.poll(seconds):
            raise CalendarRefused(
                f"Reading the calendar took longer than {seconds:g} s (its repeat rules are "
                "too costly); it was not read."
            )
        try:
            outcome, value = ours.recv()
        except EOFError:
            raise CalendarRefused("Reading the calendar failed; it was not read.") from None
    finally:
        ours.close()
        if child.is_alive():
            child.terminate()
        child.join(5)
    if outcome != "ok":
        raise CalendarRefused(value)
    return value


# -- out ---------------------------------------------------------------------------------------


def _event(booking, *, cancelled: bool = False) -> icalendar.Event:
    host = booking.host.user
    meeting = booking.meeting_type
    with translation.override(booking.attendee_language):
        summary = f"{meeting.text('name', booking.attendee_language)} · {booking.attendee_name}"
    event = icalendar.Event()
    event.add("uid", booking.uid)
    event.add("sequence", booking.sequence)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", booking.start.astimezone(UTC))
    event.add("dtend", booking.end.astimezone(UTC))
    event.add("summary", summary)
    manage = f"{settings.BASE_URL}/projects/booking/manage/{booking.manage_token}/"
    lines = []
    if booking.video_url:
        lines.append(booking.video_url)
        event.add("location", booking.video_url)
        event.add("url", booking.video_url)
    lines.append(manage)
    if booking.message:
        lines.append(booking.message)
    event.add("description", "\n\n".join(lines))
    organizer = icalendar.vCalAddress(f"mailto:{host.email}")
    organizer.params["cn"] = icalendar.vText(str(host))
    event.add("organizer", organizer)
    attendee = icalendar.vCalAddress(f"mailto:{booking.attendee_email}")
    attendee.params["cn"] = icalendar.vText(booking.attendee_name)
    attendee.params["role"] = icalendar.vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = icalendar.vText("ACCEPTED")
    attendee.params["rsvp"] = icalendar.vText("FALSE")
    event.add("attendee", attendee)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    return event


def _calendar(method: str | None) -> icalendar.Calendar:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    return calendar


def invitation(booking) -> bytes:
    """The booking as an iTIP message: METHOD:REQUEST while confirmed (a reschedule is the same
    UID with a higher SEQUENCE), METHOD:CANCEL once cancelled."""
    cancelled = booking.status == booking.Status.CANCELLED
    calendar = _calendar("CANCEL" if cancelled else "REQUEST")
    calendar.add_component(_event(booking, cancelled=cancelled))
    return calendar.to_ical()


def feed(host, bookings) -> bytes:
    """The host's ``bookings`` as a subscribable calendar (no METHOD: a published feed)."""
    calendar = _calendar(None)
    calendar.add("x-wr-calname", f"Otomat · {host}")
    calendar.add("x-published-ttl", "PT15M")
    calendar.add("refresh-interval", timedelta(minutes=15), parameters={"VALUE": "DURATION"})
    for booking in bookings:
        calendar.add_component(
            _event(booking, cancelled=booking.status == booking.Status.CANCELLED)
        )
    return calendar.to_ical()
