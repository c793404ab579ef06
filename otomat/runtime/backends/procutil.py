"""/proc helpers and the pidfile registry that keeps "never an orphan, never two" true across
runner restarts.

A pid alone is not an identity: after a reboot or a long uptime the kernel reuses pids, and
killing "the pid in the pidfile" could hit an unrelated process. Every record therefore stores
the process start time (field 22 of /proc/<pid>/stat, in clock ticks since boot) and the exact
argv it was launched with; a leftover is killed only when both still match.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("otomat.runtime.process")


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 overall; fields[0] is field 3 (state)


def proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return stat[stat.rindex(")") + 2]


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (via /proc/<pid>/task/*/children, else a /proc scan)."""
    found: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        tasks = list(task_dir.iterdir())
    except (FileNotFoundError, PermissionError):
        return []
    readable = False
    for task in tasks:
        with contextlib.suppress(FileNotFoundError, PermissionError, ProcessLookupError):
            found += [int(p) for p in (task / "children").read_text().split()]
            readable = True
    if readable:
        return found
    for entry in Path("/proc").iterdir():  # kernels without CONFIG_PROC_CHILDREN
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                status = (entry / "stat").read_text()
                if int(status[status.rindex(")") + 2 :].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """All descendants of ``pid``, breadth first."""
    out: list[int] = []
    queue = [pid]
    while queue:
        for child in children(queue.pop(0)):
            out.append(child)
            queue.append(child)
    return out


def is_bwrap(pid: int) -> bool:
    argv = cmdline(pid)
    return bool(argv) and os.path.basename(argv[0]) == "bwrap"


def memory_kib(pid: int) -> dict[str, int]:
    """``{"rss": …, "uss": …, "pss": …}`` in KiB from /proc/<pid>/smaps_rollup (USS = private
    clean + private dirty: what killing the process would free)."""
    values: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    for match in re.finditer(r"^(\w+):\s+(\d+) kB", text, re.MULTILINE):
        values[match.group(1)] = int(match.group(2))
    return {
        "rss": values.get("Rss", 0),
        "pss": values.get("Pss", 0),
        "uss": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0),
    }


@dataclass
class PidRecord:
    """One launched process as written to ``<run_dir>/pids/<name>.json``."""

    pid: int
    start_time: int
    argv: list[str]
    instance_id: str | None  # None for a warm spare
    generation: int
    spare_dir: str | None = None

    def matches_live_process(self) -> bool:
        """True only when the pid still belongs to the process we launched."""
        return start_time(self.pid) == self.start_time and cmdline(self.pid) == self.argv


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:100]


class PidRegistry:
    """Pidfiles of every process a backend launched, one file per instance or spare."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir) / "pids"
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.dir / f"{_safe_name(name)}.json"

    def write(self, name: str, record: PidRecord) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a record."""
        path = self.path(name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, path)

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(name).unlink()

    def records(self) -> dict[str, PidRecord]:
        out: dict[str, PidRecord] = {}
        for path in sorted(self.dir.glob("*.json")):
            try:
                out[path.stem] = PidRecord(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable pidfile %s: %s", path, exc)
                out[path.stem] = PidRecord(
                    pid=0, start_time=-1, argv=[], instance_id=None, generation=0
                )
        return out

    def kill_leftovers(self, timeout: float = 5.0) -> list[PidRecord]:
        """SIGKILL every recorded process that is still the one we launched (whole process
        group: in no-sandbox mode it is a session leader), wait for them to go, and remove
        all pidfiles. Returns the records that were killed."""
        killed: list[PidRecord] = []
        signalled: list[tuple[int, int | None]] = []
        for name, record in self.records().items():
            if record.pid > 0 and record.matches_live_process():
                log.warning(
                    "killing leftover process %s (instance %s, generation %s)",
                    record.pid,
                    record.instance_id or "spare",
                    record.generation,
                )
                signalled += [
                    (pid, start_time(pid)) for pid in kill_tree(record.pid, signal.SIGKILL)
                ]
                killed.append(record)
            elif record.pid > 0 and alive(record.pid):
                log.info(
                    "pid %s of %s was reused by another process; not touching it", record.pid, name
                )
            self.remove(name)
        deadline = time.monotonic() + timeout
        for pid, started in signalled:
            # Gone, a zombie, or (after a very fast reuse) a different process: all fine.
            while time.monotonic() < deadline and alive(pid) and start_time(pid) == started:
                time.sleep(0.02)
        return killed


def kill_tree(pid: int, sig: int) -> list[int]:
    """Send ``sig`` to ``pid``, its descendants and, if it leads one, its process group;
    return the pids signalled."""
    targets = [pid, *descendants(pid)]
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
    for target in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, sig)
    return targets
