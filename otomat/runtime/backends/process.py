"""The ``process`` backend: one sandboxed OS process per instance.

What it guarantees (each point is tested in ``otomat/runtime/tests/test_process_backend.py``):

* **Isolation** — bubblewrap when available (see ``sandbox.py``), rlimits always, a clean
  environment, the configuration (secrets included) only on stdin.
* **Supervision** — an unexpected exit is restarted after an exponential backoff (1 s doubling to
  60 s, reset after a stable run); 5 unexpected exits within 120 s, or a permanent exit code
  (invalid token, bad entry point), end in ``Phase.FAILED`` with the last log lines.
* **Never two, never an orphan** — ``ensure_running``/``ensure_stopped`` are serialised per
  instance; every launched process is recorded in a pidfile (pid + start time + argv) so the next
  runner's ``open()`` kills leftovers without risking a reused pid; children die with the runner
  (``--die-with-parent`` / ``PR_SET_PDEATHSIG``); an exclusive lock on ``run_dir`` refuses a
  second backend on the same directory.
* **Fast provisioning** — warm spares per product version: already sandboxed, aiogram and the
  product imported, waiting on stdin. Taking one over costs a rename and a pipe write instead of
  ~3 s of imports (see ``datadir.py`` for how it gets the instance's data directory).
* **Logs** — stdout+stderr captured line by line with a timestamp into ``spec.log_path``,
  rotated by size, secrets scrubbed (``otomat.runtime.logs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from otomat.botkit import protocol
from otomat.runtime.backends import datadir, procutil
from otomat.runtime.backends import sandbox as sandboxing
from otomat.runtime.backends.base import (
    ActualState,
    InstanceSpec,
    OnChange,
    Phase,
    reported_time,
)
from otomat.runtime.backends.child import Child, describe_exit
from otomat.runtime.logs import DEFAULT_BACKUPS, DEFAULT_MAX_BYTES, LogWriter, secret_values, tail

log = logging.getLogger("otomat.runtime.process")

FAILED_LOG_LINES = 20
SPARE_FAILURE_LIMIT = 3  # spares of one version dying before use: stop re-creating them


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart and when to give up. Times in seconds."""

    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 60.0  # a run at least this long resets the backoff to the initial delay
    crash_loop_exits: int = 5  # this many unexpected exits …
    crash_loop_window: float = 120.0  # … within this window → FAILED
    command_ready_after: float = 1.0  # a command product alive this long counts as RUNNING
    hang_after: float = 60.0  # a RUNNING process that sent heartbeats, silent this long: killed


class _SpareKey(NamedTuple):
    product_slug: str
    version: str
    source_dir: str
    entry: str
    memory_mb: int


def _spare_key(spec: InstanceSpec) -> _SpareKey:
    return _SpareKey(
        spec.product_slug, spec.version, str(spec.source_dir), spec.entry or "", spec.memory_mb
    )


@dataclass(eq=False)
class _Spare:
    key: _SpareKey
    child: Child
    dir: Path
    pid_name: str
    taken: bool = False


@dataclass(eq=False)
class _Instance:
    spec: InstanceSpec
    state: ActualState
    log: LogWriter
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    launched: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    child: Child | None = None
    fatal: str = ""  # the host's own explanation of a permanent exit
    exits: deque[float] = field(default_factory=deque)

    @property
    def active(self) -> bool:
        return self.task is not None and not self.task.done()


def _now() -> datetime:
    return datetime.now(UTC)


def _pid_name(instance_id: str) -> str:
    return f"inst-{instance_id}"


