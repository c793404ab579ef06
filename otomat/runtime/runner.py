"""The runner: a controller that drives what actually runs toward what the database wants.

It reads desired state (``Instance.desired``/``state``/``generation``) and asks a backend to
converge; it writes back what the backend observes (phase, pid, restarts, heartbeats) through
``otomat.runtime.observe``. It wakes at once when a service pokes its socket and also every
``RUNNER_RECONCILE_SECONDS``. Only one runner may run per data directory (a file lock), so one
instance can never have two processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from otomat.ops import heartbeats
from otomat.runtime.backends.base import ActualState, Backend, InstanceSpec, Phase
from otomat.runtime.notify import runner_socket_path

log = logging.getLogger("otomat.runner")


class RunnerAlreadyRunning(RuntimeError):
    pass


def make_backend(name: str, on_change) -> Backend:
    """The backends for every runtime, behind one composite: with ``name``
    (``OTOMAT_RUNTIME_BACKEND``) ``process``, the process backend runs ``process`` products and
    the ``shared`` backend ``shared`` ones on this machine; with ``kubernetes`` both run in a
    cluster (docs/kubernetes.md). Raises ImproperlyConfigured on an unknown name."""
    from django.core.exceptions import ImproperlyConfigured

    from otomat.runtime.backends.composite import CompositeBackend

    if name == "kubernetes":
        from otomat.runtime.backends.kubernetes import make_backends

        return CompositeBackend(make_backends(on_change))
    if name != "process":
        raise ImproperlyConfigured(
            f"OTOMAT_RUNTIME_BACKEND={name!r} is not a known backend (process, kubernetes)"
        )
    from otomat.runtime.backends.process import ProcessBackend, RestartPolicy

    backends: dict[str, Backend] = {
        "process": ProcessBackend(
            on_change=on_change,
            run_dir=Path(settings.RUN_DIR) / "process",
            sandbox=settings.RUNTIME_SANDBOX,
            spares=settings.RUNTIME_SPARES,
            policy=RestartPolicy(
                backoff_initial=settings.RUNTIME_BACKOFF_SECONDS,
                crash_loop_exits=settings.RUNTIME_CRASH_LOOP_EXITS,
                crash_loop_window=settings.RUNTIME_CRASH_LOOP_WINDOW,
            ),
        )
    }
    shared = make_shared_backend(on_change)
    if shared is not None:
        backends["shared"] = shared
    return CompositeBackend(backends)


def make_shared_backend(on_change) -> Backend | None:
    try:
        from otomat.runtime.backends.shared import SharedBackend

        ingress = None
        if settings.INGRESS_PUBLIC_URL:
            from otomat.runtime.ingress import WebhookIngress

            host, _, port = settings.INGRESS_LISTEN.rpartition(":")
            ingress = WebhookIngress(
                host=host or "127.0.0.1", port=int(port), public_url=settings.INGRESS_PUBLIC_URL
            )
        return SharedBackend(
            run_dir=Path(settings.RUN_DIR) / "shared",
            on_change=on_change,
            instances_per_host=settings.SHARED_INSTANCES_PER_HOST,
            ingress=ingress,
            store=settings.SHARED_STORE,
            sandbox=settings.RUNTIME_SANDBOX,
            spare_hosts=settings.SHARED_SPARE_HOSTS,
        )
    except Exception:  # the runner must keep running process products whatever happens here
        log.exception("the shared runtime is not available")
        return None


def keep_connection() -> None:
    """The runner keeps its database connection from one reconcile to the next (connecting
    costs more than a quiet poke); only one that failed is replaced."""
    for conn in connections.all(initialized_only=True):
        if conn.errors_occurred and conn.connection is not None and not conn.is_usable():
            conn.close()


@dataclass(frozen=True, slots=True)
class Row:
    """What the runner reads of an instance to decide: a handful of columns, no JSON, no secret."""

    instance_id: str
    wants_running: bool
    generation: int
    pid: int | None


RUNNING_STATES = ("provisioning", "running")


def read_rows(since: datetime | None) -> tuple[list[Row], datetime]:
    """Rows to reconcile and the time the read started: with ``since``, only instances whose
    runner fields changed at or after it (``Instance.changed_at``, an index range); without,
    every instance that is not terminated or still has a recorded pid (a full resync)."""
    from django.utils import timezone

    from otomat.instances.models import Instance

    keep_connection()
    started = timezone.now()
    if since is None:
        rows = Instance.objects.exclude(state=Instance.State.TERMINATED, pid__isnull=True)
    else:
        rows = Instance.objects.filter(changed_at__gte=since)
    columns = rows.order_by().values_list("id", "desired", "state", "generation", "pid")
    found = [
        Row(str(iid), desired == "running" and state in RUNNING_STATES, generation, pid)
        for iid, desired, state, generation, pid in columns.iterator(chunk_size=2000)
    ]
    return found, started


def load_specs(instance_ids: list[str]) -> list[InstanceSpec]:
    """Specs of the named instances that still want to run: the only place the runner loads
    configurations and decrypts secrets. Each product version is read (and its schema parsed)
    once, not once per instance."""
    from otomat.catalog.models import ProductVersion
    from otomat.instances.models import Instance

    keep_connection()
    specs: list[InstanceSpec] = []
    versions: dict[int, ProductVersion] = {}
    fields = ("id", "version_id", "config", "secrets", "kind", "desired", "state", "generation")
    for i in range(0, len(instance_ids), 500):
        chunk = instance_ids[i : i + 500]
        instances = list(Instance.objects.filter(pk__in=chunk).order_by().only(*fields))
        missing = {x.version_id for x in instances} - versions.keys()
        if missing:
            for version in (
                ProductVersion.objects.filter(pk__in=missing)
                .select_related("product")
                .defer("manifest")
            ):
                versions[version.pk] = version
        for instance in instances:
            if instance.desired == "running" and instance.state in RUNNING_STATES:
                specs.append(build_spec(instance, versions[instance.version_id]))
    return specs


def load_warm() -> list[InstanceSpec]:
    """Specs of product versions worth keeping a warm spare for: the latest version of each
    listed product (two queries, whatever the number of products)."""
    from otomat.catalog.models import ProductVersion

    keep_connection()
    latest: dict[int, object] = {}
    versions = (
        ProductVersion.objects.filter(product__is_listed=True)
        .select_related("product")
        .defer("manifest", "config_schema")
        .order_by("product_id", "-created_at", "-id")
    )
    for version in versions:
        latest.setdefault(version.product_id, version)
    return [spec_for_version(v) for v in latest.values() if v.entry]


def load_plan() -> tuple[list[InstanceSpec], dict[str, int | None], list[InstanceSpec]]:
    """The whole plan at once — specs of everything that should run (every configuration
    decrypted), ids that should not (with their recorded pid) and warm-spare templates. The
    runner no longer reconciles this way (see :meth:`Runner.reconcile`); kept for tools and
    tests that want the complete picture, and as the "before" of ``bench/runner_reconcile.py``."""
    from otomat.catalog.models import Product
    from otomat.instances.models import Instance

    keep_connection()
    to_run: list[InstanceSpec] = []
    to_stop: dict[str, int | None] = {}
    rows = (
        Instance.objects.exclude(state=Instance.State.TERMINATED, pid__isnull=True)
        .select_related("version__product")
        .iterator(chunk_size=500)
    )
    for instance in rows:
        wants_running = instance.desired == Instance.Desired.RUNNING and instance.state in (
            Instance.State.PROVISIONING,
            Instance.State.RUNNING,
        )
        if wants_running:
            to_run.append(spec_for(instance))
        else:
            to_stop[str(instance.id)] = instance.pid
    warm: list[InstanceSpec] = []
    for product in Product.objects.filter(is_listed=True):
        version = product.latest_version()
        if version is not None and version.entry:
            warm.append(spec_for_version(version))
    return to_run, to_stop, warm


def spec_for(instance) -> InstanceSpec:
    return build_spec(instance, instance.version)


def build_spec(instance, version) -> InstanceSpec:
    """``instance``'s spec with ``version`` (its product version, product loaded): decrypts the
    instance's secrets."""
    from otomat.catalog.schema_form import apply_defaults

    return InstanceSpec(
        instance_id=str(instance.id),
        product_slug=version.product.slug,
        version=version.version,
        source_dir=version.source_path,
        entry=version.entry or None,
        command=tuple(version.command) if version.command else None,
        config=apply_defaults(version.config_schema, instance.full_config()),
        data_dir=instance.data_dir,
        log_path=instance.log_path,
        # Sandboxes and trials never reach Telegram: they live on the built-in emulator.
        bot_api_url=settings.EMULATOR_URL if instance.on_emulator else settings.BOT_API_URL,
        memory_mb=version.memory_mb,
        generation=instance.generation,
        runtime=version.runtime,
    )


