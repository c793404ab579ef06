"""Business-hours calendar for the support desk's SLA clocks: pure Python, no Django, no database.

A :class:`Schedule` says when the desk is open, in local wall-clock time, on each weekday. A
:class:`BusinessCalendar` places it in a time zone, closes it on holidays, and answers questions
about real instants: is the desk open (``is_open``), when does it next open (``next_open``), when
has a given amount of business time elapsed (``add``: SLA due times) and how much business time
lies between two instants (``between``: elapsed or paused clocks).

Contract shared by the calendar methods:

- Arguments are timezone-aware datetimes (naive ones raise ValueError); results are in UTC.
- Business time is real elapsed time (what a stopwatch shows) inside open intervals.
- ``between(s, add(s, d)) == d`` for every ``s`` and ``d >= 0``; ``between`` is additive
  (``between(a, c) == between(a, b) + between(b, c)`` for ``a <= b <= c``); and
  ``is_open(t)`` exactly when ``next_open(t) == t``.
- Holidays are whole local dates: the schedule's intervals of that date do not open.

Daylight-saving rule. Every interval ``[start, end)`` of a local date becomes real instants by one
monotone rule: it opens at the first instant at which the local clock shows ``start`` *or later*,
and closes at the first instant at which it shows ``end`` or later. So on a spring-forward day
(Europe/Warsaw 2026-03-29, 02:00 → 03:00) 01:00–04:00 lasts 2 real hours, a bound inside the
skipped hour moves to the jump (02:30–05:00 opens at 03:00 CEST) and 02:00–02:30 does not open at
all. On a fall-back day (2026-10-25, 03:00 → 02:00) 01:00–04:00 lasts 4 real hours, and a bound
inside the repeated hour means its first pass (01:00–02:30 closes at 02:30 CEST and does not
reopen when the clock shows 02:00–02:30 again, while 02:30–05:00 runs through the second pass).
Because the rule is monotone, ordered intervals stay ordered and never overlap in real time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

END_OF_DAY = time.max
"""An interval end meaning 24:00 (the next local midnight), not 23:59:59.999999.

