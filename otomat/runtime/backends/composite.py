"""Routes each instance to the backend of its product version's runtime (``process`` or
``shared``), so the runner talks to one :class:`Backend`."""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict

from otomat.runtime.backends.base import ActualState, Backend, InstanceSpec

log = logging.getLogger("otomat.runner")


class CompositeBackend:
    name = "composite"

    def __init__(self, backends: dict[str, Backend]) -> None:
        if not backends:
            raise ValueError("a composite backend needs at least one backend")
        self.backends = backends

    def _backend(self, runtime: str) -> Backend:
        try:
            return self.backends[runtime]
        except KeyError:
            raise ValueError(
                f"no backend for runtime {runtime!r} (have {', '.join(self.backends)})"
            ) from None

    async def open(self) -> None:
        for backend in self.backends.values():
            await backend.open()

    async def ensure_running(self, spec: InstanceSpec) -> None:
        target = self._backend(spec.runtime)
        # An upgrade may move an instance between runtimes: stop it everywhere else first.
        for name, backend in self.backends.items():
            if backend is not target and spec.instance_id in backend.actual():
                await backend.ensure_stopped(spec.instance_id)
                log.info("moved %s from the %s runtime", spec.instance_id, name)
        await target.ensure_running(spec)

    async def ensure_stopped(self, instance_id: str) -> None:
        for backend in self.backends.values():
            if instance_id in backend.actual():
                await backend.ensure_stopped(instance_id)

    def actual(self) -> dict[str, ActualState]:
        merged: dict[str, ActualState] = {}
        for backend in self.backends.values():
            merged.update(backend.actual())
        return merged

    async def prepare(self, specs: list[InstanceSpec]) -> None:
        by_runtime: dict[str, list[InstanceSpec]] = defaultdict(list)
        for spec in specs:
            by_runtime[spec.runtime].append(spec)
        for name, backend in self.backends.items():
            with contextlib.suppress(Exception):
                await backend.prepare(by_runtime.get(name, []))

    async def close(self) -> None:
        for backend in self.backends.values():
            try:
                await backend.close()
            except Exception:
                log.exception("closing the %s backend failed", backend.name)