class ProcessBackend:
    """Runs each instance as its own (sandboxed) OS process. See the module docstring.

    ``run_dir`` holds pidfiles, the lock and (by default) the spare directories; it must be on
    the same filesystem as the instances' data directories for spares to be used. ``sandbox`` is
    ``"auto"`` (bwrap if installed and its self-test passes), ``"bwrap"`` (required: ``open()``
    raises without it) or ``"none"``. ``spares`` is the number of warm spares kept per product
    version named in :meth:`prepare` (0 disables them). ``on_change`` is called synchronously
    from the event loop with a copy of the state on every phase change, heartbeat and error.
    """

    name = "process"

    def __init__(
        self,
        *,
        run_dir: Path,
        on_change: OnChange | None = None,
        sandbox: str = "auto",
        spares: int = 1,
        spare_dir: Path | None = None,
        python: str | None = None,
        policy: RestartPolicy | None = None,
        stop_timeout: float = 5.0,
        heartbeat_seconds: float = protocol.DEFAULT_HEARTBEAT_SECONDS,
        log_max_bytes: int = DEFAULT_MAX_BYTES,
        log_backups: int = DEFAULT_BACKUPS,
        limits: sandboxing.Limits | None = None,
    ) -> None:
        if sandbox not in ("auto", "bwrap", "none"):
            raise ValueError(f"sandbox must be auto, bwrap or none, not {sandbox!r}")
        self.run_dir = Path(run_dir)
        self.spare_root = Path(spare_dir) if spare_dir else self.run_dir / "spares"
        self.sandbox_setting = sandbox
        self.sandbox_mode: str | None = None  # resolved by open(): "bwrap" or "none"
        self.spares_per_version = spares
        self.python = python or sys.executable
        self.policy = policy or RestartPolicy()
        self.stop_timeout = stop_timeout
        self.heartbeat_seconds = heartbeat_seconds
        self.log_max_bytes = log_max_bytes
        self.log_backups = log_backups
        self.limits = limits or sandboxing.Limits()
        self._on_change = on_change
        self._bwrap: str | None = None
        self._registry: procutil.PidRegistry | None = None
        self._lock_file: Any = None
        self._instances: dict[str, _Instance] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._spares: dict[_SpareKey, list[_Spare]] = {}
        self._spare_templates: dict[_SpareKey, InstanceSpec] = {}
        self._spare_failures: dict[_SpareKey, int] = {}
        self._spare_locks: dict[_SpareKey, asyncio.Lock] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._opened = False
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Take the run_dir lock, resolve the sandbox, kill leftovers of a previous runner and
        clean its spare directories. Raises ``RuntimeError`` if another backend holds the lock or
        ``sandbox="bwrap"`` cannot work. The caller then re-issues ``ensure_running``."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.run_dir / "backend.lock", "a+")  # noqa: SIM115 - held open
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise RuntimeError(f"another process backend is using {self.run_dir}") from None
        self.sandbox_mode = await self._resolve_sandbox()
        self._registry = procutil.PidRegistry(self.run_dir)
        killed = await asyncio.to_thread(self._registry.kill_leftovers)
        if killed:
            log.warning("killed %d leftover process(es) of a previous runner", len(killed))
        await asyncio.to_thread(datadir.recover, self.spare_root)
        self.spare_root.mkdir(parents=True, exist_ok=True)
        self._opened = True
        log.info("process backend open (sandbox %s, run dir %s)", self.sandbox_mode, self.run_dir)

    async def _resolve_sandbox(self) -> str:
        mode, self._bwrap, reason = await asyncio.to_thread(
            sandboxing.resolve_mode, self.sandbox_setting, scratch=self.run_dir / "selftest"
        )
        if reason is not None:
            log.warning("running instances WITHOUT a sandbox: %s", reason)
        return mode

    async def close(self) -> None:
        """Stop every instance and spare (SIGTERM, SIGKILL after ``stop_timeout``), cancel
        background work and release the lock. Bounded by about ``stop_timeout + 3`` seconds."""
        if self._closed:
            return
        self._closed = True
        background = list(self._background)
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        spares = [s for pool in self._spares.values() for s in pool]
        self._spares.clear()
        await asyncio.gather(
            *(self._stop_instance(inst) for inst in self._instances.values() if inst.active),
            *(self._retire_spare(s) for s in spares),
            return_exceptions=True,
        )
        for inst in self._instances.values():
            inst.log.close()
        if self._registry is not None:
            # Anything still recorded was caught mid-launch by the cancellation above.
            await asyncio.to_thread(self._registry.kill_leftovers)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- the Backend interface ----------------------------------------------------------------

    def _lock(self, instance_id: str) -> asyncio.Lock:
        return self._locks.setdefault(instance_id, asyncio.Lock())

    def _check_open(self) -> None:
        if not self._opened or self._closed:
            raise RuntimeError("the process backend is not open")

    async def ensure_running(self, spec: InstanceSpec) -> None:
        """Make ``spec`` run; returns once its process is launched (not yet ready).

        No-op while the same generation is starting, running or backing off; an instance of
        another generation is stopped first; a FAILED or STOPPED one starts afresh (restart
        counters reset). Launch problems end in FAILED with the reason, never in an exception.
        """
        self._check_open()
        if not spec.entry and not spec.command:
            raise ValueError(f"instance {spec.instance_id}: spec has neither entry nor command")
        if spec.data_dir == Path() or spec.log_path == Path():
            raise ValueError(f"instance {spec.instance_id}: spec needs data_dir and log_path")
        async with self._lock(spec.instance_id):
            inst = self._instances.get(spec.instance_id)
            if inst is not None and inst.active:
                if inst.spec.generation == spec.generation:
                    return
                inst.log.write([f"[otomat] replacing generation {inst.spec.generation}"])
                await self._stop_instance(inst)
            if inst is not None:
                inst.log.close()
            writer = LogWriter(
                spec.log_path,
                max_bytes=self.log_max_bytes,
                backups=self.log_backups,
                secrets=secret_values(spec.config),
            )
            state = ActualState(instance_id=spec.instance_id, phase=Phase.STARTING)
            state.generation = spec.generation
            inst = _Instance(spec=spec, state=state, log=writer)
            self._instances[spec.instance_id] = inst
            inst.task = asyncio.create_task(self._supervise(inst))
            await inst.launched.wait()

    async def ensure_stopped(self, instance_id: str) -> None:
        """Stop the instance gracefully (SIGTERM, SIGKILL after ``stop_timeout``); idempotent.
        A FAILED instance is reported STOPPED."""
        self._check_open()
        async with self._lock(instance_id):
            inst = self._instances.get(instance_id)
            if inst is None:
                return
            if inst.active:
                await self._stop_instance(inst)
            elif inst.state.phase != Phase.STOPPED:
                self._set(inst, phase=Phase.STOPPED, pid=None)

    def actual(self) -> dict[str, ActualState]:
        return {iid: dataclasses.replace(inst.state) for iid, inst in self._instances.items()}

    async def prepare(self, specs: list[InstanceSpec]) -> None:
        """Keep ``spares`` warm spares for each botkit product version in ``specs``.

        ``specs`` is the complete wanted set: spares of versions not named are retired. Returns
        once missing spares are launched (their imports continue in the background).
        """
        self._check_open()
        if self.spares_per_version <= 0:
            return
        wanted = {_spare_key(s): s for s in specs if s.entry}
        for key in list(self._spares):
            if key not in wanted:
                for spare in self._spares.pop(key):
                    self._background_task(self._retire_spare(spare))
                self._spare_templates.pop(key, None)
        for key, spec in wanted.items():
            if key not in self._spare_templates:
                self._spare_failures[key] = 0
            self._spare_templates[key] = spec
            await self._fill_spares(key)

    # -- extras for the runner, tests and the bench -------------------------------------------

    def pids(self, instance_id: str) -> list[int]:
        """The program processes of an instance (without bwrap wrappers), outermost first."""
        inst = self._instances.get(instance_id)
        if inst is None or inst.child is None or inst.child.returncode is not None:
            return []
        return inst.child.program_pids()

    async def wait_spares_ready(self, timeout: float = 30.0) -> bool:
        """Wait until every wanted spare has finished its imports; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pools_full = all(
                len(self._spares.get(key, [])) >= self.spares_per_version
                for key in self._spare_templates
                if self._spare_failures.get(key, 0) < SPARE_FAILURE_LIMIT
            )
            spares = [s for pool in self._spares.values() for s in pool]
            if pools_full and all(s.child.standby.is_set() for s in spares):
                return True
            await asyncio.sleep(0.05)
        return False

    # -- supervision --------------------------------------------------------------------------

    def _set(self, inst: _Instance, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(inst.state, name, value)
        if self._on_change is not None:
            try:
                self._on_change(dataclasses.replace(inst.state))
            except Exception:
                log.exception("on_change callback failed for %s", inst.spec.instance_id)

    async def _supervise(self, inst: _Instance) -> None:
        """Launch, watch, restart with backoff; ends on stop, FAILED or cancellation."""
        delay = self.policy.backoff_initial
        try:
            while True:
                try:
                    child = await self._launch(inst)
                except Exception as exc:
                    log.exception("cannot launch instance %s", inst.spec.instance_id)
                    inst.log.write([f"[otomat] cannot start: {exc}"])
                    self._set(inst, phase=Phase.FAILED, pid=None, message=f"cannot start: {exc}")
                    return
                finally:
                    inst.launched.set()
                stopped = await self._watch(inst, child)
                if stopped:
                    return
                code = await child.wait()
                ran_for = time.monotonic() - child.started_monotonic
                self._forget_pid(inst)
                what = describe_exit(code, child.sandboxed)
                inst.log.write([f"[otomat] process ended: {what}"])
                if code in protocol.PERMANENT_EXIT_CODES:
                    reason = inst.fatal or f"permanent failure ({what})"
                    self._fail(inst, code, reason)
                    return
                now = time.monotonic()
                if ran_for >= self.policy.stable_after:
                    delay = self.policy.backoff_initial
                inst.exits.append(now)
                while inst.exits and now - inst.exits[0] > self.policy.crash_loop_window:
                    inst.exits.popleft()
                restarts = inst.state.restarts + 1
                if len(inst.exits) >= self.policy.crash_loop_exits:
                    reason = (
                        f"crash loop: {len(inst.exits)} unexpected exits within"
                        f" {self.policy.crash_loop_window:.0f} s (last: {what})"
                    )
                    inst.state.restarts = restarts
                    self._fail(inst, code, reason)
                    return
                inst.log.write([f"[otomat] restarting in {delay:g} s"])
                self._set(
                    inst,
                    phase=Phase.BACKOFF,
                    pid=None,
                    restarts=restarts,
                    last_exit_code=code,
                    message=f"{what}; restarting in {delay:g} s",
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(inst.stop.wait(), delay)
                if inst.stop.is_set():
                    inst.log.write(["[otomat] stopped"])
                    self._set(inst, phase=Phase.STOPPED, message="")
                    return
                delay = min(delay * 2, self.policy.backoff_max)
        except asyncio.CancelledError:
            if inst.child is not None and inst.child.returncode is None:
                inst.child.kill()
            raise

    async def _watch(self, inst: _Instance, child: Child) -> bool:
        """Wait for the child to exit (return False) or for a stop request (stop it, return
        True). Promotes command products to RUNNING; kills a process whose heartbeats stopped
        (a hung event loop answers nobody, yet would never exit by itself)."""
        exited = asyncio.create_task(child.proc.wait())
        stop = asyncio.create_task(inst.stop.wait())
        hung = False
        try:
            while True:
                done, _ = await asyncio.wait(
                    {exited, stop}, timeout=0.5, return_when="FIRST_COMPLETED"
                )
                if stop in done:
                    code = await child.terminate(self.stop_timeout)
                    self._forget_pid(inst)
                    inst.log.write([f"[otomat] stopped ({describe_exit(code, child.sandboxed)})"])
                    self._set(inst, phase=Phase.STOPPED, pid=None, last_exit_code=code, message="")
                    return True
                if exited in done:
                    return False
                age = time.monotonic() - child.started_monotonic
                if (
                    inst.spec.entry is None
                    and inst.state.phase == Phase.STARTING
                    and age >= self.policy.command_ready_after
                ):
                    self._set(inst, phase=Phase.RUNNING, ready_at=_now())
                silent = time.monotonic() - child.last_event_at
                if (
                    not hung
                    and child.sends_heartbeats
                    and inst.state.phase == Phase.RUNNING
                    and silent > max(self.policy.hang_after, 4 * self.heartbeat_seconds)
                ):
                    inst.log.write([f"[otomat] no heartbeat for {silent:.0f} s; killing"])
                    child.kill()
                    hung = True
        finally:
            for task in (exited, stop):
                task.cancel()

    def _fail(self, inst: _Instance, code: int | None, reason: str) -> None:
        inst.log.write([f"[otomat] giving up: {reason}"])
        lines = tail(inst.spec.log_path, FAILED_LOG_LINES)
        self._set(
            inst,
            phase=Phase.FAILED,
            pid=None,
            last_exit_code=code,
            message=reason + "\n" + "\n".join(lines),
        )

    def _forget_pid(self, inst: _Instance) -> None:
        if self._registry is not None:
            self._registry.remove(_pid_name(inst.spec.instance_id))

    async def _stop_instance(self, inst: _Instance) -> None:
        inst.stop.set()
        if inst.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(inst.task), self.stop_timeout + 3)
        except TimeoutError:
            log.error("instance %s did not stop in time; killing", inst.spec.instance_id)
            inst.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await inst.task
            self._set(inst, phase=Phase.STOPPED, pid=None)

    def _handle_event(self, inst: _Instance, child: Child, event: dict[str, Any]) -> None:
        if inst.child is not child:
            return  # a late event from a replaced process
        kind = event.get("event")
        if kind == protocol.EVENT_READY:
            self._set(inst, phase=Phase.RUNNING, ready_at=_now(), message="")
        elif kind == protocol.EVENT_HEARTBEAT:
            changes: dict[str, Any] = {"last_heartbeat": _now()}
            for name, key in (("updates_handled", "updates"), ("errors", "errors")):
                if isinstance(event.get(key), int):
                    changes[name] = event[key]
            last_update = reported_time(event.get("last_update"))
            if last_update is not None:
                changes["last_update"] = last_update
            self._set(inst, **changes)
        elif kind == protocol.EVENT_ERROR:
            message = inst.log.scrub(str(event.get("message", "")))[:500]
            self._set(inst, errors=inst.state.errors + 1, message=f"handler error: {message}")
        elif kind == protocol.EVENT_FATAL:
            inst.fatal = inst.log.scrub(str(event.get("message", "")))[:500]

    # -- launching ----------------------------------------------------------------------------

    def _start_line(self, spec: InstanceSpec, data_dir_inside: str) -> bytes:
        payload = {
            "instance_id": spec.instance_id,
            "config": spec.config,
            "api_url": spec.bot_api_url,
            "data_dir": data_dir_inside,
            "heartbeat_seconds": self.heartbeat_seconds,
        }
        return (json.dumps(payload, separators=(",", ":")) + "\n").encode()

    async def _spawn(
        self,
        spec: InstanceSpec,
        *,
        data_dir: Path,
        instance_id: str | None,
        pid_name: str,
        spare_dir: Path | None = None,
    ) -> Child:
        """Launch the program for ``spec`` with ``data_dir`` as its data dir; record its pid."""
        assert self.sandbox_mode is not None and self._registry is not None
        read_fd, write_fd = os.pipe()
        try:
            launch = sandboxing.build_launch(
                mode=self.sandbox_mode,
                bwrap=self._bwrap,
                source_dir=Path(spec.source_dir).absolute(),
                data_dir=data_dir.absolute(),
                entry=spec.entry,
                command=spec.command,
                control_fd=write_fd,
                instance_id=instance_id,
                python=self.python,
            )
            limits = dataclasses.replace(self.limits, memory_mb=spec.memory_mb)
            proc = await asyncio.create_subprocess_exec(
                *launch.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=launch.env,
                cwd=launch.cwd,
                pass_fds=(write_fd,),
                preexec_fn=sandboxing.make_preexec(limits, pdeathsig=True),
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        child = Child(proc, launch, read_fd)
        self._registry.write(
            pid_name,
            procutil.PidRecord(
                pid=child.pid,
                start_time=child.start_time,
                argv=launch.argv,
                instance_id=instance_id,
                generation=spec.generation,
                spare_dir=str(spare_dir) if spare_dir else None,
            ),
        )
        await child.start_pumps()
        return child

    async def _launch(self, inst: _Instance) -> Child:
        """Start ``inst``: take over a warm spare when possible, else launch cold."""
        spec = inst.spec
        inst.fatal = ""
        child = await self._take_spare(spec) if spec.entry else None
        how = "warm spare"
        if child is None:
            how = "cold start"
            spec.data_dir.mkdir(parents=True, exist_ok=True)
            child = await self._spawn(
                spec,
                data_dir=spec.data_dir,
                instance_id=spec.instance_id,
                pid_name=_pid_name(spec.instance_id),
            )
        inst.child = child
        child.attach(inst.log.write, lambda event: self._handle_event(inst, child, event))
        inst.log.write(
            [
                f"[otomat] started pid {child.pid} (generation {spec.generation},"
                f" sandbox {self.sandbox_mode}, {how})"
            ]
        )
        self._set(
            inst, phase=Phase.STARTING, pid=child.pid, started_at=_now(), ready_at=None, message=""
        )
        inside = sandboxing.DATA_MOUNT if child.sandboxed else str(spec.data_dir.absolute())
        if not await child.send_line(self._start_line(spec, inside)):
            inst.log.write(["[otomat] the process closed its stdin before the start line"])
        return child

    # -- warm spares --------------------------------------------------------------------------

    def _background_task(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fill_spares(self, key: _SpareKey) -> None:
        lock = self._spare_locks.setdefault(key, asyncio.Lock())
        async with lock:
            spec = self._spare_templates.get(key)
            pool = self._spares.setdefault(key, [])
            while (
                spec is not None
                and not self._closed
                and len(pool) < self.spares_per_version
                and self._spare_failures.get(key, 0) < SPARE_FAILURE_LIMIT
            ):
                spare_id = uuid.uuid4().hex[:12]
                spare_dir = self.spare_root / spare_id
                spare_dir.mkdir(mode=0o700, parents=True)
                pid_name = f"spare-{spare_id}"
                try:
                    child = await self._spawn(
                        spec,
                        data_dir=spare_dir,
                        instance_id=None,
                        pid_name=pid_name,
                        spare_dir=spare_dir,
                    )
                except Exception:
                    log.exception("cannot launch a spare for %s %s", key.product_slug, key.version)
                    shutil.rmtree(spare_dir, ignore_errors=True)
                    self._spare_failures[key] = self._spare_failures.get(key, 0) + 1
                    continue
                spare = _Spare(key=key, child=child, dir=spare_dir, pid_name=pid_name)
                pool.append(spare)
                self._background_task(self._watch_spare(spare))

    async def _watch_spare(self, spare: _Spare) -> None:
        """Clean up a spare that exits before being taken over."""
        code = await spare.child.wait()
        if spare.taken:
            return
        pool = self._spares.get(spare.key, [])
        if spare in pool:
            pool.remove(spare)
        if self._registry is not None:
            self._registry.remove(spare.pid_name)
        shutil.rmtree(spare.dir, ignore_errors=True)
        if self._closed or spare.key not in self._spare_templates:
            return
        self._spare_failures[spare.key] = self._spare_failures.get(spare.key, 0) + 1
        log.warning(
            "spare for %s %s died before use (%s): %s",
            spare.key.product_slug,
            spare.key.version,
            describe_exit(code, spare.child.sandboxed),
            " | ".join(list(spare.child.buffer)[-5:]),
        )
        await self._fill_spares(spare.key)

    async def _take_spare(self, spec: InstanceSpec) -> Child | None:
        """Pop a live spare for ``spec``'s version, give it the instance's data dir and its
        pidfile; start a replacement in the background. None when there is no usable spare."""
        key = _spare_key(spec)
        pool = self._spares.get(key)
        if not pool or self._registry is None:
            return None
        if not datadir.same_filesystem(self.spare_root, spec.data_dir):
            log.warning(
                "spares in %s are on another filesystem than %s", self.spare_root, spec.data_dir
            )
            return None
        pool.sort(key=lambda s: not s.child.standby.is_set())  # ready ones first
        while pool:
            spare = pool.pop(0)
            if spare.child.returncode is not None:
                continue
            spare.taken = True
            try:
                datadir.adopt(spare.dir, spec.data_dir)
            except OSError:
                log.exception("cannot hand %s to a spare", spec.data_dir)
                spare.child.kill()
                self._registry.remove(spare.pid_name)
                continue
            record = procutil.PidRecord(
                pid=spare.child.pid,
                start_time=spare.child.start_time,
                argv=spare.child.launch.argv,
                instance_id=spec.instance_id,
                generation=spec.generation,
            )
            self._registry.write(_pid_name(spec.instance_id), record)
            self._registry.remove(spare.pid_name)
            self._background_task(self._refill_later(key))
            return spare.child
        return None

    async def _refill_later(self, key: _SpareKey) -> None:
        # Give the bot that just took the spare a head start on this 2-core class of machine:
        # a new spare's imports cost ~3 s of CPU.
        await asyncio.sleep(1.0)
        await self._fill_spares(key)

    async def _retire_spare(self, spare: _Spare) -> None:
        spare.taken = True  # its watcher must not re-create it
        await spare.child.terminate(self.stop_timeout)
        if self._registry is not None:
            self._registry.remove(spare.pid_name)
        shutil.rmtree(spare.dir, ignore_errors=True)
