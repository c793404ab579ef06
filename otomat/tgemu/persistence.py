"""Saving the emulator state to a JSON file, debounced and atomic.

Bursts of changes (a bot answering a hundred messages) produce one write after ``delay`` seconds,
not a hundred. Each write goes to a temporary file in the same directory, is fsynced and then
renamed over the old file, so a crash mid-write leaves the previous state intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

from .state import EmulatorState, Limits

log = logging.getLogger("otomat.tgemu.persistence")


def load_state(path: Path, state: EmulatorState) -> bool:
    """Load ``path`` into ``state``. Returns False when the file does not exist.

    Raises ValueError (with the file name) when it exists but is not a valid state file: starting
    with an empty state would overwrite it and lose every token.
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    if not raw.strip():
        return False
    try:
        data = json.loads(raw)
        state.load_json(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return True


def open_state(path: Path | None, *, limits: Limits | None = None) -> EmulatorState:
    """A state bound to ``path`` (loaded from it if it exists), or an in-memory one for None.

    Raises ValueError when the file exists but is not a valid state file.
    """
    state = EmulatorState(path=path, limits=limits)
    if path is not None:
        load_state(path, state)
    return state


def write_atomically(path: Path, payload: str) -> None:
    """Replace ``path`` with ``payload`` so readers see the old or the new file, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


class Persister:
    """Writes ``state`` to ``path`` some time after it changes.

    Call :meth:`attach` on the running loop (it installs ``state.on_change``) and :meth:`flush`
    at shutdown. Write errors are logged and retried on the next change, never raised into request
    handlers.
    """

    def __init__(self, state: EmulatorState, path: Path, *, delay: float = 0.5) -> None:
        self.state = state
        self.path = path
        self.delay = delay
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.state.on_change = self.schedule

    def schedule(self) -> None:
        """Mark the state dirty and make sure a save is coming."""
        self._dirty = True
        if self._loop is None or self._handle is not None:
            return
        self._handle = self._loop.call_later(self.delay, self._start_save)

    def _start_save(self) -> None:
        self._handle = None
        if self._task is not None and not self._task.done():
            # A save is running; it re-checks the dirty flag when it finishes.
            return
        assert self._loop is not None
        self._task = self._loop.create_task(self._save_loop())

    async def _save_loop(self) -> None:
        while self._dirty:
            self._dirty = False
            # Serialise on the loop thread (the state is not thread-safe), write off it.
            payload = json.dumps(self.state.to_json(), ensure_ascii=False, separators=(",", ":"))
            try:
                await asyncio.to_thread(write_atomically, self.path, payload)
            except OSError:
                log.exception("could not write state file %s", self.path)
                self._dirty = True  # retried with the next change or at shutdown
                return

    async def flush(self) -> None:
        """Write pending changes now and stop scheduling; called at shutdown."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self._dirty = True
        await self._save_loop()
        self.state.on_change = None
