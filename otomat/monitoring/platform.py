"""Platform and host health: the services' heartbeats, the machines' disk, memory and load,
the database's size and the task queue's lag — read for ``/readyz`` and ``/metrics``, and
turned into signals for the alert engine (``platform_signals``, registered with
``alerts.register_check`` so every scan runs it).

Where the numbers come from:

* every service writes a ``ServiceHeartbeat`` (``otomat.ops.heartbeats``) with its machine's
  health, so each host that runs a service (the runner's above all) is measured where it is;
* the process running the check measures its own machine too, so the data directory's disk is
  seen even before any service has beaten;
* the database's size is one query (PostgreSQL ``pg_database_size``, MariaDB
  ``information_schema.tables``) or the file (SQLite);
* the queue lag is the age of the oldest task that is due and still READY (database queue).

A service is alive while one of its processes beat within ``HEARTBEAT_STALE_SECONDS`` — and,
for a process on this machine, while that process exists (a killed worker is dead at once, not
a minute later).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from otomat.monitoring.signals import Signal
from otomat.ops import heartbeats
from otomat.ops.models import ServiceHeartbeat
from otomat.ops.stale import HOSTNAME, process_gone

SERVICES = [s.value for s in ServiceHeartbeat.Service]
# The checks of this module: platform-wide (their signals name no account or instance), so an
# incident they open affects every customer — those whose plan has an SLA get its clock.
PLATFORM_WIDE_CHECKS = frozenset(
    {
        "host.disk",
        "host.memory",
        "host.load",
        "service.web",
        "service.worker",
        "service.scheduler",
        "service.runner",
        "queue.lag",
        "database.size",
    }
)
PRUNE_AFTER = timedelta(days=1)  # heartbeats of processes gone this long are deleted


def host_name(host: str) -> str:
    """A heartbeat's host without the boot id (``web-1:3f2a9c1d`` → ``web-1``): what people read
    and what alert subjects use, so a reboot does not make a new subject."""
    return host.rsplit(":", 1)[0] if ":" in host else host


# -- services -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceState:
    service: str
    alive: bool
    age_seconds: float | None  # since the newest beat of any of its processes; None: never
    processes: int  # live ones
    hosts: tuple[str, ...] = ()  # host names with a live process
    reason: str = ""  # why not alive, for people ("no heartbeat for 95 s")
    stopped: bool = False  # not alive because its newest process stopped cleanly


def _stopped(row: ServiceHeartbeat) -> bool:
    return bool((row.info or {}).get("stopped_at"))


def _is_live(row: ServiceHeartbeat, now: datetime) -> bool:
    if _stopped(row) or row.seen_at < now - timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS):
        return False
    return not (row.host == HOSTNAME and process_gone(row.pid))


def heartbeat_rows() -> list[ServiceHeartbeat]:
    return list(ServiceHeartbeat.objects.all())


def services(
    *, now: datetime | None = None, rows: list[ServiceHeartbeat] | None = None
) -> dict[str, ServiceState]:
    """The state of every service (web, worker, scheduler, runner) from their heartbeats (one
    query unless ``rows`` are given)."""
    now = now or timezone.now()
    rows = heartbeat_rows() if rows is None else rows
    result = {}
    for service in SERVICES:
        mine = [r for r in rows if r.service == service]
        live = [r for r in mine if _is_live(r, now)]
        last = max(mine, key=lambda r: r.seen_at, default=None)
        age = None if last is None else max(0.0, (now - last.seen_at).total_seconds())
        stopped = bool(not live and last is not None and _stopped(last))
        if live:
            reason = ""
        elif last is None:
            reason = "no heartbeat"
        elif stopped:
            reason = f"stopped {age:.0f} s ago"
        elif age is not None and age <= settings.HEARTBEAT_STALE_SECONDS:
            reason = "its process is gone"
        else:
            reason = f"no heartbeat for {age:.0f} s"
        result[service] = ServiceState(
            service=service,
            alive=bool(live),
            age_seconds=age,
            processes=len(live),
            hosts=tuple(sorted({host_name(r.host) for r in live})),
            reason=reason,
            stopped=stopped,
        )
    return result


# -- hosts --------------------------------------------------------------------------------------


@dataclass
class HostHealth:
    name: str  # host name (without the boot id)
    disks: list[dict] = field(default_factory=list)  # otomat.lib.host.disk() + "role"
    memory: dict | None = None
    load: dict | None = None
    services: list[str] = field(default_factory=list)  # live services reporting from it


def hosts(
    *, now: datetime | None = None, rows: list[ServiceHeartbeat] | None = None
) -> dict[str, HostHealth]:
    """Health per machine: the newest live heartbeat's measurements of every host, and this
    machine measured now."""
    now = now or timezone.now()
    rows = heartbeat_rows() if rows is None else rows
    result: dict[str, HostHealth] = {}
    newest: dict[str, ServiceHeartbeat] = {}
    for row in rows:
        if not _is_live(row, now):
            continue
        name = host_name(row.host)
        result.setdefault(name, HostHealth(name=name)).services.append(row.service)
        if name not in newest or row.seen_at > newest[name].seen_at:
            newest[name] = row
    for name, row in newest.items():
        info = row.info or {}
        health = result[name]
        health.disks = list(info.get("disks") or [])
        health.memory = info.get("memory")
        health.load = info.get("load")
    local = heartbeats.measure()
    here = result.setdefault(host_name(HOSTNAME), HostHealth(name=host_name(HOSTNAME)))
    here.disks, here.memory, here.load = local["disks"], local["memory"], local["load"]
    for health in result.values():
        health.services = sorted(set(health.services))
    return result


# -- database and queue --------------------------------------------------------------------------


def database_size() -> int | None:
    """The database's size in bytes (tables and indexes), or None when it cannot be read."""
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_database_size(current_database())")
                return int(cursor.fetchone()[0])
            if connection.vendor == "mysql":
                cursor.execute(
                    "SELECT COALESCE(SUM(data_length + index_length), 0)"
                    " FROM information_schema.tables WHERE table_schema = DATABASE()"
                )
                return int(cursor.fetchone()[0])
    except Exception:
        return None
    folder = heartbeats.database_folder()
    if folder is None:
        return None
    name = Path(str(connection.settings_dict["NAME"]))
    size = 0
    for path in (name, name.with_name(name.name + "-wal")):
        try:
            size += path.stat().st_size
        except OSError:
            continue
    return size


