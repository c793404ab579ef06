"""Uptime history: the instances' recorded transitions turned into hours and days.

No raw check is kept. Each scan (``alerts.scan`` runs :func:`record_hours` through the check
registry) aggregates every complete UTC hour not aggregated yet: one query for the previous
hour's rows (where each instance stood when the hour began), one for the hour's transitions and
one for the maintenance windows, then one bulk upsert of one :class:`UptimeHour` row per
customer instance. When the hour completes a day, the day's hours are summed into
:class:`UptimeDay` (one grouped query, one upsert) and old rows are pruned. A repeated run
writes the same rows again, so a crash between the upsert and the next scan loses nothing.

What counts (``classify``): running is up; failed, and restarting after a crash (running or
failed → provisioning), are down; stopped by the customer, suspended (billing or staff),
pending, a first start and terminated are not counted either way, and neither is downtime inside
a maintenance window that covers the instance. The percentage is up / (up + down).

:func:`uptime_for` is what pages call: the percentage over the last ``days`` days and one entry
per day, today included (its hours not aggregated yet are computed from the transitions).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min, Sum
from django.utils import timezone

from otomat.instances.models import Instance, InstanceEvent
from otomat.monitoring.models import Maintenance
from otomat.monitoring.models_uptime import Availability, UptimeDay, UptimeHour

log = logging.getLogger("otomat.monitoring")
HOUR = timedelta(hours=1)
S = Instance.State
# After a long stop of every scanning service, at most this many past hours are filled in (as
# far as the transitions tell); older time stays unknown rather than costing one long scan.
BACKFILL_HOURS = 48
_HOUR_FIELDS = [
    "up_seconds",
    "down_seconds",
    "excluded_seconds",
    "end",
    "updates",
    "errors",
    "updates_total",
    "errors_total",
]
_DAY_FIELDS = ["up_seconds", "down_seconds", "excluded_seconds", "updates", "errors"]


def classify(to_state: str, from_state: str = "") -> str:
    """How time spent in ``to_state`` (entered from ``from_state``) counts."""
    if to_state == S.RUNNING:
        return Availability.UP
    if to_state == S.FAILED:
        return Availability.DOWN
    if to_state == S.PROVISIONING and from_state in (S.RUNNING, S.FAILED):
        return Availability.DOWN  # restarting after a crash, or after a person's new start
    return Availability.EXCLUDED


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def group_of(slug: str, version: str, runtime: str) -> str:
    """The alert engine's grouping key of an instance (a maintenance window's GROUP scope)."""
    return f"host:shared:{slug}@{version}" if runtime == "shared" else f"version:{slug}@{version}"


# -- pure arithmetic ---------------------------------------------------------------------------


@dataclass
class _Inst:
    id: str
    account_id: int
    group: str
    created_at: datetime


def _segments(
    start_class: str, start: datetime, end: datetime, changes: Iterable[tuple[datetime, str]]
) -> list[tuple[datetime, datetime, str]]:
    """[(from, to, class)] covering [start, end) given the class at ``start`` and the ordered
    (at, class) changes (those outside the span only move the class)."""
    result = []
    current, since = start_class, start
    for at, cls in changes:
        if at <= start:
            current = cls
            continue
        if at >= end:
            break
        if at > since:
            result.append((since, at, current))
        current, since = cls, at
    if end > since:
        result.append((since, end, current))
    return result


def _windows_for(inst: _Inst, windows: list[tuple[datetime, datetime, str, str]]):
    subject = f"instance:{inst.id}"
    for starts, ends, scope, value in windows:
        if (
            scope == Maintenance.Scope.ALL
            or (scope == Maintenance.Scope.INSTANCE and value == inst.id)
            or (scope == Maintenance.Scope.ACCOUNT and value == str(inst.account_id))
            or (scope == Maintenance.Scope.GROUP and value and value in (inst.group, subject))
        ):
            yield starts, ends


def _seconds(segments, windows) -> tuple[int, int, int]:
    """(up, down, excluded) seconds of ``segments``; down time inside a window is excluded."""
    up = down = excluded = 0.0
    for start, end, cls in segments:
        length = (end - start).total_seconds()
        if cls == Availability.UP:
            up += length
        elif cls == Availability.DOWN:
            covered = 0.0
            for w_start, w_end in _merge(windows):
                overlap = (min(end, w_end) - max(start, w_start)).total_seconds()
                covered += max(0.0, overlap)
            down += length - covered
            excluded += covered
        else:
            excluded += length
    return round(up), round(down), round(excluded)


def _merge(windows) -> list[tuple[datetime, datetime]]:
    merged: list[list[datetime]] = []
    for start, end in sorted(windows):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


# -- reads -------------------------------------------------------------------------------------


def _maintenance(start: datetime, end: datetime) -> list[tuple[datetime, datetime, str, str]]:
    rows = Maintenance.objects.filter(starts_at__lt=end, ends_at__gt=start).values_list(
        "starts_at", "ends_at", "ended_early_at", "scope", "scope_value"
    )
    result = []
    for starts, ends, early, scope, value in rows:
        ends = min(ends, early) if early else ends
        if ends > starts:
            result.append((starts, ends, scope, value))
    return result


def _changes(ids: set[str] | None, start: datetime, end: datetime):
    """{instance id: [(at, class)]} of the transitions in [start, end) (one query)."""
    query = InstanceEvent.objects.filter(at__gte=start, at__lt=end).exclude(to_state="")
    if ids is not None and len(ids) <= 1:
        query = query.filter(instance_id__in=list(ids))
    changes: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    rows = query.order_by("at", "id").values_list("instance_id", "at", "from_state", "to_state")
    for iid, at, from_state, to_state in rows.iterator(chunk_size=2000):
        iid = str(iid)
        if ids is None or iid in ids:
            changes[iid].append((at, classify(to_state, from_state)))
    return changes


def _class_before(ids: list[str], moment: datetime) -> dict[str, str]:
    """Each instance's class just before ``moment`` from its last transition (for instances
    with no previous hour row: the first aggregation, or one after a long gap)."""
    result: dict[str, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        last_ids = (
            InstanceEvent.objects.filter(instance_id__in=chunk, at__lt=moment)
            .exclude(to_state="")
            .values("instance_id")
            .annotate(last=Max("id"))
            .values_list("last", flat=True)
        )
        for iid, from_state, to_state in InstanceEvent.objects.filter(
            pk__in=list(last_ids)
        ).values_list("instance_id", "from_state", "to_state"):
            result[str(iid)] = classify(to_state, from_state)
    return result


def _instances(start: datetime, end: datetime, only: str | None = None) -> dict[str, tuple]:
    """Customer instances that existed during [start, end): id → (_Inst, updates, errors)."""
    query = Instance.objects.filter(kind=Instance.Kind.CUSTOMER, created_at__lt=end).exclude(
        state=S.TERMINATED, state_changed_at__lt=start
    )
    if only is not None:
        query = query.filter(pk=only)
    rows = query.values_list(
        "id",
        "account_id",
        "version__product__slug",
        "version__version",
        "version__runtime",
        "created_at",
        "updates_handled",
        "errors",
    )
    result = {}
    for iid, account_id, slug, version, runtime, created, updates, errors in rows.iterator(
        chunk_size=2000
    ):
        inst = _Inst(str(iid), account_id, group_of(slug, version, runtime), created)
        result[inst.id] = (inst, updates, errors)
    return result


# -- writes (the scan) -------------------------------------------------------------------------


def _upsert(model, rows: list, keys: list[str], fields: list[str]) -> None:
    # MariaDB/MySQL take no conflict target (ON DUPLICATE KEY UPDATE uses every unique key).
    target = keys if connection.features.supports_update_conflicts_with_target else None
    model.objects.bulk_create(
        rows, batch_size=1000, update_conflicts=True, unique_fields=target, update_fields=fields
    )


def aggregate_hour(hour: datetime) -> int:
    """Write the UptimeHour rows of the hour starting at ``hour`` (UTC, minute 0). Idempotent.
    Returns the number of rows written."""
    if hour != floor_hour(hour):
        raise ValueError(f"{hour.isoformat()} is not the start of an hour")
    end = hour + HOUR
    instances = _instances(hour, end)
    if not instances:
        return 0
    previous = {
        str(iid): (cls, updates_total, errors_total)
        for iid, cls, updates_total, errors_total in UptimeHour.objects.filter(
            hour=hour - HOUR
        ).values_list("instance_id", "end", "updates_total", "errors_total")
    }
    unknown = [iid for iid, (inst, *_) in instances.items() if iid not in previous]
    before = _class_before([i for i in unknown if instances[i][0].created_at < hour], hour)
    changes = _changes(set(instances), hour, end)
    windows = _maintenance(hour, end)
    rows = []
    for iid, (inst, updates_now, errors_now) in instances.items():
        if iid in previous:
            start_class, updates_base, errors_base = previous[iid]
        else:
            start_class, updates_base, errors_base = before.get(iid, Availability.EXCLUDED), 0, 0
        start = max(hour, inst.created_at)
        segments = _segments(start_class, start, end, changes.get(iid, ()))
        up, down, excluded = _seconds(segments, list(_windows_for(inst, windows)))
        end_class = segments[-1][2] if segments else start_class
        rows.append(
            UptimeHour(
                instance_id=iid,
                hour=hour,
                up_seconds=up,
                down_seconds=down,
                excluded_seconds=excluded,
                end=end_class,
                # A counter below its base means the process restarted and counts from 0.
                updates=updates_now - updates_base if updates_now >= updates_base else updates_now,
                errors=errors_now - errors_base if errors_now >= errors_base else errors_now,
                updates_total=updates_now,
                errors_total=errors_now,
            )
        )
    with transaction.atomic():
        _upsert(UptimeHour, rows, ["instance", "hour"], _HOUR_FIELDS)
    return len(rows)


def roll_up_day(day: date) -> int:
    """Sum the day's hours into UptimeDay rows (idempotent); returns the number written."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    sums = (
        UptimeHour.objects.filter(hour__gte=start, hour__lt=start + timedelta(days=1))
        .values("instance_id")
        .annotate(*[Sum(f) for f in _DAY_FIELDS])
    )
    rows = [
        UptimeDay(instance_id=s["instance_id"], day=day, **{f: s[f"{f}__sum"] for f in _DAY_FIELDS})
        for s in sums
    ]
    with transaction.atomic():
        _upsert(UptimeDay, rows, ["instance", "day"], _DAY_FIELDS)
    return len(rows)


