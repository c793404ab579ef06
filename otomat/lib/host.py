"""This machine's health, measured with the standard library only (Linux ``/proc`` where it
helps): disk usage of a path, memory, load. Plain helpers, no Django; the services put what
they measure into their heartbeat (``otomat.ops.heartbeats``) and monitoring turns it into
signals (``otomat.monitoring.platform``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def disk(path: str | os.PathLike) -> dict:
    """{"path", "total_bytes", "free_bytes", "used_percent"} of the filesystem holding
    ``path`` (the nearest existing parent if ``path`` itself does not exist yet). ``free`` is
    what an unprivileged process may still write (``statvfs`` f_bavail), so the percentage is
    what fills up for us, counting the blocks reserved for root as used."""
    target = Path(path)
    while not target.exists() and target != target.parent:
        target = target.parent
    usage = shutil.disk_usage(target)
    total = usage.total or 1
    return {
        "path": str(path),
        "total_bytes": usage.total,
        "free_bytes": usage.free,
        "used_percent": round(100.0 * (total - usage.free) / total, 2),
    }


def memory() -> dict | None:
    """{"total_bytes", "available_bytes", "used_percent"} from /proc/meminfo, or None where
    there is no such file (not Linux). "Available" is the kernel's estimate of what can be
    given to new programs without swapping (page cache counts as available)."""
    try:
        with open("/proc/meminfo") as f:
            fields = {}
            for line in f:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    fields[name] = int(parts[0]) * 1024  # kB
    except (OSError, ValueError):
        return None
    total = fields.get("MemTotal")
    available = fields.get("MemAvailable", fields.get("MemFree"))
    if not total or available is None:
        return None
    return {
        "total_bytes": total,
        "available_bytes": available,
        "used_percent": round(100.0 * (total - available) / total, 2),
    }


def load() -> dict | None:
    """{"load1", "load5", "load15", "cpus", "per_cpu"} (per_cpu = the 5-minute load divided by
    the CPUs this process may use), or None where the system has no load average."""
    try:
        load1, load5, load15 = os.getloadavg()
    except OSError:
        return None
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return {
        "load1": round(load1, 2),
        "load5": round(load5, 2),
        "load15": round(load15, 2),
        "cpus": cpus,
        "per_cpu": round(load5 / max(cpus, 1), 2),
    }


def snapshot(paths: list[str | os.PathLike]) -> dict:
    """Everything above for this machine: {"disks": [...], "memory": ..., "load": ...}. A path
    that cannot be measured is left out rather than failing the whole snapshot."""
    disks = []
    for path in paths:
        try:
            disks.append(disk(path))
        except OSError:
            continue
    return {"disks": disks, "memory": memory(), "load": load()}