@dataclass(frozen=True)
class QueueState:
    ready: int  # tasks due and waiting for a worker
    lag_seconds: float  # age of the oldest of them (0 when none waits)


def queue(*, now: datetime | None = None) -> QueueState | None:
    """The task queue's backlog — the database queue's table, or RQ's queue in Redis — or
    None with a queue that has none (immediate, dummy). A task due later (``run_after``) is not
    late before then."""
    from django_tasks import task_backends
    from django_tasks_db.backend import DatabaseBackend
    from django_tasks_db.compat import TaskResultStatus
    from django_tasks_db.models import DBTaskResult, get_date_max

    backend = task_backends["default"]
    now = now or timezone.now()
    if type(backend).__module__.startswith("django_tasks_rq"):
        from otomat.ops.rq import queue_state

        ready, lag = queue_state(now)
        return QueueState(ready=ready, lag_seconds=lag)
    if not isinstance(backend, DatabaseBackend):
        return None
    ready = DBTaskResult.objects.filter(status=TaskResultStatus.READY)
    # The queue stores "no run_after" as 9999-01-01 (get_date_max); such a task is due since
    # it was enqueued, one with a run_after since then. Both orderings are the queue's index's.
    anytime = ready.filter(run_after=get_date_max())
    later = ready.filter(run_after__lte=now)
    count = anytime.count() + later.count()
    if not count:
        return QueueState(ready=0, lag_seconds=0.0)
    due = [
        anytime.order_by("enqueued_at").values_list("enqueued_at", flat=True).first(),
        later.order_by("run_after").values_list("run_after", flat=True).first(),
    ]
    oldest = min(d for d in due if d is not None)
    lag = max(0.0, (now - oldest).total_seconds())
    return QueueState(ready=count, lag_seconds=lag)