Using ``time.max`` keeps every bound a ``time`` that sorts after all others, so ``start < end``
and ordering checks need no special case; it is written and parsed as ``24:00``."""

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Interval = tuple[time, time]

_DAY, _WEEK = timedelta(days=1), timedelta(days=7)
_TICK, _ZERO = timedelta(microseconds=1), timedelta()
_INTERVAL = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def _minutes(bound: time) -> int:
    return 24 * 60 if bound == END_OF_DAY else bound.hour * 60 + bound.minute


def _whole(bound: time) -> bool:
    return bound.second == bound.microsecond == 0


def _fmt(bound: time) -> str:
    return "24:00" if bound == END_OF_DAY else f"{bound.hour:02}:{bound.minute:02}"


@dataclass(frozen=True)
class Schedule:
    """Weekly opening hours in local wall-clock time.

    ``hours`` maps a weekday (0 = Monday … 6 = Sunday) to its ordered, non-overlapping half-open
    intervals ``(start, end)`` of naive whole-minute times, ``start < end``. An end of
    :data:`END_OF_DAY` means 24:00, so ``(time(0), END_OF_DAY)`` is a whole day, and a day open
    until 24:00 followed by one opening at 00:00 is continuous. Missing weekdays are closed;
    intervals may touch (one ends at 12:00, the next starts at 12:00) but not overlap.
    """

    hours: dict[int, tuple[Interval, ...]]

    def __post_init__(self) -> None:
        # Normalise (tuples, no empty days, sorted keys) so equal schedules compare equal, and
        # copy so that later changes to the caller's dict cannot change a frozen schedule.
        hours = {day: tuple(map(tuple, ivs)) for day, ivs in sorted(self.hours.items()) if ivs}
        for day, intervals in hours.items():
            if type(day) is not int or not 0 <= day <= 6:
                raise ValueError(f"weekday must be 0 (Monday) … 6 (Sunday), got {day!r}")
            previous_end = 0
            for start, end in intervals:
                if not all(isinstance(b, time) and b.tzinfo is None for b in (start, end)) or not (
                    _whole(start) and (_whole(end) or end == END_OF_DAY)
                ):
                    raise ValueError(f"{DAY_NAMES[day]}: bounds must be naive whole-minute times")
                if _minutes(start) >= _minutes(end):
                    raise ValueError(
                        f"{DAY_NAMES[day]}: {_fmt(start)}-{_fmt(end)} must end after it starts"
                    )
                if _minutes(start) < previous_end:
                    raise ValueError(
                        f"{DAY_NAMES[day]}: {_fmt(start)}-{_fmt(end)} overlaps the interval before it"
                    )
                previous_end = _minutes(end)
        object.__setattr__(self, "hours", hours)

    def __hash__(self) -> int:  # the dict field would make the generated hash fail
        return hash(tuple(self.hours.items()))

    @classmethod
    def parse(cls, spec: Mapping[str, str]) -> Schedule:
        """Build a schedule from a human spec such as ``{"mon-fri": "09:00-17:00", "sat": "10:00-14:00"}``.

        Keys are day names (``mon`` … ``sun``, any case), forward ranges (``mon-fri``) or comma
        lists of them (``mon,wed``); values are comma-separated ``HH:MM-HH:MM`` intervals, with
        ``24:00`` allowed as an end (``{"mon-sun": "00:00-24:00"}`` is 24/7). A day named by several
        keys gets all their intervals. Raises ValueError naming the bad part: unknown day, bad
        time, end not after start, overlapping intervals, empty spec or value.
        """
        if not spec:
            raise ValueError("empty schedule: give at least one day with opening hours")
        hours: dict[int, list[Interval]] = {}
        for key, value in spec.items():
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{key!r}: expected intervals like '09:00-17:00', got {value!r}")
            intervals = [_parse_interval(key, part) for part in value.split(",")]
            for day in _parse_days(key):
                hours.setdefault(day, []).extend(intervals)
        return cls({day: tuple(sorted(intervals)) for day, intervals in hours.items()})

    def to_spec(self) -> dict[str, str]:
        """The human spec, runs of consecutive days with equal hours as ranges: ``parse(s.to_spec()) == s``."""
        spec = {}
        for intervals, run in groupby(range(7), key=self.hours.get):
            days = list(run)
            if intervals:
                key = DAY_NAMES[days[0]] + (f"-{DAY_NAMES[days[-1]]}" if len(days) > 1 else "")
                spec[key] = ", ".join(f"{_fmt(start)}-{_fmt(end)}" for start, end in intervals)
        return spec

    @classmethod
    def always(cls) -> Schedule:
        """Open 24/7."""
        return cls({day: ((time(0), END_OF_DAY),) for day in range(7)})

    @classmethod
    def office(cls) -> Schedule:
        """Monday to Friday, 09:00–17:00."""
        return cls({day: ((time(9), time(17)),) for day in range(5)})

    def per_week(self) -> timedelta:
        """Open time in a week as written (a real week may differ by holidays and DST)."""
        return timedelta(
            minutes=sum(_minutes(e) - _minutes(s) for ivs in self.hours.values() for s, e in ivs)
        )


def _parse_days(key: str) -> list[int]:
    days = []
    for part in str(key).lower().split(","):
        first, dash, last = (name.strip() for name in part.partition("-"))
        if first not in DAY_NAMES or (dash and last not in DAY_NAMES):
            raise ValueError(
                f"{key!r}: unknown day, use {', '.join(DAY_NAMES)} or a range like mon-fri"
            )
        low, high = DAY_NAMES.index(first), DAY_NAMES.index(last if dash else first)
        if high < low:
            raise ValueError(f"{key!r}: day range runs backwards, split it into two keys")
        days.extend(range(low, high + 1))
    return days


def _parse_interval(key: str, text: str) -> Interval:
    match = _INTERVAL.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{key!r}: {text.strip()!r} is not an interval like 09:00-17:00")
    start_h, start_m, end_h, end_m = map(int, match.groups())
    midnight_end = (end_h, end_m) == (24, 0)
    if start_h > 23 or start_m > 59 or (not midnight_end and (end_h > 23 or end_m > 59)):
        raise ValueError(f"{key!r}: {text.strip()!r} contains an invalid time")
    return time(start_h, start_m), END_OF_DAY if midnight_end else time(end_h, end_m)


class BusinessCalendar:
    """A :class:`Schedule` in the IANA time zone ``tz``, closed on holidays (see the module docs).

    ``holidays`` are extra closed local dates; with ``country`` (ISO code such as ``"ID"`` or
    ``"PL"``, optional ``subdiv``) the public holidays of the ``holidays`` package close the desk
    too, loaded one year at a time as dates are reached. Unknown zone or country → ValueError.
    Instances are cheap and safe to share between threads (the holiday cache only ever gains
    complete years).
    """

    def __init__(
        self,
        schedule: Schedule,
        tz: str,
        holidays: Iterable[date] = (),
        *,
        country: str | None = None,
        subdiv: str | None = None,
    ) -> None:
        try:
            self.tz = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown time zone {tz!r}") from exc
        self.schedule, self.country, self.subdiv = schedule, country, subdiv
        self.holidays = frozenset(holidays)
        if any(isinstance(day, datetime) or not isinstance(day, date) for day in self.holidays):
            raise ValueError("holidays must be dates (whole local days), not datetimes or strings")
        if country is None and subdiv is not None:
            raise ValueError("subdiv needs a country")
        if country is not None:
            try:  # with no years requested this only checks the codes
                holidays_lib.country_holidays(country, subdiv=subdiv)
            except NotImplementedError as exc:
                raise ValueError(
                    f"no public holidays known for country={country!r} subdiv={subdiv!r}"
                ) from exc
        self._public: dict[int, frozenset[date]] = {}
        self._week = schedule.per_week()

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.schedule.to_spec()!r}, {self.tz.key!r}, country={self.country!r})"

    def is_holiday(self, day: date) -> bool:
        """Whether the local date ``day`` is an explicit or (with ``country``) public holiday."""
        if day in self.holidays:
            return True
        if self.country is None:
            return False
        if (public := self._public.get(day.year)) is None:
            found = holidays_lib.country_holidays(self.country, subdiv=self.subdiv, years=day.year)
            public = self._public[day.year] = frozenset(found)
        return day in public

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` lies in an open interval; intervals are half-open, so closing time is not."""
        return bool(self._week) and self.next_open(at) == at

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself (in UTC) if open, else the next opening. ValueError if never open."""
        return self.add(at, _ZERO)

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant (UTC) at which ``duration`` of business time has elapsed after ``start``.

        Counting begins at ``start`` if open, else at the next opening, so a zero duration gives
        ``next_open(start)``; a positive duration that runs out exactly at closing time returns the
        closing time (office hours: Friday 16:00 + 1 h is Friday 17:00, not Monday 09:00).
        Raises ValueError for a negative duration or a schedule with no open time.
        """
        cursor = self._utc(start)
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        if not self._week:
            raise ValueError("the schedule has no open time, so business time never elapses")
        remaining, day = duration, self._local_date(cursor)
        while True:
            # While more than a week is left, swallow plain weeks whole rather than walk their days.
            if (
                remaining > self._week
                and cursor <= (midnight := self._midnight(day))
                and (week_end := self._plain_week_end(day, midnight))
            ):
                remaining, cursor, day = remaining - self._week, week_end, day + _WEEK
                continue
            for opens, closes in self._day_intervals(day):
                if closes <= cursor:
                    continue
                cursor = max(cursor, opens)
                if remaining <= closes - cursor:
                    return cursor + remaining
                remaining, cursor = remaining - (closes - cursor), closes
            day += _DAY

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Business time between the instants ``a`` and ``b``; zero if ``b <= a``."""
        a, b = self._utc(a), self._utc(b)
        total = _ZERO
        if b <= a or not self._week:
            return total
        day = self._local_date(a)
        # A local date's intervals start at or after its midnight, so stop at the first past ``b``.
        while (midnight := self._midnight(day)) < b:
            if (
                a <= midnight
                and (week_end := self._plain_week_end(day, midnight))
                and week_end <= b
            ):
                total, day = total + self._week, day + _WEEK
                continue
            for opens, closes in self._day_intervals(day):
                total += max(_ZERO, min(closes, b) - max(opens, a))
            day += _DAY
        return total

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _utc(moment: datetime) -> datetime:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"datetimes must be timezone-aware, got naive {moment!r}")
        return moment.astimezone(UTC)

    def _local_date(self, moment: datetime) -> date:
        # Intervals of earlier dates end by this date's midnight, which is <= moment: start here.
        return moment.astimezone(self.tz).date()

    def _wall(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz).replace(tzinfo=None)

    def _instant(self, wall: datetime) -> datetime:
        """The first instant (UTC) at which the local clock shows ``wall`` or later: the DST rule."""
        first = wall.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=self.tz, fold=1).astimezone(UTC)
        if self._wall(first) == wall:
            return min(first, second)  # an ordinary time, or the first pass of a repeated one
        # ``wall`` was skipped by a forward jump, which lies between its two readings (``second``
        # shows an earlier time, ``first`` a later one). zoneinfo does not expose transitions,
        # so bisect for the jump; this only happens when an interval bound falls in a DST gap.
        low, high = second, first
        while high - low > _TICK:
            middle = low + (high - low) // 2
            low, high = (low, middle) if self._wall(middle) >= wall else (middle, high)
        return high

    def _midnight(self, day: date) -> datetime:
        return self._instant(datetime.combine(day, time(0)))

    def _day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open intervals of the local date ``day`` as ordered UTC ``(opens, closes)`` pairs."""
        if self.is_holiday(day):
            return []
        spans = []
        for start, end in self.schedule.hours.get(day.weekday(), ()):
            opens = self._instant(datetime.combine(day, start))
            closes = (
                self._midnight(day + _DAY)
                if end == END_OF_DAY
                else self._instant(datetime.combine(day, end))
            )
            if opens < closes:  # an interval wholly inside a DST gap never opens
                spans.append((opens, closes))
        return spans

    def _plain_week_end(self, day: date, midnight: datetime) -> datetime | None:
        """The end of the 7 local days from ``day`` (starting at ``midnight``) if they hold exactly
        ``per_week`` of business time: no holiday and no UTC-offset change. (A zone changing its
        offset and back within one week would fool the offset check; no real zone does.)"""
        week_end = self._midnight(day + _WEEK)
        if week_end - midnight != _WEEK or any(self.is_holiday(day + n * _DAY) for n in range(7)):
            return None
        return week_end