def prune(now: datetime) -> tuple[int, int]:
    """Delete hourly rows older than OTOMAT_UPTIME_HOURLY_DAYS and daily rows older than
    OTOMAT_UPTIME_DAILY_DAYS; returns (hours, days) deleted."""
    hours, _ = UptimeHour.objects.filter(
        hour__lt=floor_hour(now) - timedelta(days=settings.UPTIME_HOURLY_DAYS)
    ).delete()
    days, _ = UptimeDay.objects.filter(
        day__lt=now.astimezone(UTC).date() - timedelta(days=settings.UPTIME_DAILY_DAYS)
    ).delete()
    return hours, days


def record_hours(now: datetime) -> list:
    """The scan's step (registered as a check; it reports no signal): aggregate every complete
    hour since the last one aggregated, roll up each completed day, prune once a day."""
    current = floor_hour(now)
    last = UptimeHour.objects.aggregate(last=Max("hour"))["last"]
    if last is None:  # the first run: from the oldest customer instance (within the backfill)
        oldest = Instance.objects.filter(kind=Instance.Kind.CUSTOMER).aggregate(
            oldest=Min("created_at")
        )["oldest"]
        hour = floor_hour(oldest) if oldest else current
    else:
        hour = floor_hour(last) + HOUR
    hour = max(hour, current - timedelta(hours=BACKFILL_HOURS))
    while hour < current:
        aggregate_hour(hour)
        if (hour + HOUR).hour == 0:  # the day is complete
            roll_up_day(hour.date())
            prune(now)
        hour += HOUR
    return []