# -- signals for the alert engine -----------------------------------------------------------------


def _mb(value: int) -> str:
    return f"{value / 1024 / 1024:.0f} MB"


def host_signals(health: HostHealth, now: datetime) -> list[Signal]:
    """Disk, memory and load of one machine against their thresholds. None of these names a
    customer: the engine links a platform-wide incident to every customer with an SLA."""
    group = f"host:{health.name}"
    out = []
    limit = settings.DISK_ALERT_PERCENT
    for disk in health.disks:
        used = float(disk["used_percent"])
        out.append(
            Signal(
                check="host.disk",
                subject=f"disk:{health.name}:{disk['path']}",
                ok=used < limit,
                summary=(
                    f"disk of {disk['path']} on {health.name} {used:.0f} % full "
                    f"(threshold {limit:g} %, {_mb(int(disk['free_bytes']))} free)"
                ),
                details=f"role: {disk.get('role', 'extra')}",
                group=group,
                value=used,
                at=now,
            )
        )
    if health.memory:
        used = float(health.memory["used_percent"])
        limit = settings.MEMORY_ALERT_PERCENT
        out.append(
            Signal(
                check="host.memory",
                subject=f"memory:{health.name}",
                ok=used < limit,
                summary=(
                    f"memory of {health.name} {used:.0f} % used (threshold {limit:g} %, "
                    f"{_mb(int(health.memory['available_bytes']))} available)"
                ),
                group=group,
                value=used,
                at=now,
            )
        )
    if health.load:
        per_cpu = float(health.load["per_cpu"])
        limit = settings.LOAD_ALERT_PER_CPU
        out.append(
            Signal(
                check="host.load",
                subject=f"load:{health.name}",
                ok=per_cpu < limit,
                summary=(
                    f"load of {health.name} {health.load['load5']} over 5 minutes on "
                    f"{health.load['cpus']} CPUs ({per_cpu:g} per CPU, threshold {limit:g})"
                ),
                group=group,
                value=per_cpu,
                at=now,
            )
        )
    return out


def service_signals(
    states: dict[str, ServiceState], rows, now: datetime, *, at: datetime | None = None
) -> list[Signal]:
    """One signal per service that must run: those /readyz wants (READY_SERVICES), and the web
    server once one has ever beaten (a development server that never does is not "down").

    A service that never beat is not reported while the platform is starting (no live process
    older than ``HEARTBEAT_STALE_SECONDS``), nor one stopped cleanly less than that ago (a
    restart): neither is an incident. One whose process died is reported at once. The
    signals are stamped ``at`` (default ``now``)."""
    wanted = set(settings.READY_SERVICES) | {r.service for r in rows}
    stale = timedelta(seconds=settings.HEARTBEAT_STALE_SECONDS)
    starting = not any(r.started_at <= now - stale for r in rows if _is_live(r, now))
    out = []
    for service in SERVICES:
        if service not in wanted:
            continue
        state = states[service]
        if starting and not state.alive and state.age_seconds is None:
            continue
        if state.stopped and state.age_seconds < settings.HEARTBEAT_STALE_SECONDS:
            continue
        if state.alive:
            summary = f"{service}: {state.processes} process(es) alive on {', '.join(state.hosts)}"
        else:
            summary = f"{service} is not running: {state.reason}"
        out.append(
            Signal(
                check=f"service.{service}",
                subject=f"service:{service}",
                ok=state.alive,
                summary=summary,
                value=state.age_seconds,
                at=at or now,
            )
        )
    return out


