"""botkit v2's persistent job scheduler: ``ctx.scheduler``.

A product registers coroutines per job *kind* in ``build_router`` and schedules jobs that are
persisted in the instance's store backend (``jobs`` table of ``store.sqlite3`` in the process
runtime, ``otomat.botdata`` rows in the shared runtime), so they survive restarts::

    @ctx.scheduler.handler("delete")
    async def delete(ctx: BotContext, bot: Bot, payload: dict) -> None:
        await bot.delete_message(payload["chat"], payload["message"])

    ctx.scheduler.run_at(300, "delete", {"chat": 1, "message": 2}, key="delete:1:2")
    ctx.scheduler.run_every(60, "check", {"source": "a"}, key="check:a")

Semantics (the contract other code relies on):

* **At least once.** A job is removed (one-off) or moved to its next time (repeating) only after
  its handler returned; a crash or stop mid-handler leaves it due, so it runs again after restart.
  Handlers must therefore be idempotent enough to run twice.
* **No pile-up.** A job that fell due while the bot was down runs once at start; a repeating job
  then moves to the next multiple of its interval after now (never one run per missed period).
* **Failures.** An exception (or the per-job timeout, default 60 s) is logged with secrets
  redacted and retried after 2, 4, 8, 16 s (``retry_base`` doubling); after ``MAX_ATTEMPTS``
  failed attempts a one-off job is dropped and a repeating job skips to its next period, both
  with an error log.
* **Isolation.** Each job runs in its own task with a timeout; at most ``max_concurrency`` per
  instance run at once, so one instance's slow jobs never block another's.

The synchronous methods (``run_at``, ``run_every``, ``cancel``, ``pending``) are one store write
each; ``run`` is the loop the host drives (``botkit.host`` in process mode, the shared host once
per instance).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from otomat.botkit.store import JobRow, Store, _encode

if TYPE_CHECKING:
    import aiogram

    from otomat.botkit.context import BotContext

JobHandler = Callable[["BotContext", "aiogram.Bot", dict], Awaitable[None]]

MAX_ATTEMPTS = 5
DEFAULT_TIMEOUT = 60.0
MAX_KIND_LENGTH = 100
MAX_JOB_KEY_LENGTH = 300
MAX_PAYLOAD_BYTES = 64 * 1024  # a job payload is a pointer to work, not the data itself
MAX_SECONDS = 10 * 366 * 86400  # delays and intervals: ten years is plenty, and stays in range


@dataclass(frozen=True, slots=True)
class Job:
    """A pending job as ``Scheduler.pending`` reports it."""

    key: str
    kind: str
    payload: dict[str, Any]
    due_at: datetime  # aware, UTC
    every: float | None  # seconds between runs; None for a one-off job
    attempts: int  # failed attempts of the current occurrence


@dataclass(frozen=True, slots=True)
class _Registered:
    fn: JobHandler
    timeout: float


def _check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not kind:
        raise TypeError("job kind must be a non-empty string")
    if len(kind) > MAX_KIND_LENGTH:
        raise ValueError(f"job kind is at most {MAX_KIND_LENGTH} characters")
    return kind


def _check_job_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError("job key must be a non-empty string")
    if len(key) > MAX_JOB_KEY_LENGTH:
        raise ValueError(f"job key is at most {MAX_JOB_KEY_LENGTH} characters")
    return key


def _check_payload(payload: dict | None) -> dict[str, Any]:
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise TypeError("job payload must be a dict")
    encoded = _encode(payload)  # TypeError/ValueError for what JSON cannot hold
    if len(encoded.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"job payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    return payload


def _check_seconds(value: float, name: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds")
    if not math.isfinite(value) or (value <= 0 if positive else value < 0) or value > MAX_SECONDS:
        raise ValueError(
            f"{name} must be a number {'> 0' if positive else '>= 0'} and at most ten years"
        )
    return float(value)


def next_due(due: float, every: float, now: float) -> float:
    """The first time ``due + k * every`` (k >= 1) strictly after ``now``.

    Keeps a repeating job on its phase while skipping every period missed during downtime, so it
    runs once after a restart instead of once per missed period.
    """
    if now < due:
        return due + every
    missed = math.floor((now - due) / every) + 1
    candidate = due + missed * every
    # Float rounding can land exactly on ``now``; the result must be in the future.
    return candidate if candidate > now else candidate + every


def retry_delay(attempts: int, base: float) -> float:
    """Seconds before retry number ``attempts`` (1-based): ``base * 2 ** (attempts - 1)``."""
    return base * 2 ** (attempts - 1)


class Scheduler:
    """Persistent run-at / run-every jobs of one instance (see the module docstring).

    ``clock`` returns POSIX seconds (``time.time`` by default; tests inject one or use
    ``time_machine``). ``max_sleep`` bounds how long ``run`` sleeps without looking at the store
    (jobs scheduled by this object wake it at once; the bound catches clock jumps and rows
    written by someone else). 30 s keeps an idle instance at two indexed queries a minute,
    which matters when a shared host runs a thousand of them against one database.
    """

    def __init__(
        self,
        ctx: BotContext,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        retry_base: float = 2.0,
        max_concurrency: int = 8,
        max_sleep: float = 30.0,
        stop_grace: float = 1.0,
    ) -> None:
        self.ctx = ctx
        self.store = store if store is not None else ctx.store
        self.clock = clock
        self.retry_base = retry_base
        self.max_concurrency = max_concurrency
        self.max_sleep = max_sleep
        self.stop_grace = stop_grace
        self._handlers: dict[str, _Registered] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: dict[str, asyncio.Task[None]] = {}

    # -- registration and scheduling (synchronous, cheap) ------------------------------------

    def handler(
        self, kind: str, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Callable[[JobHandler], JobHandler]:
        """Register the coroutine run for jobs of ``kind`` (decorator; call it in build_router).

        ``timeout`` bounds one run (seconds); a run over it counts as a failed attempt.
        Registering a kind again replaces its handler.
        """
        _check_kind(kind)
        _check_seconds(timeout, "timeout", positive=True)

        def register(fn: JobHandler) -> JobHandler:
            if not callable(fn):
                raise TypeError("a job handler must be an async callable")
            self._handlers[kind] = _Registered(fn, float(timeout))
            return fn

        return register

    @property
    def kinds(self) -> list[str]:
        """The registered job kinds, sorted. A host may skip ``run`` when there are none."""
        return sorted(self._handlers)

    def run_at(
        self,
        when: datetime | float,
        kind: str,
        payload: dict | None = None,
        *,
        key: str | None = None,
    ) -> str:
        """Persist a one-off job due at ``when`` (aware datetime, or seconds from now). With
        ``key`` an existing job of the same key is replaced. Returns the job's key (generated if
        None). Raises ``TypeError``/``ValueError`` (nothing stored) for a naive datetime, a
        non-finite or negative delay, a bad kind or key, or a payload JSON cannot hold."""
        _check_kind(kind)
        payload = _check_payload(payload)
        if isinstance(when, datetime):
            if when.tzinfo is None or when.utcoffset() is None:
                raise ValueError("run_at needs an aware datetime (e.g. datetime.now(UTC))")
            due = when.timestamp()
            if due > self.clock() + MAX_SECONDS:
                raise ValueError("run_at is limited to ten years ahead")
        else:
            due = self.clock() + _check_seconds(when, "run_at delay", positive=False)
        key = _check_job_key(key) if key is not None else f"job:{uuid.uuid4().hex}"
        self.store.job_put(JobRow(key, kind, payload, due, None, 0, uuid.uuid4().hex))
        self.wake()
        return key

    def run_every(
        self,
        seconds: float,
        kind: str,
        payload: dict | None = None,
        *,
        key: str,
        first_in: float = 0,
    ) -> str:
        """Persist a repeating job; idempotent by ``key`` (registering the same key again keeps
        its schedule, updating interval/payload if they changed). The first run is ``first_in``
        seconds from now for a new job. A shorter new interval pulls the next run in to at most
        one new interval from now. Returns ``key``."""
        every = _check_seconds(seconds, "interval", positive=True)
        first = _check_seconds(first_in, "first_in", positive=False)
        _check_kind(kind)
        _check_job_key(key)
        payload = _check_payload(payload)
        now = self.clock()
        existing = self.store.job_get(key)
        if existing is not None and existing.every is not None:
            if (existing.kind, existing.payload, existing.every) == (kind, payload, every):
                return key  # the common case at every start: no write at all
            # Same occurrence (same rev), so a run in flight still concludes normally.
            due = min(existing.due, now + every)
            self.store.job_put(existing.moved(kind=kind, payload=payload, every=every, due=due))
        else:
            self.store.job_put(JobRow(key, kind, payload, now + first, every, 0, uuid.uuid4().hex))
        self.wake()
        return key

    def cancel(self, key: str) -> bool:
        """Remove the pending job ``key``; return whether it existed. A run already in progress
        finishes but is not rescheduled."""
        return self.store.job_delete(_check_job_key(key))

    def pending(self, kind: str | None = None) -> list[Job]:
        """Pending jobs (of ``kind`` if given), earliest first."""
        if kind is not None:
            _check_kind(kind)
        return [
            Job(
                key=r.key,
                kind=r.kind,
                payload=r.payload,
                due_at=datetime.fromtimestamp(r.due, UTC),
                every=r.every,
                attempts=r.attempts,
            )
            for r in self.store.job_list(kind)
        ]

    def wake(self) -> None:
        """Make ``run`` look at the store now (after a change, or after moving a test clock)."""
        if self._wake is None or self._loop is None or self._loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, bot: aiogram.Bot, stop: asyncio.Event) -> None:
        """Run due jobs until ``stop`` is set; called by the host (process mode: botkit.host;
        shared mode: the shared host, once per instance).

        On stop, runs in progress get ``stop_grace`` seconds to finish; the rest are cancelled
        and stay due (they run again after the restart). Raises ``RuntimeError`` if this
        scheduler is already running. Store errors are logged and retried,
        never fatal: the bot keeps answering messages even if its job table is unreadable.
        """
        if self._wake is not None:
            # Two loops over one instance's jobs would run each job twice.
            raise RuntimeError("this scheduler is already running")
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    sleep = self._start_due(bot)
                except Exception as exc:
                    self.ctx.log.error("scheduler: cannot read jobs (%s); retrying", _name(exc))
                    sleep = self.max_sleep
                waker = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait(
                    {stopping, waker}, timeout=sleep, return_when=asyncio.FIRST_COMPLETED
                )
                waker.cancel()
        finally:
            stopping.cancel()
            await self._drain()
            self._wake = None

    def _start_due(self, bot: aiogram.Bot) -> float:
        """Start tasks for due jobs not already running; return how long to sleep."""
        now = self.clock()
        # Look a little ahead so the sleep can end right when the next job falls due.
        rows = self.store.job_due(now + self.max_sleep, self.max_concurrency + len(self._running))
        sleep = self.max_sleep
        for row in rows:
            if row.key in self._running:
                continue
            if row.due > now:
                sleep = min(sleep, row.due - now)
                break
            if len(self._running) >= self.max_concurrency:
                break
            task = asyncio.ensure_future(self._execute(row, bot))
            self._running[row.key] = task
            task.add_done_callback(lambda _t, key=row.key: self._finished(key))
        return max(sleep, 0.0)

    def _finished(self, key: str) -> None:
        self._running.pop(key, None)
        if self._wake is not None:
            self._wake.set()  # a slot is free; a retry may be due

    async def _drain(self) -> None:
        tasks = list(self._running.values())
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=self.stop_grace)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _execute(self, row: JobRow, bot: aiogram.Bot) -> None:
        registered = self._handlers.get(row.kind)
        try:
            if registered is None:
                raise LookupError(f"no handler registered for job kind {row.kind!r}")
            await asyncio.wait_for(
                registered.fn(self.ctx, bot, dict(row.payload)), registered.timeout
            )
        except asyncio.CancelledError:
            raise  # stopping: the job stays as it is and runs again after the restart
        except Exception as exc:
            self._failed(row, exc)
        else:
            self._conclude(row, attempts=0)

    def _conclude(self, row: JobRow, attempts: int) -> None:
        due = None if row.every is None else next_due(row.due, row.every, self.clock())
        try:
            self.store.job_finish(row.key, row.rev, due, attempts)
        except Exception as exc:
            # The job stays due and runs again: at-least-once, as promised.
            self.ctx.log.error("scheduler: cannot update job %s (%s)", row.key, _name(exc))

    def _failed(self, row: JobRow, exc: BaseException) -> None:
        attempts = row.attempts + 1
        what = "timed out" if isinstance(exc, TimeoutError) else "failed"
        self.ctx.log.warning(
            "job %s (%s) %s, attempt %d of %d:\n%s",
            row.key,
            row.kind,
            what,
            attempts,
            MAX_ATTEMPTS,
            self._redact("".join(traceback.format_exception(exc)).rstrip()),
        )
        if attempts >= MAX_ATTEMPTS:
            if row.every is None:
                self.ctx.log.error(
                    "job %s (%s) dropped after %d attempts", row.key, row.kind, attempts
                )
            else:
                self.ctx.log.error(
                    "job %s (%s) failed %d times; skipping to its next period",
                    row.key,
                    row.kind,
                    attempts,
                )
            self._conclude(row, attempts=0)
            return
        due = self.clock() + retry_delay(attempts, self.retry_base)
        try:
            self.store.job_finish(row.key, row.rev, due, attempts)
        except Exception as store_exc:
            self.ctx.log.error("scheduler: cannot update job %s (%s)", row.key, _name(store_exc))

    def _redact(self, text: str) -> str:
        """Replace the configuration's secret values (the bot token above all) in ``text``."""
        for name, value in self.ctx.config.items():
            secret = any(w in name.lower() for w in ("token", "secret", "password", "key"))
            if secret and isinstance(value, str) and len(value) >= 6:
                text = text.replace(value, "[redacted]")
        return text


def _name(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
