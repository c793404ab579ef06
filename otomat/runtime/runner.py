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
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections

from otomat.ops import heartbeats
from otomat.runtime.backends.base import ActualState, Backend, InstanceSpec, Phase
from otomat.runtime.notify import runner_socket_path

log = logging.getLogger("otomat.runner")


class RunnerAlreadyRunning(RuntimeError):
    pass


def make_backend(name: str, on_change) -> Backend:
    """The backends for every runtime, behind one composite: ``name`` (``OTOMAT_RUNTIME_BACKEND``)
    runs ``process`` products; the ``shared`` backend runs ``shared`` products. Raises
    ImproperlyConfigured on an unknown name."""
    from django.core.exceptions import ImproperlyConfigured

    from otomat.runtime.backends.composite import CompositeBackend

    if name != "process":
        raise ImproperlyConfigured(
            f"OTOMAT_RUNTIME_BACKEND={name!r} is not a known backend (process)"
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
        )
    except Exception:  # the runner must keep running process products whatever happens here
        log.exception("the shared runtime is not available")
        return None


def load_plan() -> tuple[list[InstanceSpec], dict[str, int | None], list[InstanceSpec]]:
    """Read the database: specs that should run, ids that should not (with the pid recorded
    for them), and specs of product versions worth keeping a warm spare for (one per version
    in the catalog's latest versions)."""
    from otomat.catalog.models import Product
    from otomat.instances.models import Instance

    close_old_connections()
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
    from otomat.catalog.schema_form import apply_defaults

    version = instance.version
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
    def __init__(self, backend_name: str | None = None) -> None:
        self.backend_name = backend_name or settings.RUNTIME_BACKEND
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._observations: asyncio.Queue[ActualState] = asyncio.Queue()
        self._lock_file = None
        self._sock: socket.socket | None = None
        self.backend: Backend | None = None

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
        self._observations.put_nowait(state)

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

    async def reconcile(self) -> None:
        assert self.backend is not None
        to_run, to_stop, warm = await sync_to_async(load_plan, thread_sensitive=True)()
        known = self.backend.actual()
        wanted = {spec.instance_id for spec in to_run}
        for spec in to_run:
            current = known.get(spec.instance_id)
            # A crash-looping instance stays FAILED until a person starts it again (which bumps
            # the generation); without this check the runner would restart it forever.
            if current and current.phase == Phase.FAILED and current.generation == spec.generation:
                continue
            try:
                await self.backend.ensure_running(spec)
            except Exception:
                log.exception("could not start instance %s", spec.instance_id)
        for instance_id in set(known) - wanted:
            if known[instance_id].phase != Phase.STOPPED or instance_id in to_stop:
                try:
                    await self.backend.ensure_stopped(instance_id)
                except Exception:
                    log.exception("could not stop instance %s", instance_id)
        # A pid recorded for an instance that should not run and that the backend does not
        # run (its process ended while no runner was there to report it; a new runner kills
        # every leftover when it opens) belongs to no process any more.
        gone = {iid: pid for iid, pid in to_stop.items() if pid is not None and iid not in known}
        if gone:
            from otomat.runtime.observe import forget_pids

            try:
                await sync_to_async(forget_pids, thread_sensitive=True)(gone)
            except Exception:
                log.exception("could not clear the pids of stopped instances")
        with contextlib.suppress(Exception):
            await self.backend.prepare(warm)

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
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    await self.reconcile()
                except Exception:
                    log.exception("reconcile failed; retrying")
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