def platform_signals(now: datetime) -> list[Signal]:
    """Every platform signal of this moment (the check ``alerts.scan`` runs), stamped ``now``.
    Heartbeats and the queue are real observations, so they are judged by the clock, not by
    ``now`` (a scan told a later ``now`` to try the alert rules must not find every live
    process silent). Also deletes the heartbeats of processes gone for a day."""
    clock = timezone.now()
    ServiceHeartbeat.objects.filter(seen_at__lt=clock - PRUNE_AFTER).delete()
    rows = heartbeat_rows()
    signals = service_signals(services(now=clock, rows=rows), rows, clock, at=now)
    for health in hosts(now=clock, rows=rows).values():
        signals += host_signals(health, now)
    state = queue(now=clock)
    if state is not None:
        limit = settings.QUEUE_LAG_ALERT_SECONDS
        signals.append(
            Signal(
                check="queue.lag",
                subject="queue:default",
                ok=state.lag_seconds < limit,
                summary=(
                    f"{state.ready} task(s) waiting, the oldest for {state.lag_seconds:.0f} s "
                    f"(threshold {limit} s)"
                ),
                value=state.lag_seconds,
                at=now,
            )
        )
    if settings.DATABASE_SIZE_ALERT_MB:
        size = database_size()
        if size is not None:
            limit_mb = settings.DATABASE_SIZE_ALERT_MB
            signals.append(
                Signal(
                    check="database.size",
                    subject="database:default",
                    ok=size < limit_mb * 1024 * 1024,
                    summary=f"database {_mb(size)} (threshold {limit_mb} MB)",
                    value=float(size),
                    at=now,
                )
            )
    return signals


# -- readiness ------------------------------------------------------------------------------------


def readiness(*, now: datetime | None = None) -> tuple[bool, dict]:
    """(ready, body) for ``/readyz``: the database answers and every service of
    ``READY_SERVICES`` is alive. The body names what is not (no host names, no data)."""
    now = now or timezone.now()
    body: dict = {"database": {"ok": True}, "services": {}, "stale": []}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        states = services(now=now)
    except Exception as exc:
        body["database"] = {"ok": False, "error": type(exc).__name__}
        body["stale"] = ["database"]
        body["ready"] = False
        return False, body
    for service in settings.READY_SERVICES:
        state = states.get(service)
        if state is None:
            continue  # not a service name (settings refuse one at start)
        entry = {"ok": state.alive, "age_seconds": _round(state.age_seconds)}
        if not state.alive:
            entry["reason"] = state.reason
            body["stale"].append(service)
        body["services"][service] = entry
    body["ready"] = not body["stale"]
    return body["ready"], body


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# -- wiring -------------------------------------------------------------------------------------

# After its own beat, a process reports the services that nobody else would see die: the scan
# runs on the task queue, so a dead worker would stop the very check that notices it, and the
# scheduler enqueues the scan, so a dead scheduler stops it too. The scheduler watches the
# workers, each worker the scheduler.
WATCHES = {"scheduler": ("worker",), "worker": ("scheduler",)}
SCAN_LEASE = "monitoring.scan"  # the lease alerts.scan() holds: one reporter at a time


def watch_peers(sender=None, *, service: str, now: datetime, **kwargs) -> None:
    """Receiver of ``heartbeats.beaten``: report the watched services' signals (only those
    /readyz wants). Skipped while a scan holds the monitoring lease (it reports them too)."""
    from otomat.monitoring import alerts
    from otomat.ops import leases

    peers = [p for p in WATCHES.get(service, ()) if p in settings.READY_SERVICES]
    if not peers:
        return
    holder = f"watch:{HOSTNAME}:{os.getpid()}"
    # A short lease: a watcher killed while holding it blocks the others for 30 s at most.
    if not leases.acquire(SCAN_LEASE, holder, 30):
        return
    try:
        rows = heartbeat_rows()
        signals = [
            s
            for s in service_signals(services(now=now, rows=rows), rows, now)
            if s.check in {f"service.{p}" for p in peers}
        ]
        alerts.report(signals, now=now)
    finally:
        leases.release(SCAN_LEASE, holder)


def connect() -> None:
    """Plug the platform checks in (called by the monitoring app at start): every scan runs
    ``platform_signals``; every beat of the scheduler and of a worker runs ``watch_peers``."""
    from otomat.monitoring import alerts

    alerts.register_check(platform_signals)
    heartbeats.beaten.connect(watch_peers, dispatch_uid="otomat.monitoring.platform.watch")