# -- reads for pages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DayUptime:
    day: date
    up_seconds: int
    down_seconds: int
    excluded_seconds: int
    updates: int = 0
    errors: int = 0

    @property
    def percent(self) -> float | None:
        """Up / (up + down) in %, None when nothing was counted (stopped all day)."""
        counted = self.up_seconds + self.down_seconds
        return round(100.0 * self.up_seconds / counted, 3) if counted else None


@dataclass(frozen=True)
class Uptime:
    percent: float | None  # over the whole period; None when nothing counted
    up_seconds: int
    down_seconds: int
    excluded_seconds: int
    days: list[DayUptime]  # oldest first, one per day of the period (today last)


def _instance_id(instance) -> str:
    if isinstance(instance, Instance):
        return str(instance.pk)
    import uuid

    try:
        return str(uuid.UUID(str(instance)))
    except ValueError:
        raise ValueError(f"{instance!r} is not an instance or an instance id") from None


def _check_days(days) -> int:
    if isinstance(days, bool) or not isinstance(days, int):
        raise ValueError(f"days must be a whole number, not {days!r}")
    if not 1 <= days <= settings.UPTIME_DAILY_DAYS:
        raise ValueError(f"days must be between 1 and {settings.UPTIME_DAILY_DAYS}, not {days}")
    return days


