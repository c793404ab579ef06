"""Service heartbeats: each platform process says, every ``HEARTBEAT_SECONDS``, that it lives
and how its machine is doing (``ServiceHeartbeat``).

Who beats, and from where:

* the runner, from its event loop (``otomat.runtime.runner``);
* the scheduler, as one of its own APScheduler jobs (``otomat.ops.scheduler``), lease holder or
  standby alike;
* a task worker, from a thread: ``otomat worker`` starts it at once; any other worker (a plain
  ``db_worker``, an RQ worker) when it begins its first task, through the task queue's
  ``task_started`` signal (``otomat.ops.stale``) — the scheduler enqueues something every
  minute, so such a worker beats within a minute of starting;
* the web server, from a thread started by the ASGI application (``otomat.asgi``).

The machine's health rides along (``otomat.lib.host.snapshot`` of the data directory, the
SQLite database's folder and ``DISK_PATHS``), so monitoring knows the disk, memory and load of
every host that runs a service without a second agent. A process that stops cleanly marks
its row stopped; one that dies leaves it to go stale.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.dispatch import Signal
from django.utils import timezone

from otomat.lib import host
from otomat.ops.models import ServiceHeartbeat
from otomat.ops.stale import HOSTNAME

log = logging.getLogger("otomat.ops")
Service = ServiceHeartbeat.Service

# Sent in the beating process after each beat, with ``service`` and ``now``: monitoring listens,
# so that the scheduler watches the workers and a worker the scheduler (each being the one
# process left to notice when the other dies). Receivers' errors are logged, never raised.
beaten = Signal()


def database_folder() -> str | None:
    """The folder of the SQLite database file, or None for a server database (PostgreSQL,
    MariaDB: their disk is the database server's; its size is measured by a query instead)."""
    if connection.vendor != "sqlite":
        return None
    name = str(connection.settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return str(Path(name).resolve().parent)


def watched_paths() -> list[tuple[str, str]]:
    """(role, path) of every folder whose disk is watched: "data" (DATA_DIR), "database" (the
    SQLite file's folder) and "extra" (each of DISK_PATHS); one filesystem may appear twice."""
    found = [("data", str(settings.DATA_DIR))]
    db = database_folder()
    if db is not None:
        found.append(("database", db))
    found += [("extra", str(Path(p).expanduser())) for p in settings.DISK_PATHS]
    seen: set[str] = set()
    unique = []
    for role, path in found:
        if path not in seen:
            seen.add(path)
            unique.append((role, path))
    return unique


def measure() -> dict:
    """This machine's health as stored in a heartbeat's ``info``."""
    roles = watched_paths()
    info = host.snapshot([path for _, path in roles])
    by_path = dict((path, role) for role, path in roles)
    for entry in info["disks"]:
        entry["role"] = by_path.get(entry["path"], "extra")
    return info


def beat(service: str, *, now: datetime | None = None) -> None:
    """Write this process's heartbeat for ``service`` (one row per service, host and pid)."""
    now = now or timezone.now()
    info = measure()
    pid = os.getpid()
    rows = ServiceHeartbeat.objects.filter(service=service, host=HOSTNAME, pid=pid)
    if not rows.update(seen_at=now, info=info):
        try:
            with transaction.atomic():
                ServiceHeartbeat.objects.create(
                    service=service, host=HOSTNAME, pid=pid, started_at=now, seen_at=now, info=info
                )
        except IntegrityError:  # a beat of this process from another thread got there first
            rows.update(seen_at=now, info=info)
    for receiver, error in beaten.send_robust(sender=ServiceHeartbeat, service=service, now=now):
        if error is not None:
            log.warning("after the %s's heartbeat, %s failed: %r", service, receiver, error)


def mark_stopped(service: str, *, now: datetime | None = None) -> None:
    """Mark this process's heartbeat for ``service`` stopped (a clean stop): no longer alive,
    but told apart from a crash, so a restart's few seconds alert no one while a crash does at
    once (``otomat.monitoring.platform``). Old rows go after a day."""
    now = now or timezone.now()
    for row in ServiceHeartbeat.objects.filter(service=service, host=HOSTNAME, pid=os.getpid()):
        row.info = {**(row.info or {}), "stopped_at": now.isoformat()}
        row.seen_at = now
        row.save(update_fields=["info", "seen_at"])


class _Beater:
    """Beats for one service from a daemon thread until stopped (or the process ends)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.pid = os.getpid()
        self.stop_event = threading.Event()
        # A beat and the stop mark are written one at a time: a beat still waiting for a busy
        # database when the process stops would otherwise land after the mark and erase it
        # (the clean stop then read as a crash).
        self.writing = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{service}", daemon=True)

    def _run(self) -> None:
        try:
            while True:
                close_old_connections()
                with self.writing:
                    if self.stop_event.is_set():
                        break
                    try:
                        beat(self.service)
                    except Exception:  # a busy or unreachable database: the next beat tries
                        log.warning("heartbeat of the %s not written", self.service, exc_info=True)
                if self.stop_event.wait(settings.HEARTBEAT_SECONDS):
                    break
        finally:
            connection.close()

    def stop(self) -> None:
        self.stop_event.set()
        with self.writing:  # after a beat being written, and no beat after this
            try:
                mark_stopped(self.service)
            except Exception:
                log.warning("heartbeat of the %s not removed", self.service, exc_info=True)
            finally:
                connection.close()
        self.thread.join(timeout=5)


_beaters: dict[str, _Beater] = {}
_lock = threading.Lock()


def start(service: str) -> None:
    """Start beating for ``service`` from a thread, once per process (later calls, and calls in
    a forked child of a process that already beats, are handled: the child gets its own)."""
    with _lock:
        current = _beaters.get(service)
        if current is not None and current.pid == os.getpid() and current.thread.is_alive():
            return
        beater = _Beater(service)
        _beaters[service] = beater
        beater.thread.start()
        if current is None:
            atexit.register(stop, service)


def stop(service: str) -> None:
    """Stop the thread of ``service`` and mark its row stopped (a clean stop)."""
    with _lock:
        beater = _beaters.pop(service, None)
    if beater is not None and beater.pid == os.getpid():
        beater.stop()
