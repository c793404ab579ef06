"""The ``shared`` backend: many instances of one product version per host process.

Each product version gets host processes (``python -m otomat.runtime.shared_host``, protocol in
that module and in docs/runtime.md), each serving up to ``instances_per_host`` instances. The
backend adds and removes instances live over the host's stdin, reads per-instance events from
its control pipe, and — in webhook mode — registers an unguessable route per instance on the
:class:`~otomat.runtime.ingress.WebhookIngress` that forwards bodies to the host over a
socketpair.

Guarantees (tested in ``otomat/runtime/tests/test_shared_*.py``):

* **Isolation between instances** is the host's job (a task per update, a concurrency bound and
  a timeout per instance, errors counted per instance); an invalid token fails only its instance.
* **No instance lost** — a host that dies is restarted with backoff (1 s doubling to 60 s) and
  every instance assigned to it is added again; meanwhile they report BACKOFF with the host's
  exit. 5 host deaths within 120 s make its instances FAILED.
* **Never an orphan** — hosts die with the runner (``PR_SET_PDEATHSIG``), are recorded in a
  pidfile registry (``procutil``) so the next ``open()`` kills leftovers, and ``close()`` stops
  them in bounded time. ``run_dir`` must be this backend's own directory (not the process
  backend's: each kills every leftover in its registry).
* **Secrets** reach the host only on stdin; argv and environment carry none, logs are scrubbed.
* **No platform credentials in a host** (docs/decisions/0003-shared-host-isolation.md): with
  the default ``store="database"`` the runner serves each instance's rows over a socketpair to
  its host, for a capability token granted per instance (``otomat.runtime.hoststore``); the
  host has no database URL, key or Django settings. Hosts run in bubblewrap like process
  instances (``sandbox="auto"``: when bwrap works), seeing only the system, the Python
  installation, the ``otomat`` package, their product version and a private ``/data`` into which
  the data directory of each instance they carry is moved (and moved back when it leaves).
  Instance log lines come back as ``log`` events and the runner writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from otomat.botkit import protocol
from otomat.runtime import shared_host
from otomat.runtime.backends import procutil
from otomat.runtime.backends import sandbox as sandboxing
from otomat.runtime.backends.base import (
    ActualState,
    InstanceSpec,
    OnChange,
    Phase,
    reported_time,
)
from otomat.runtime.hoststore import STORE_FD_ENV, StoreService
from otomat.runtime.ingress import Route, WebhookIngress
from otomat.runtime.logs import LogWriter, secret_values, tail

log = logging.getLogger("otomat.runtime.shared")

FAILED_LOG_LINES = 20
PERMANENT_REASONS = frozenset({"invalid_token", "config", "entry"})
MAX_FORWARD_BUFFER = 8 << 20  # bytes queued to one host before the ingress answers 503
OTOMAT_ROOT = Path(__file__).resolve().parents[3]  # the directory holding the package
STORES = ("database", "sqlite")  # the runner serves "database"; "sqlite": a file per instance
SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # instance ids name directories in a host's /data
MAX_LOG_LINES_PER_EVENT = 256


@dataclass(frozen=True)
class HostPolicy:
    """Host restarts and instance failures. Times in seconds."""

    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 60.0  # a host alive this long resets the backoff
    crash_loop_exits: int = 5  # host deaths within the window → its instances FAILED
    crash_loop_window: float = 120.0
    hang_after: float = 60.0  # a host silent this long (no heartbeat) is killed
    instance_crashes: int = 5  # unexpected instance ends within the window → FAILED


class _Key(NamedTuple):
    product_slug: str
    version: str
    source_dir: str
    entry: str


SPARE_KEY = _Key("", "", "", "")  # a spare host's key until it adopts a version
MAX_SPARE_FAILURES = 3  # spares in a row that die before adopting: stop keeping one


@dataclass(eq=False)
class _Host:
    key: _Key
    name: str
    members: set[str] = field(default_factory=set)
    proc: asyncio.subprocess.Process | None = None
    start_time: int = 0
    stdin: asyncio.StreamWriter | None = None
    updates: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None
    alive: bool = False
    imported: bool = False  # said host_ready: imports done, an add is answered in milliseconds
    spare: bool = False  # started without a product version, waiting for adopt
    adopt: bool = False  # given a version while a spare: the adopt command is still to be sent
    stopping: bool = False
    last_event: float = 0.0
    exits: deque[float] = field(default_factory=deque)
    log: LogWriter | None = None
    secrets: set[str] = field(default_factory=set)
    sandboxed: bool = False
    service: StoreService | None = None  # this spawn's store service (store="database")
    lent: dict[str, Path] = field(default_factory=dict)  # instance id → its data dir's home
    writers: set[str] = field(default_factory=set)  # instances whose log lines it may send

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.alive else None


@dataclass(eq=False)
class _Inst:
    spec: InstanceSpec
    state: ActualState
    host: _Host | None = None
    route: Route | None = None
    removed: asyncio.Event = field(default_factory=asyncio.Event)
    crashes: deque[float] = field(default_factory=deque)
    last_report: float = 0.0
    log: LogWriter | None = None  # for the spec's log_path and secrets; reset with the spec


def _now() -> datetime:
    return datetime.now(UTC)


def _key(spec: InstanceSpec) -> _Key:
    return _Key(spec.product_slug, spec.version, str(spec.source_dir), spec.entry or "")


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link ``source``'s files into ``target`` (copy them where links cannot be made)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, symlinks=True, copy_function=link, dirs_exist_ok=True)


class SharedBackend:
    """Runs botkit instances inside shared host processes. See the module docstring.

    ``ingress``: when given (and started by ``open()`` if needed), instances use webhooks
    through it; otherwise each polls. ``on_change`` is called synchronously on the event loop
    with a copy of the state on every phase change, error, and on heartbeats whose counters
    changed (else at most every ``report_every`` seconds), so thousands of idle instances do
    not flood the runner.
    """

    name = "shared"

    def __init__(
        self,
        *,
        run_dir: Path,
        on_change: OnChange | None = None,
        instances_per_host: int = 500,
        ingress: WebhookIngress | None = None,
        python: str | None = None,
        policy: HostPolicy | None = None,
        stop_timeout: float = 5.0,
        heartbeat_seconds: float = 5.0,
        update_timeout: float = 60.0,
        concurrency: int = 4,
        report_every: float = 30.0,
        host_memory_mb: int = 4096,
        store: str = "database",
        sandbox: str = "auto",
        spare_hosts: int = 0,
    ) -> None:
        if instances_per_host < 1:
            raise ValueError("instances_per_host must be at least 1")
        if not 0.1 <= heartbeat_seconds <= 3600 or update_timeout <= 0 or concurrency < 1:
            raise ValueError("heartbeat_seconds, update_timeout or concurrency out of range")
        if store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)}, not {store!r}")
        if sandbox not in sandboxing.SANDBOX_MODES:
            raise ValueError(f"sandbox must be auto, bwrap or none, not {sandbox!r}")
        if spare_hosts < 0:
            raise ValueError("spare_hosts must not be negative")
        self.spare_hosts = spare_hosts
        self._spares: list[_Host] = []
        self._spare_failures = 0
        self.store = store
        self.sandbox_setting = sandbox
        self.sandbox_mode: str | None = None  # resolved by open(): "bwrap" or "none"
        self._bwrap: str | None = None
        self.run_dir = Path(run_dir)
        self.instances_per_host = instances_per_host
        self.ingress = ingress
        self.python = python or sys.executable
        self.policy = policy or HostPolicy()
        self.stop_timeout = stop_timeout
        self.heartbeat_seconds = heartbeat_seconds
        self.update_timeout = update_timeout
        self.concurrency = concurrency
        self.report_every = report_every
        self.limits = sandboxing.Limits(memory_mb=host_memory_mb, nofile=16384)
        self._on_change = on_change
        self._registry: procutil.PidRegistry | None = None
        self._lock_file: Any = None
        self._hosts: dict[_Key, list[_Host]] = {}
        self._instances: dict[str, _Inst] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._opened = False
        self._closed = False

    def _background(self, coro: Any) -> None:
        """Run ``coro`` in a task kept referenced (the loop holds only weak references)."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Lock ``run_dir``, kill hosts a previous runner left, start the ingress. Raises
        ``RuntimeError`` when another shared backend holds the lock, ``OSError`` when the
        ingress cannot bind."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.run_dir / "shared-backend.lock", "a+")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise RuntimeError(f"another shared backend is using {self.run_dir}") from None
        self._registry = procutil.PidRegistry(self.run_dir)
        killed = await asyncio.to_thread(self._registry.kill_leftovers)
        if killed:
            log.warning("killed %d leftover shared host(s) of a previous runner", len(killed))
        await asyncio.to_thread(self._recover_lent)
        self.sandbox_mode, self._bwrap, reason = await asyncio.to_thread(
            sandboxing.resolve_mode, self.sandbox_setting, scratch=self.run_dir / "selftest"
        )
        if reason is not None:
            log.warning("running shared hosts WITHOUT a filesystem sandbox: %s", reason)
        if self.ingress is not None:
            await self.ingress.start()
        self._opened = True
        log.info("shared backend open (sandbox %s, store %s)", self.sandbox_mode, self.store)

    async def close(self) -> None:
        """Stop every host (SIGTERM, SIGKILL after ``stop_timeout``) and the ingress; bounded
        by about ``stop_timeout + 2`` seconds."""
        if self._closed:
            return
        self._closed = True
        hosts = [h for pool in self._hosts.values() for h in pool] + self._spares
        await asyncio.gather(*(self._stop_host(h) for h in hosts), return_exceptions=True)
        # Their store threads hold database connections: closed here, not left to the GC.
        services = [h.service for h in hosts if h.service is not None]
        await asyncio.gather(*(s.close() for s in services), return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for inst in self._instances.values():
            if inst.state.phase not in (Phase.STOPPED, Phase.FAILED):
                self._set(inst, phase=Phase.STOPPED, pid=None)
        if self.ingress is not None:
            await self.ingress.stop()
        if self._registry is not None:
            await asyncio.to_thread(self._registry.kill_leftovers)
        for host in hosts:
            self._give_back_all(host)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def _check_open(self) -> None:
        if not self._opened or self._closed:
            raise RuntimeError("the shared backend is not open")

    # -- the Backend interface ----------------------------------------------------------------

    async def ensure_running(self, spec: InstanceSpec) -> None:
        """Add ``spec`` to a host of its version (starting one if all are full). No-op when the
        same generation is starting or running; replaces another generation; restarts a
        FAILED or STOPPED instance. Raises ``ValueError`` for a spec this backend cannot run
        (no entry, no data_dir/log_path, no bot_token) — nothing is changed then."""
        self._check_open()
        if not spec.entry:
            raise ValueError(f"instance {spec.instance_id}: the shared runtime needs an entry")
        if spec.data_dir == Path() or spec.log_path == Path():
            raise ValueError(f"instance {spec.instance_id}: spec needs data_dir and log_path")
        if not isinstance(spec.config.get("bot_token"), str):
            raise ValueError(f"instance {spec.instance_id}: config has no bot_token string")
        if not SAFE_ID.fullmatch(spec.instance_id):
            raise ValueError(f"instance id {spec.instance_id!r}: letters, digits, _ . - only")
        async with self._locks.setdefault(spec.instance_id, asyncio.Lock()):
            inst = self._instances.get(spec.instance_id)
            if inst is not None and inst.host is not None:
                if inst.spec.generation == spec.generation and inst.spec.config == spec.config:
                    return
                await self._detach(inst)
            if inst is None:
                state = ActualState(instance_id=spec.instance_id, phase=Phase.STARTING)
                inst = _Inst(spec=spec, state=state)
                self._instances[spec.instance_id] = inst
            inst.spec = spec
            inst.log = None
            inst.crashes.clear()
            inst.state.restarts = 0
            if self.ingress is not None and inst.route is None:
                iid = spec.instance_id
                inst.route = self.ingress.add_route(lambda body: self._forward(iid, body))
            host = self._pick_host(_key(spec))
            host.members.add(spec.instance_id)
            inst.host = host
            self._set(
                inst, phase=Phase.STARTING if host.alive else Phase.BACKOFF,
                generation=spec.generation, pid=host.pid, started_at=_now(), ready_at=None,
                message="",
            )  # fmt: skip
            if host.task is None:
                host.task = asyncio.create_task(self._supervise(host))
            elif host.alive:
                await self._send_add(host, inst)

    async def ensure_stopped(self, instance_id: str) -> None:
        """Remove the instance from its host (its handlers get a short grace); idempotent."""
        self._check_open()
        async with self._locks.setdefault(instance_id, asyncio.Lock()):
            inst = self._instances.get(instance_id)
            if inst is None:
                return
            await self._detach(inst)
            if inst.route is not None and self.ingress is not None:
                self.ingress.remove_route(inst.route.path)
                inst.route = None
            if inst.state.phase != Phase.STOPPED:
                self._set(inst, phase=Phase.STOPPED, pid=None, message="")

    def actual(self) -> dict[str, ActualState]:
        return {iid: dataclasses.replace(i.state) for iid, i in self._instances.items()}

    async def prepare(self, specs: list[InstanceSpec]) -> None:
        """Start one (empty) host per product version named, so the first install of a version
        does not wait for the imports; and keep ``spare_hosts`` spare hosts for any other
        version (see :meth:`_keep_spares`)."""
        self._check_open()
        for spec in specs:
            if spec.entry:
                host = self._pick_host(_key(spec))
                if host.task is None:
                    host.task = asyncio.create_task(self._supervise(host))
                elif host.adopt and host.alive:
                    await self._adopt(host)
        self._keep_spares()

    def _keep_spares(self) -> None:
        """Start spare hosts up to ``spare_hosts``: started and imported without a product
        version, each waits for a version that has no host with room (``_pick_host``), which
        then pays only for its own product's import instead of a host's start. Spares that
        die before adopting are restarted by their supervisor; after ``MAX_SPARE_FAILURES`` of
        them have given up in a row, none is kept any more."""
        if self._closed or not self._opened:
            return
        for host in [h for h in self._spares if h.task is not None and h.task.done()]:
            self._spares.remove(host)
            self._spare_failures += 1
        while len(self._spares) < self.spare_hosts and self._spare_failures < MAX_SPARE_FAILURES:
            name = f"host-spare-{uuid.uuid4().hex[:8]}"
            host = _Host(key=SPARE_KEY, name=name, spare=True)
            host.log = LogWriter(self.run_dir / "hosts" / f"{name}.log")
            self._spares.append(host)
            host.task = asyncio.create_task(self._supervise(host))

    def _take_spare(self, key: _Key) -> _Host | None:
        """A started spare host, now ``key``'s (the adopt command goes with its first add)."""
        for host in self._spares:
            if host.alive and not host.stopping and host.task is not None:
                self._spares.remove(host)
                host.key, host.spare, host.adopt = key, False, True
                self._spare_failures = 0
                self._write_host(
                    host, f"[otomat] spare host given {key.product_slug} {key.version}"
                )
                self._keep_spares()
                return host
        return None

    def spares(self) -> list[tuple[str, int | None, bool]]:
        """``(name, pid, imported)`` of every spare host (tests and the bench)."""
        return [(h.name, h.pid, h.imported) for h in self._spares]

    # -- extras for tests and the bench -------------------------------------------------------

    def hosts(self) -> list[tuple[str, int | None, list[str]]]:
        """``(name, pid, instance ids)`` of every host."""
        return [(h.name, h.pid, sorted(h.members)) for pool in self._hosts.values() for h in pool]

    def webhook_url(self, instance_id: str) -> str | None:
        """The URL the instance's bot is told to receive updates at (webhook mode)."""
        inst = self._instances.get(instance_id)
        if inst is None or inst.route is None or self.ingress is None:
            return None
        return self.ingress.url_for(inst.route)

    def webhook_secret(self, instance_id: str) -> str | None:
        """The instance's ``secret_token`` (for a load driver posting as Telegram would)."""
        inst = self._instances.get(instance_id)
        return inst.route.secret if inst is not None and inst.route is not None else None

    async def wait_hosts_ready(self, timeout: float = 30.0) -> bool:
        """Wait until every host finished its imports; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pools = [h for pool in self._hosts.values() for h in pool]
            if all(h.alive and h.imported for h in pools):
                return True
            await asyncio.sleep(0.05)
        return False

    # -- hosts --------------------------------------------------------------------------------

    def _pick_host(self, key: _Key) -> _Host:
        pool = self._hosts.setdefault(key, [])
        # A host whose supervisor gave up (bad entry, crash loop) is gone for good; starting
        # one of its instances again must start a fresh host, not wait on a dead one.
        pool[:] = [h for h in pool if h.task is None or not h.task.done()]
        for host in pool:
            if not host.stopping and len(host.members) < self.instances_per_host:
                return host
        if (spare := self._take_spare(key)) is not None:
            pool.append(spare)
            return spare
        name = f"host-{key.product_slug}-{key.version}-{uuid.uuid4().hex[:8]}"
        host = _Host(key=key, name=name)
        host.log = LogWriter(self.run_dir / "hosts" / f"{name}.log")
        pool.append(host)
        return host

    def _host_dir(self, host: _Host) -> Path:
        """The host's private directory; its ``data`` subdirectory is the sandbox's ``/data``."""
        return self.run_dir / "hosts" / host.name

    def _launch(
        self, host: _Host, fds: dict[str, int]
    ) -> tuple[list[str], dict[str, str], str, bool]:
        """``(argv, env, cwd, sandboxed)`` of a host: in bwrap when it works, else plain. The
        environment is the whole of it: no ``OTOMAT_*`` setting, no database URL, no key."""
        sandboxed = self.sandbox_mode == "bwrap" and self._bwrap is not None
        if host.spare:
            # Its product comes later: in the sandbox it is linked into this directory, which
            # is what /opt/product shows (see _adopt).
            source = self._host_dir(host) / "product"
            source.mkdir(parents=True, exist_ok=True)
            what = ["--spare"]
        else:
            source = Path(host.key.source_dir).absolute()
            inside = sandboxing.PRODUCT_MOUNT if sandboxed else str(source)
            what = ["--source", inside, "--entry", host.key.entry]
        program = [
            "-u", "-m", "otomat.runtime.shared_host", *what,
            "--heartbeat-seconds", str(self.heartbeat_seconds),
            "--update-timeout", str(self.update_timeout), "--concurrency", str(self.concurrency),
            "--store", "remote" if self.store == "database" else "sqlite",
        ]  # fmt: skip
        if sandboxed:
            assert self._bwrap is not None
            data = self._host_dir(host) / "data"
            data.mkdir(parents=True, exist_ok=True)
            env = sandboxing.clean_env(
                home=sandboxing.DATA_MOUNT,
                pythonpath=f"{sandboxing.OTOMAT_MOUNT}:{sandboxing.PRODUCT_MOUNT}",
                control_fd=fds[protocol.CONTROL_FD_ENV],
                instance_id=None,
            )
            env.update({k: str(v) for k, v in fds.items() if k != protocol.CONTROL_FD_ENV})
            argv = sandboxing.bwrap_argv(self._bwrap, source_dir=source, data_dir=data, env=env)
            return [*argv, "--", self.python, *program], {"PATH": env["PATH"]}, "/", True
        env = sandboxing.clean_env(
            home=str(self.run_dir),
            pythonpath=str(OTOMAT_ROOT) if host.spare else f"{OTOMAT_ROOT}:{source}",
            control_fd=fds[protocol.CONTROL_FD_ENV],
            instance_id=None,
        )
        env.update({k: str(v) for k, v in fds.items() if k != protocol.CONTROL_FD_ENV})
        return [self.python, *program], env, str(self.run_dir), False

    async def _spawn(self, host: _Host) -> None:
        assert self._registry is not None
        control_r, control_w = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        store_ours = store_theirs = None
        fds = {protocol.CONTROL_FD_ENV: control_w, shared_host.UPDATES_FD_ENV: theirs.fileno()}
        if self.store == "database":
            store_ours, store_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            fds[STORE_FD_ENV] = store_theirs.fileno()
        try:
            argv, env, cwd, sandboxed = self._launch(host, fds)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=cwd,
                pass_fds=tuple(fds.values()),
                preexec_fn=sandboxing.make_preexec(self.limits, pdeathsig=True),
                start_new_session=True,
            )
        except BaseException:
            os.close(control_r)
            ours.close()
            if store_ours is not None:
                store_ours.close()
            raise
        finally:
            os.close(control_w)
            theirs.close()
            if store_theirs is not None:
                store_theirs.close()
        host.sandboxed = sandboxed
        if store_ours is not None:
            service = host.service = StoreService(host.name)
            self._background(self._serve_store(service, store_ours))
        host.proc = proc
        host.imported = False
        host.adopt = False  # a restarted host is started with its version's --source/--entry
        host.stdin = proc.stdin  # type: ignore[assignment]
        host.start_time = procutil.start_time(proc.pid) or 0
        host.last_event = time.monotonic()
        self._registry.write(
            host.name,
            procutil.PidRecord(
                pid=proc.pid, start_time=host.start_time, argv=argv, instance_id=None,
                generation=0,
            ),
        )  # fmt: skip
        _, host.updates = await asyncio.open_unix_connection(sock=ours)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        pipe = os.fdopen(control_r, "rb", buffering=0)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        host.alive = True
        self._background(self._pump_events(host, proc, reader))
        self._background(self._pump_output(host, proc))

    async def _supervise(self, host: _Host) -> None:
        """Run the host; after an unexpected exit, restart it with backoff and re-add all its
        instances. Ends when the host is stopped or gives up."""
        delay = self.policy.backoff_initial
        try:
            while not self._closed and not host.stopping:
                await self._spawn(host)
                assert host.proc is not None
                started = time.monotonic()
                self._write_host(host, f"[otomat] shared host started, pid {host.proc.pid}")
                for iid in list(host.members):
                    inst = self._instances.get(iid)
                    if inst is not None:
                        self._set(inst, phase=Phase.STARTING, pid=host.proc.pid, ready_at=None)
                        await self._send_add(host, inst)
                code = await self._watch(host)
                host.alive = False
                if host.stopping or self._closed:
                    return
                assert self._registry is not None
                self._registry.remove(host.name)
                now = time.monotonic()
                if now - started >= self.policy.stable_after:
                    delay = self.policy.backoff_initial
                host.exits.append(now)
                while host.exits and now - host.exits[0] > self.policy.crash_loop_window:
                    host.exits.popleft()
                what = f"shared host pid {host.proc.pid} exited with code {code}"
                self._write_host(host, f"[otomat] {what}")
                permanent = code == protocol.EXIT_CONFIG_ERROR
                if permanent or len(host.exits) >= self.policy.crash_loop_exits:
                    reason = "the product's entry cannot be loaded" if permanent else "crash loop"
                    for iid in list(host.members):
                        if (inst := self._instances.get(iid)) is not None:
                            self._fail(inst, f"{reason}: {what}", code)
                    return
                for iid in list(host.members):
                    if (inst := self._instances.get(iid)) is not None:
                        self._set(
                            inst, phase=Phase.BACKOFF, pid=None, restarts=inst.state.restarts + 1,
                            last_exit_code=code, message=f"{what}; restarting in {delay:g} s",
                        )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.policy.backoff_max)
        except asyncio.CancelledError:
            if host.proc is not None and host.proc.returncode is None:
                host.proc.kill()
            raise
        except Exception:
            log.exception("supervising %s failed", host.name)
            for iid in list(host.members):
                if (inst := self._instances.get(iid)) is not None:
                    self._fail(inst, "the shared host could not be started", None)

    async def _watch(self, host: _Host) -> int:
        """Wait for the host to exit; kill it when its heartbeats stop (a hung loop)."""
        assert host.proc is not None
        limit = max(self.policy.hang_after, 4 * self.heartbeat_seconds)
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(host.proc.wait()), 1.0)
            except TimeoutError:
                silent = time.monotonic() - host.last_event
                # Only once its imports are done: a slow start on a busy machine is not a hang.
                if host.imported and silent > limit and host.proc.returncode is None:
                    self._write_host(host, f"[otomat] no event for {limit:.0f} s; killing")
                    with contextlib.suppress(ProcessLookupError):
                        host.proc.kill()

    @staticmethod
    def _terminate(host: _Host) -> None:
        """SIGTERM to the host program itself: bwrap does not forward signals, so through the
        sandbox the program (not the wrapper) is signalled, as ``child.Child`` does."""
        proc = host.proc
        if proc is None or proc.returncode is not None:
            return
        targets = []
        if host.sandboxed:
            targets = [p for p in procutil.descendants(proc.pid) if not procutil.is_bwrap(p)]
        for pid in targets or [proc.pid]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)

    async def _serve_store(self, service: StoreService, sock: socket.socket) -> None:
        try:
            await service.serve(sock)
        finally:
            await service.close()

    async def _stop_host(self, host: _Host) -> None:
        host.stopping = True
        proc = host.proc
        if proc is not None and proc.returncode is None:
            self._terminate(host)
            try:
                await asyncio.wait_for(proc.wait(), self.stop_timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if host.task is not None:
            host.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await host.task
        host.alive = False
        if self._registry is not None:
            self._registry.remove(host.name)
        self._give_back_all(host)

    async def _send(self, host: _Host, payload: dict[str, Any]) -> bool:
        if host.stdin is None or not host.alive:
            return False
        try:
            host.stdin.write((json.dumps(payload, separators=(",", ":")) + "\n").encode())
            await host.stdin.drain()
        except (ConnectionError, RuntimeError):
            return False  # the host died: its supervisor re-adds everything
        return True

    async def _adopt(self, host: _Host) -> bool:
        """Send a spare host (given a version by ``_pick_host``) its product: in the sandbox
        the version's files are hard-linked (copied across filesystems) into the directory
        its /opt/product shows, read-only inside. False when the host is gone or the files
        cannot be placed (the host is then killed: its supervisor restarts it as a host of its
        version)."""
        host.adopt = False
        key = host.key
        source = Path(key.source_dir).absolute()
        where = str(source)
        if host.sandboxed:
            try:
                await asyncio.to_thread(_link_tree, source, self._host_dir(host) / "product")
            except OSError as exc:
                self._write_host(host, f"[otomat] cannot place the product's files: {exc}")
                if host.proc is not None and host.proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        host.proc.kill()
                return False
            where = sandboxing.PRODUCT_MOUNT
        return await self._send(host, {"cmd": "adopt", "source": where, "entry": key.entry})

    async def _send_add(self, host: _Host, inst: _Inst) -> None:
        if host.adopt and not await self._adopt(host):
            return  # the host restarts and re-adds its members
        spec = inst.spec
        try:
            data_dir = self._lend(host, spec)
        except OSError as exc:
            self._fail(inst, f"cannot hand the data directory to the sandboxed host: {exc}", None)
            return
        token = host.service.grant(spec.instance_id) if host.service is not None else None
        host.writers.add(spec.instance_id)
        hook = None
        if inst.route is not None and self.ingress is not None:
            hook = {"url": self.ingress.url_for(inst.route), "secret": inst.route.secret}
        new = secret_values(spec.config) - host.secrets
        if new and host.log is not None:
            # The host's own log must not show any of its instances' secrets either. Kept
            # incrementally: recomputing over all members on every add is quadratic.
            host.secrets |= new
            host.log.set_secrets(host.secrets)
        inst.removed.clear()
        await self._send(
            host,
            {
                "cmd": "add", "instance_id": spec.instance_id, "generation": spec.generation,
                "config": spec.config, "api_url": spec.bot_api_url,
                "data_dir": data_dir, "log_path": None, "store": token, "webhook": hook,
            },
        )  # fmt: skip

    async def _detach(self, inst: _Inst) -> None:
        """Remove ``inst`` from its host and wait (bounded) until the host confirms."""
        host = inst.host
        inst.host = None
        if host is None:
            return
        host.members.discard(inst.spec.instance_id)
        if host.alive and await self._send(
            host, {"cmd": "remove", "instance_id": inst.spec.instance_id}
        ):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(inst.removed.wait(), self.stop_timeout)
        self._release(host, inst.spec.instance_id)
        pool = self._hosts.get(host.key, [])
        if not host.members and len([h for h in pool if not h.stopping]) > 1:
            pool.remove(host)  # keep one warm host per version, retire the other empty ones
            self._background(self._stop_host(host))

    # -- data directories of sandboxed hosts ----------------------------------------------------
    #
    # A sandbox's mounts are fixed when it starts, but instances join a host live. So a sandboxed
    # host gets one private directory as /data, and an instance joining it has its data
    # directory *moved* there (a rename: same inode, no copy) with a symbolic link left at its
    # usual path for the platform (exports, the instance page); leaving the host moves it back.
    # ``hosts/<name>/lent.json`` (outside /data, where the host cannot forge it) records where
    # each directory belongs, before it moves, so ``open()`` can move everything back after a
    # crash of the runner. Both paths must be on one filesystem (they are under DATA_DIR).

    def _write_lent(self, host: _Host) -> None:
        manifest = self._host_dir(host) / "lent.json"
        manifest.parent.mkdir(parents=True, exist_ok=True)
        tmp = manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps({iid: str(home) for iid, home in host.lent.items()}))
        os.replace(tmp, manifest)

    def _lend(self, host: _Host, spec: InstanceSpec) -> str:
        """Give ``spec``'s data directory to ``host``; return its path as the host sees it.
        Raises OSError (nothing moved) when it cannot."""
        if not host.sandboxed:
            return str(spec.data_dir.absolute())
        iid = spec.instance_id
        inside = f"{sandboxing.DATA_MOUNT}/{iid}"
        if iid in host.lent:
            return inside  # the host restarted: the directory is still where it was put
        home = spec.data_dir.absolute()
        target = self._host_dir(host) / "data" / iid
        if home.is_symlink():
            raise OSError(f"{home} is a symbolic link")
        home.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(target):  # something the host itself left under that name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink()
        host.lent[iid] = home
        self._write_lent(host)
        try:
            os.rename(home, target)
        except OSError as exc:
            del host.lent[iid]
            self._write_lent(host)
            if exc.errno == errno.EXDEV:
                raise OSError(f"{home} is on another filesystem than {self.run_dir}") from None
            raise
        os.symlink(target, home)
        return inside

    @staticmethod
    def _return_dir(target: Path, home: Path) -> None:
        """Move a lent directory back to ``home``. The host may have replaced it with a link or
        a file: only a real directory goes back, and ``home`` is checked after the move."""
        if home.is_symlink():
            home.unlink()
        if os.path.lexists(home):
            log.error("%s exists; leaving the lent copy at %s", home, target)
            return
        if os.path.lexists(target):
            if target.is_dir() and not target.is_symlink():
                os.rename(target, home)
            else:
                target.unlink()
        if home.is_symlink() or (os.path.lexists(home) and not home.is_dir()):
            home.unlink()  # swapped by the host between the check and the rename
        # Nothing at home now means nothing came back: the host removed its own directory, or
        # the platform deleted the instance's data (a link and what it pointed to).

    def _give_back(self, host: _Host, instance_id: str) -> None:
        home = host.lent.get(instance_id)
        if home is None:
            return
        try:
            self._return_dir(self._host_dir(host) / "data" / instance_id, home)
        except OSError:
            log.exception("cannot move the data directory of %s back", instance_id)
            return
        del host.lent[instance_id]
        self._write_lent(host)

    def _give_back_all(self, host: _Host) -> None:
        for iid in list(host.lent):
            self._give_back(host, iid)
        if not host.lent:
            shutil.rmtree(self._host_dir(host), ignore_errors=True)

    def _release(self, host: _Host, instance_id: str) -> None:
        """``instance_id`` left ``host``: its store token, log lines and data directory too."""
        if host.service is not None:
            host.service.revoke(instance_id)
        host.writers.discard(instance_id)
        self._give_back(host, instance_id)

    def _recover_lent(self) -> None:
        """After a runner crash (its hosts are already killed): move every lent directory back."""
        for manifest in sorted((self.run_dir / "hosts").glob("*/lent.json")):
            try:
                lent = {iid: Path(home) for iid, home in json.loads(manifest.read_text()).items()}
            except (OSError, ValueError, AttributeError):
                log.exception("unreadable %s; leaving its directories in place", manifest)
                continue
            left = False
            for iid, home in lent.items():
                try:
                    self._return_dir(manifest.parent / "data" / iid, home)
                except OSError:
                    log.exception("cannot move %s back to %s", iid, home)
                    left = True
            if not left:
                shutil.rmtree(manifest.parent, ignore_errors=True)

    # -- events -------------------------------------------------------------------------------

    async def _pump_output(self, host: _Host, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            self._write_host(host, line.decode(errors="replace").rstrip("\n"))

    def _write_host(self, host: _Host, line: str) -> None:
        if host.log is not None:
            with contextlib.suppress(OSError):
                host.log.write([line])

    async def _pump_events(
        self, host: _Host, proc: asyncio.subprocess.Process, reader: asyncio.StreamReader
    ) -> None:
        while True:
            try:
                line = await reader.readline()
            except ValueError:
                continue  # an absurdly long line: not ours
            if not line:
                return
            host.last_event = time.monotonic()
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and host.proc is proc:
                self._handle_event(host, event)

    def _handle_event(self, host: _Host, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "host_ready":
            host.imported = True
            if host.spare:
                self._write_host(host, "[otomat] spare host ready, waiting for a version")
            return
        if kind == "adopted":
            self._write_host(host, f"[otomat] imported {host.key.product_slug} {host.key.version}")
            return
        if kind == "host_heartbeat":
            return  # its arrival (last_event) is what the hang watchdog needs
        if kind == "log":
            iid, lines = str(event.get("instance_id")), event.get("lines")
            # Only for its own instances: a host must not write into another instance's log.
            target = self._instances.get(iid) if iid in host.writers else None
            if target is not None and isinstance(lines, list):
                self._write_log(target, [str(x) for x in lines[:MAX_LOG_LINES_PER_EVENT]])
            return
        inst = self._instances.get(str(event.get("instance_id")))
        if inst is None or inst.host is not host:
            if kind == "removed" and inst is not None:
                inst.removed.set()
            return
        generation = event.get("generation", inst.spec.generation)
        if generation != inst.spec.generation:
            return  # a late event of a replaced generation
        if kind == "ready":
            self._set(inst, phase=Phase.RUNNING, ready_at=_now(), pid=host.pid, message="")
        elif kind == "heartbeat":
            updates, errors = event.get("updates"), event.get("errors")
            last_update = reported_time(event.get("last_update"))
            inst.state.last_heartbeat = _now()
            changed = (updates, errors) != (inst.state.updates_handled, inst.state.errors) or (
                last_update is not None and last_update != inst.state.last_update
            )
            if isinstance(updates, int) and isinstance(errors, int):
                inst.state.updates_handled, inst.state.errors = updates, errors
            if last_update is not None:
                inst.state.last_update = last_update
            if changed or time.monotonic() - inst.last_report > self.report_every:
                self._set(inst)
        elif kind == "error":
            message = str(event.get("message", ""))[:500]
            self._set(inst, errors=inst.state.errors + 1, message=f"handler error: {message}")
        elif kind in ("fatal", "rejected"):
            host.members.discard(inst.spec.instance_id)
            inst.host = None
            self._release(host, inst.spec.instance_id)
            reason = str(event.get("reason", "rejected"))
            message = str(event.get("message", ""))[:500]
            if kind == "rejected" or reason in PERMANENT_REASONS:
                self._fail(inst, message or reason, None)
            else:
                self._background(self._restart_instance(inst, message))
        elif kind == "removed":
            inst.removed.set()

    async def _restart_instance(self, inst: _Inst, why: str) -> None:
        """An instance ended on an unexpected error inside a healthy host: add it again after a
        backoff, or give up after ``instance_crashes`` within the crash-loop window."""
        now = time.monotonic()
        inst.crashes.append(now)
        while inst.crashes and now - inst.crashes[0] > self.policy.crash_loop_window:
            inst.crashes.popleft()
        if len(inst.crashes) >= self.policy.instance_crashes:
            self._fail(inst, f"crash loop: {why}", None)
            return
        delay = min(self.policy.backoff_initial * 2 ** (len(inst.crashes) - 1), 60)
        self._set(inst, phase=Phase.BACKOFF, pid=None, restarts=inst.state.restarts + 1,
                  message=f"{why}; restarting in {delay:g} s")  # fmt: skip
        await asyncio.sleep(delay)
        spec = inst.spec
        async with self._locks.setdefault(spec.instance_id, asyncio.Lock()):
            if self._closed or inst.host is not None or inst.state.phase != Phase.BACKOFF:
                return
            host = self._pick_host(_key(spec))
            host.members.add(spec.instance_id)
            inst.host = host
            if host.task is None:
                host.task = asyncio.create_task(self._supervise(host))
            elif host.alive:
                self._set(inst, phase=Phase.STARTING, pid=host.pid)
                await self._send_add(host, inst)

    def _forward(self, instance_id: str, body: bytes) -> bool:
        """Ingress sink: frame ``body`` to the instance's host; False (→ 503) when the host is
        down or its socket buffer is saturated."""
        inst = self._instances.get(instance_id)
        host = inst.host if inst is not None else None
        if host is None or not host.alive or host.updates is None:
            return False
        transport = host.updates.transport
        if transport.is_closing() or transport.get_write_buffer_size() > MAX_FORWARD_BUFFER:
            return False
        key = instance_id.encode()
        host.updates.write(shared_host.FRAME_HEADER.pack(len(key), len(body)) + key + body)
        return True

    # -- state --------------------------------------------------------------------------------

    def _write_log(self, inst: _Inst, lines: list[str]) -> None:
        """Append a host's log lines for ``inst`` (closed after each write, see shared_host)."""
        if inst.log is None:
            inst.log = LogWriter(inst.spec.log_path, secrets=secret_values(inst.spec.config))
        with contextlib.suppress(OSError):
            inst.log.write(lines)
        inst.log.close()

    def _fail(self, inst: _Inst, reason: str, code: int | None) -> None:
        if inst.host is not None:
            inst.host.members.discard(inst.spec.instance_id)
            self._release(inst.host, inst.spec.instance_id)
            inst.host = None
        writer = LogWriter(inst.spec.log_path, secrets=secret_values(inst.spec.config))
        with contextlib.suppress(OSError):
            writer.write([f"[otomat] giving up: {reason}"])
        writer.close()
        lines = tail(inst.spec.log_path, FAILED_LOG_LINES)
        self._set(inst, phase=Phase.FAILED, pid=None, last_exit_code=code,
                  message=reason + "\n" + "\n".join(lines))  # fmt: skip

    def _set(self, inst: _Inst, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(inst.state, name, value)
        inst.last_report = time.monotonic()
        if self._on_change is not None:
            try:
                self._on_change(dataclasses.replace(inst.state))
            except Exception:
                log.exception("on_change failed for %s", inst.spec.instance_id)