def _live(iid: str, now: datetime) -> dict[date, list[int]]:
    """The not yet aggregated time of one instance, from its last hour row (or its last
    transition) to ``now``: {day: [up, down, excluded]} (a handful of small queries)."""
    last = UptimeHour.objects.filter(instance_id=iid).order_by("-hour").values_list("hour", "end")
    last = last.first()
    found = _instances(now - timedelta(days=BACKFILL_HOURS // 24), now, only=iid)
    if iid not in found:
        return {}
    inst = found[iid][0]
    if last is not None:
        start, start_class = last[0] + HOUR, last[1]
    else:
        start = max(inst.created_at, floor_hour(now) - timedelta(hours=BACKFILL_HOURS))
        start_class = _class_before([iid], start).get(iid, Availability.EXCLUDED)
    start = max(start, inst.created_at)
    if start >= now:
        return {}
    changes = _changes({iid}, start, now).get(iid, [])
    windows = list(_windows_for(inst, _maintenance(start, now)))
    result: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    class_now = start_class
    moment = start
    while moment < now:  # per hour, so that each day gets its own share
        stop = min(floor_hour(moment) + HOUR, now)
        segments = _segments(class_now, moment, stop, changes)
        seconds = _seconds(segments, windows)
        bucket = result[moment.astimezone(UTC).date()]
        for i in range(3):
            bucket[i] += seconds[i]
        if segments:
            class_now = segments[-1][2]
        moment = stop
    return result


def uptime_for(instance, *, days: int = 30, now: datetime | None = None) -> Uptime:
    """Uptime of one instance (an Instance or its id) over the last ``days`` UTC days, today
    included. Raises ValueError for a bad ``days`` or instance id; an instance without history
    gets a series of empty days and ``percent`` None."""
    iid = _instance_id(instance)
    days = _check_days(days)
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    totals: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    rolled = set()
    for row in UptimeDay.objects.filter(instance_id=iid, day__gte=first, day__lte=today):
        totals[row.day] = [getattr(row, f) for f in _DAY_FIELDS]
        rolled.add(row.day)
    start = datetime.combine(first, time(0), tzinfo=UTC)
    for row in UptimeHour.objects.filter(instance_id=iid, hour__gte=start):
        day = row.hour.astimezone(UTC).date()
        if day in rolled:
            continue
        for i, f in enumerate(_DAY_FIELDS):
            totals[day][i] += getattr(row, f)
    for day, (up, down, excluded) in _live(iid, now).items():
        if day >= first and day not in rolled:
            totals[day][0] += up
            totals[day][1] += down
            totals[day][2] += excluded
    series = [
        DayUptime(d, *totals[d]) if d in totals else DayUptime(d, 0, 0, 0)
        for d in (first + timedelta(days=i) for i in range(days))
    ]
    up = sum(d.up_seconds for d in series)
    down = sum(d.down_seconds for d in series)
    excluded = sum(d.excluded_seconds for d in series)
    percent = round(100.0 * up / (up + down), 3) if up + down else None
    return Uptime(percent, up, down, excluded, series)


def month_uptime(instance, *, year: int, month: int) -> float | None:
    """Uptime % of one instance in a calendar month (UTC) from its daily and hourly rows;
    None when nothing counted. Raises ValueError for a bad month."""
    iid = _instance_id(instance)
    if not (isinstance(year, int) and isinstance(month, int) and 1 <= month <= 12):
        raise ValueError(f"not a month: {year!r}-{month!r}")
    first = date(year, month, 1)
    after = date(year + month // 12, month % 12 + 1, 1)
    up = down = 0
    rolled = set()
    for day, day_up, day_down in UptimeDay.objects.filter(
        instance_id=iid, day__gte=first, day__lt=after
    ).values_list("day", "up_seconds", "down_seconds"):
        up, down = up + day_up, down + day_down
        rolled.add(day)
    start = datetime.combine(first, time(0), tzinfo=UTC)
    stop = datetime.combine(after, time(0), tzinfo=UTC)
    for hour, hour_up, hour_down in UptimeHour.objects.filter(
        instance_id=iid, hour__gte=start, hour__lt=stop
    ).values_list("hour", "up_seconds", "down_seconds"):
        if hour.astimezone(UTC).date() not in rolled:
            up, down = up + hour_up, down + hour_down
    return round(100.0 * up / (up + down), 3) if up + down else None


def uptime_percent_many(instance_ids: Iterable, *, days: int = 30, now=None) -> dict[str, float]:
    """{instance id: uptime %} over the last ``days`` complete and rolled-up days (two grouped
    queries, for lists and overviews; instances with nothing counted are left out)."""
    days = _check_days(days)
    ids = [_instance_id(i) for i in instance_ids]
    now = now or timezone.now()
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    rolled: dict[str, set[date]] = defaultdict(set)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for iid, day, up, down in UptimeDay.objects.filter(
            instance_id__in=chunk, day__gte=first
        ).values_list("instance_id", "day", "up_seconds", "down_seconds"):
            sums[str(iid)][0] += up
            sums[str(iid)][1] += down
            rolled[str(iid)].add(day)
        since = datetime.combine(first, time(0), tzinfo=UTC)
        for iid, hour, up, down in UptimeHour.objects.filter(
            instance_id__in=chunk, hour__gte=since
        ).values_list("instance_id", "hour", "up_seconds", "down_seconds"):
            if hour.astimezone(UTC).date() in rolled[str(iid)]:
                continue
            sums[str(iid)][0] += up
            sums[str(iid)][1] += down
    return {
        iid: round(100.0 * up / (up + down), 3) for iid, (up, down) in sums.items() if up + down
    }