def spec_for_version(version) -> InstanceSpec:
    """A template spec for warm spares of ``version`` (no instance, no config)."""
    return InstanceSpec(
        instance_id="",
        product_slug=version.product.slug,
        version=version.version,
        source_dir=version.source_path,
        entry=version.entry or None,
        command=tuple(version.command) if version.command else None,
        config={},
        bot_api_url=settings.BOT_API_URL,
        memory_mb=version.memory_mb,
        runtime=version.runtime,
    )


class Runner:
    """See the module docstring and docs/runtime.md ("The runner's cost model").

    Between full resyncs it keeps, in memory, the last row it read of every instance
    (``plan``) and the last state every backend reported (``observed``, from ``on_change``), so a
    reconcile reads only the rows changed since the previous one and touches only instances
    whose row changed or whose observation disagrees with the row (``due``)."""

    def __init__(self, backend_name: str | None = None) -> None:
        self.backend_name = backend_name or settings.RUNTIME_BACKEND
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._observations: asyncio.Queue[ActualState] = asyncio.Queue()
        self._lock_file = None
        self._sock: socket.socket | None = None
        self.backend: Backend | None = None
        self.plan: dict[str, Row] = {}
        self.observed: dict[str, ActualState] = {}
        self.due: set[str] = set()
        self._since: datetime | None = None  # None: the next reconcile is a full resync
        self._synced_at = 0.0
        self._warm_at: float | None = None

    def _acquire_lock(self) -> None:
        run_dir = Path(settings.RUN_DIR)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(run_dir / "runner.lock", "a+")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RunnerAlreadyRunning(
                f"Another runner already runs for {settings.DATA_DIR} (lock {run_dir}/runner.lock)."
            ) from exc
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    def _open_socket(self, loop: asyncio.AbstractEventLoop) -> None:
        path = runner_socket_path()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.setblocking(False)

        def on_readable() -> None:
            with contextlib.suppress(BlockingIOError, OSError):
                while self._sock.recv(64):
                    pass
            self._wake.set()

        loop.add_reader(self._sock.fileno(), on_readable)

    def _on_change(self, state: ActualState) -> None:
        self.observe(state)
        self._observations.put_nowait(state)

    def observe(self, state: ActualState) -> None:
        """Note what a backend reports; an instance whose report disagrees with its row (a
        wanted instance stopped, an unwanted one running) is due at the next reconcile."""
        self.observed[state.instance_id] = state
        row = self.plan.get(state.instance_id)
        wanted = row is not None and row.wants_running
        if wanted == (state.phase == Phase.STOPPED):
            self.due.add(state.instance_id)

    async def _write_observations(self) -> None:
        from otomat.runtime.observe import record_observations

        while True:
            first = await self._observations.get()
            batch = {first.instance_id: first}
            while not self._observations.empty():  # coalesce bursts: the newest per instance wins
                item = self._observations.get_nowait()
                batch[item.instance_id] = item
            try:
                await sync_to_async(record_observations, thread_sensitive=True)(
                    list(batch.values())
                )
            except Exception:
                log.exception("could not record observations; they will be re-reported")

    async def _beat(self) -> None:
        """This runner's sign of life and its machine's health (``otomat.ops.heartbeats``)."""
        while not self._stopping.is_set():
            try:
                await sync_to_async(heartbeats.beat, thread_sensitive=True)(
                    heartbeats.Service.RUNNER
                )
            except Exception:  # a busy database: the next beat tries again
                log.warning("the runner's heartbeat was not written", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), settings.HEARTBEAT_SECONDS)

    def resync_soon(self) -> None:
        """Make the next reconcile a full resync (every row, every backend state)."""
        self._since = None

    async def reconcile(self, *, poked: bool = False) -> int:
        """Converge. A full resync (the first reconcile, then every ``RUNNER_RESYNC_SECONDS``)
        reads every live row's few columns and the backends' whole state; any other reads
        only rows changed since the previous read (minus ``RUNNER_CHANGE_MARGIN_SECONDS``, for
        transactions committed late and clocks of other machines) plus the instances ``due``.
        Specs (configurations, decrypted secrets) are built only for instances to be started.
        Warm-spare templates are refreshed on timed reconciles, not on pokes. Returns how many
        instances it looked at."""
        assert self.backend is not None
        now = time.monotonic()
        full = self._since is None or now - self._synced_at >= settings.RUNNER_RESYNC_SECONDS
        rows, read_at = await sync_to_async(read_rows, thread_sensitive=True)(
            None if full else self._since
        )
        self._since = read_at - timedelta(seconds=settings.RUNNER_CHANGE_MARGIN_SECONDS)
        if full:
            self._synced_at = now
            self.plan = {row.instance_id: row for row in rows}
            self.observed = self.backend.actual()
            todo = set(self.plan) | set(self.observed)
            self.due.clear()
        else:
            for row in rows:
                self.plan[row.instance_id] = row
            todo = {row.instance_id for row in rows} | self.due
            self.due = set()
        to_start, to_stop, gone = self._decide(todo)
        if to_start:
            specs = await sync_to_async(load_specs, thread_sensitive=True)(to_start)
            for spec in specs:
                try:
                    await self.backend.ensure_running(spec)
                except Exception:
                    log.exception("could not start instance %s", spec.instance_id)
                    self.due.add(spec.instance_id)  # tried again at the next reconcile
        for instance_id in to_stop:
            try:
                await self.backend.ensure_stopped(instance_id)
            except Exception:
                log.exception("could not stop instance %s", instance_id)
                self.due.add(instance_id)
        if gone:
            from otomat.runtime.observe import forget_pids

            try:
                await sync_to_async(forget_pids, thread_sensitive=True)(gone)
            except Exception:
                log.exception("could not clear the pids of stopped instances")
            for instance_id in gone:  # its row's pid is cleared (or owned by someone else now)
                row = self.plan.get(instance_id)
                if row is not None:
                    self.plan[instance_id] = Row(
                        instance_id, row.wants_running, row.generation, None
                    )
        if full or not poked or self._warm_at is None:
            self._warm_at = now
            with contextlib.suppress(Exception):
                warm = await sync_to_async(load_warm, thread_sensitive=True)()
                await self.backend.prepare(warm)
        return len(todo)

    def _decide(self, todo: set[str]) -> tuple[list[str], list[str], dict[str, int]]:
        """(ids to start, ids to stop, id → pid to forget) among ``todo``, from the rows and the
        backends' reports alone (no database, no backend call)."""
        to_start: list[str] = []
        to_stop: list[str] = []
        gone: dict[str, int] = {}
        for instance_id in todo:
            row = self.plan.get(instance_id)
            current = self.observed.get(instance_id)
            if row is not None and row.wants_running:
                # Running, starting or backing off at this generation: the backend is on it.
                # A crash-looping instance stays FAILED until a person starts it again (which
                # bumps the generation); without this the runner would restart it forever.
                if (
                    current is not None
                    and current.generation == row.generation
                    and current.phase != Phase.STOPPED
                ):
                    continue
                to_start.append(instance_id)
            elif current is not None and current.phase != Phase.STOPPED:
                to_stop.append(instance_id)
            elif current is None and row is not None and row.pid is not None:
                # A pid recorded for an instance that should not run and that no backend runs
                # (its process ended while no runner was there to report it; a new runner kills
                # every leftover when it opens) belongs to no process any more.
                gone[instance_id] = row.pid
        return to_start, to_stop, gone

    async def run(self) -> None:
        """Run until SIGTERM/SIGINT. Raises RunnerAlreadyRunning if another runner holds the lock."""
        self._acquire_lock()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stopping.set)
        self.backend = make_backend(self.backend_name, self._on_change)
        await self.backend.open()
        self._open_socket(loop)
        writer = asyncio.create_task(self._write_observations())
        beating = asyncio.create_task(self._beat())
        log.info("runner started (backend %s, data %s)", self.backend_name, settings.DATA_DIR)
        try:
            poked = False
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    await self.reconcile(poked=poked)
                except Exception:
                    log.exception("reconcile failed; retrying with a full resync")
                    self.resync_soon()
                waiters = [
                    asyncio.create_task(self._wake.wait()),
                    asyncio.create_task(self._stopping.wait()),
                ]
                await asyncio.wait(
                    waiters,
                    timeout=settings.RUNNER_RECONCILE_SECONDS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for waiter in waiters:
                    waiter.cancel()
                poked = self._wake.is_set()
        finally:
            log.info("runner stopping")
            with contextlib.suppress(Exception):
                loop.remove_reader(self._sock.fileno())
            await self.backend.close()
            # Let the final observations (stopped) reach the database.
            await asyncio.sleep(0)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            with contextlib.suppress(Exception):
                await sync_to_async(heartbeats.mark_stopped, thread_sensitive=True)(
                    heartbeats.Service.RUNNER
                )
            if self._sock is not None:
                self._sock.close()
                with contextlib.suppress(FileNotFoundError):
                    runner_socket_path().unlink()


def run_runner() -> int:
    try:
        asyncio.run(Runner().run())
    except RunnerAlreadyRunning as exc:
        log.error("%s", exc)
        return 1
    return 0
