"""Availability for a month with 5 imported calendars of 2,000 events each, on SQLite and
PostgreSQL.

    .venv/bin/python bench/booking_availability.py [--repeat 15] [--databases sqlite,postgres]
        [--dense]

In a fresh migrated database: one host (Monday–Friday 09:00–17:00 Europe/Warsaw, 15 minutes
after each meeting), a 60-minute meeting type on a 30-minute step, 40 confirmed bookings, and 5
external calendars, each an iCal text of 2,000 events spread over two years back and one ahead
(1,900 single events of 30–120 minutes, 100 weekly recurring ones, 13 times each) read by ``ical.busy_times`` and stored as busy times the
way the scheduled import stores them. Then, ``--repeat`` times each, median and p90:

* ``free_slots`` for the next 31 days (the service the pages call);
* ``GET /api/v1/projects/booking/types/<slug>/slots?days=31`` through Django's test client
  (the whole request: auth, the service, JSON);
* the baseline, in the same run: a plain listing of the same busy times — the query that reads
  the window's rows (``values_list("start", "end")``) and nothing else.

It also prints how long reading one 2,000-event calendar takes (``ical.busy_times``, median of
the 5). PostgreSQL is used when it answers at OTOMAT_BENCH_POSTGRES (default
postgres://postgres@127.0.0.1:5432/otomat_bench_booking; the database is dropped and created).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time

from _common import child_env, percentile, postgres_available
from _common import run_child as _run

POSTGRES = os.environ.get(
    "OTOMAT_BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432/otomat_bench_booking"
)
CALENDARS = 5
EVENTS = 2000


def _calendar_text(seed: int, start, *, dense: bool) -> bytes:
    from datetime import timedelta

    rng = random.Random(seed)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//bench//EN"]
    for n in range(EVENTS):
        # Two years of history and one ahead, as an exported calendar holds them.
        # --dense: all 2,000 in the next 90 days instead (every slot of the month is busy).
        first, last = (0, 90 * 24 * 4) if dense else (-730 * 24 * 4, 365 * 24 * 4)
        offset = rng.randrange(first, last) * 15
        begin = start.replace(minute=0) + timedelta(minutes=offset)
        length = timedelta(minutes=rng.choice([30, 45, 60, 90, 120]))
        lines += [
            "BEGIN:VEVENT",
            f"UID:{seed}-{n}@bench",
            "DTSTAMP:20270101T000000Z",
            f"DTSTART:{begin:%Y%m%dT%H%M%SZ}",
            f"DTEND:{begin + length:%Y%m%dT%H%M%SZ}",
            "SUMMARY:Busy",
        ]
        if n < 100:  # the first 100 repeat weekly for 13 weeks
            lines.append("RRULE:FREQ=WEEKLY;COUNT=13")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines).encode()


def _timed(fn, repeat: int) -> list[float]:
    fn()  # warm caches and connections
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def child(repeat: int, dense: bool) -> dict:
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta
    from datetime import time as clock
    from zoneinfo import ZoneInfo

    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", interactive=False, verbosity=0)
    from otomat.accounts.models import ApiToken, User
    from otomat.projects.booking import availability, ical
    from otomat.projects.booking.models import (
        Booking,
        BusyTime,
        ExternalCalendar,
        Host,
        MeetingType,
        WeeklyHours,
    )

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    owner = User.objects.create_superuser(email="owner@example.com", password="x")
    host = Host.objects.create(
        user=owner, timezone="Europe/Warsaw", buffer_after_minutes=15, min_notice_minutes=0
    )
    WeeklyHours.objects.bulk_create(
        [WeeklyHours(host=host, weekday=d, start=clock(9), end=clock(17)) for d in range(5)]
    )
    meeting = MeetingType.objects.create(host=host, slug="call", name="Call")
    zone = ZoneInfo("Europe/Warsaw")
    day = now.astimezone(zone).date() + timedelta(days=1)
    made = 0
    while made < 40:
        if day.weekday() < 5:
            for hour in (10, 14):
                start = datetime.combine(day, clock(hour), tzinfo=zone).astimezone(UTC)
                Booking.objects.create(
                    meeting_type=meeting,
                    host=host,
                    start=start,
                    end=start + timedelta(hours=1),
                    attendee_name="A",
                    attendee_email=f"a{made}@example.com",
                )
                made += 1
        day += timedelta(days=1)
    window = (now - timedelta(days=1), now + timedelta(days=91))
    read_ms = []
    stored = 0
    for n in range(CALENDARS):
        text = _calendar_text(n, now, dense=dense)
        started = time.perf_counter()
        busy = ical.busy_times(text, zone=zone, window=window)
        read_ms.append((time.perf_counter() - started) * 1000)
        calendar = ExternalCalendar.objects.create(host=host, name=f"cal {n}", url="https://x/")
        BusyTime.objects.bulk_create(
            [BusyTime(calendar=calendar, host=host, start=s, end=e) for s, e in busy],
            batch_size=1000,
        )
        stored += len(busy)
    month_end = now + timedelta(days=31)

    def slots():
        return availability.free_slots(meeting, now, month_end, now=now)

    def listing():
        return list(
            BusyTime.objects.filter(host=host, start__lt=month_end, end__gt=now).values_list(
                "start", "end"
            )
        )

    _row, token = ApiToken.issue(owner, name="bench")
    client = Client()
    url = "/api/v1/projects/booking/types/call/slots?days=31&timezone=Europe/Warsaw"

    def request():
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, response.content[:300]
        return response

    result = {
        "stored_busy": stored,
        "busy_in_month": len(listing()),
        "free_slots": len(slots()),
        "slots_ms": _timed(slots, repeat),
        "request_ms": _timed(request, repeat),
        "listing_ms": _timed(listing, repeat),
        "read_calendar_ms": statistics.median(read_ms),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--dense", action="store_true", help="all events in the next 90 days")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.repeat, args.dense)))
        return
    results = {}
    for database in args.databases.split(","):
        if database == "postgres" and not postgres_available(POSTGRES):
            print("PostgreSQL does not answer; skipped", file=sys.stderr)
            continue
        env = child_env("otomat-bench-booking-", database, postgres=POSTGRES)
        results[database] = _run(
            __file__,
            ["--child", "--repeat", str(args.repeat), *(["--dense"] if args.dense else [])],
            env,
            label=database,
        )
    if args.json:
        print(json.dumps(results))
        return
    for database, r in results.items():
        print(
            f"{database}: {CALENDARS} calendars × {EVENTS} events → {r['stored_busy']:,} busy "
            f"times stored, {r['busy_in_month']:,} in the month; {r['free_slots']} free slots"
        )
        print(f"{'what (31 days)':44} {'median ms':>10} {'p90 ms':>8}")
        for label, key in (
            ("free_slots() service", "slots_ms"),
            ("GET …/slots?days=31 (whole API request)", "request_ms"),
            ("baseline: plain listing of the busy times", "listing_ms"),
        ):
            values = r[key]
            print(f"{label:44} {statistics.median(values):10.1f} {percentile(values, 0.9):8.1f}")
        ratio = statistics.median(r["slots_ms"]) / statistics.median(r["listing_ms"])
        print(f"service / listing (median): {ratio:.1f}x")
        print(f"reading one 2,000-event calendar (ical.busy_times): {r['read_calendar_ms']:.0f} ms")
        print()


if __name__ == "__main__":
    main()
