"""The small interface every runtime backend implements.

The runner (``otomat.runtime.runner``) owns the database; a backend owns processes (or pods, or
bots inside a shared host). The runner hands a backend an :class:`InstanceSpec` describing what
should run and asks it to converge; the backend reports what actually happens through the
``on_change`` callback it was constructed with. A backend never touches the database.

Backends: ``process`` (one sandboxed OS process per instance), ``shared`` (many instances in
one host process), ``kubernetes`` (Deployments and Secrets in a cluster, docs/kubernetes.md).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol


class Phase(enum.StrEnum):
    """What a backend observes about one instance."""

    STARTING = "starting"  # process launched, not yet reported ready
    RUNNING = "running"  # reported ready (bot polling / serving)
    BACKOFF = "backoff"  # exited unexpectedly, waiting to be restarted
    STOPPED = "stopped"  # stopped on request
    FAILED = "failed"  # crash loop: gave up restarting until the next start() call


@dataclass(frozen=True)
class InstanceSpec:
    """Everything a backend needs to run one instance.

    ``config`` holds the full validated configuration including decrypted secrets; it lives in
    memory only and is passed to the program on stdin, never through argv, environment or files.
    ``generation`` changes whenever the runnable definition changes (config edit, upgrade,
    explicit restart); a backend that runs an older generation must replace it.
    """

    instance_id: str
    product_slug: str
    version: str
    source_dir: Path  # the product version's files, mounted read-only
    entry: str | None  # "package.module:factory" for botkit products
    command: tuple[str, ...] | None  # argv for any-language products (entry is None then)
    config: dict[str, Any] = field(repr=False)
    data_dir: Path = Path()  # private writable directory of this instance
    log_path: Path = Path()  # rotated by the backend
    bot_api_url: str = "https://api.telegram.org"
    memory_mb: int = 256
    generation: int = 1
    runtime: str = "process"  # the product version's runtime: which backend runs it


@dataclass
class ActualState:
    """A backend's view of one instance, reported through ``on_change``."""

    instance_id: str
    phase: Phase
    generation: int = 0
    pid: int | None = None
    started_at: datetime | None = None
    ready_at: datetime | None = None
    restarts: int = 0  # unexpected exits since the last start() call
    last_exit_code: int | None = None
    last_heartbeat: datetime | None = None
    updates_handled: int = 0
    errors: int = 0
    last_update: datetime | None = None  # when the bot last finished handling an update
    message: str = ""  # human-readable reason, e.g. the last log lines on FAILED


OnChange = Callable[[ActualState], None]


def reported_time(value: Any) -> datetime | None:
    """A program's reported epoch seconds (``last_update`` in heartbeats) as an aware UTC
    datetime; None for anything that is not a plausible time (a program is not trusted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 1_000_000_000 <= value <= 10_000_000_000:  # 2001 .. 2286
        return None
    from datetime import UTC

    return datetime.fromtimestamp(value, UTC)


class Backend(Protocol):
    """A runtime backend. All methods are called from the runner's asyncio loop."""

    name: str

    async def open(self) -> None:
        """Start background work and clean up leftovers of a previous runner (adopt or replace
        whatever still runs, so that one instance never has two processes and none is orphaned)."""

    async def ensure_running(self, spec: InstanceSpec) -> None:
        """Make ``spec`` run. Idempotent: a no-op when the same generation is already running or
        starting; replaces an older generation; restarts a FAILED instance."""

    async def ensure_stopped(self, instance_id: str) -> None:
        """Stop the instance if it runs (graceful signal, then kill). Idempotent."""

    def actual(self) -> dict[str, ActualState]:
        """A snapshot of every instance the backend currently knows."""

    async def prepare(self, specs: list[InstanceSpec]) -> None:
        """Hint: these product versions are likely to be started soon (warm spares)."""

    async def close(self) -> None:
        """Stop every instance and background task (runner shutdown)."""
