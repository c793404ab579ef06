"""One launched OS process with its output and control pipes (used by the process backend).

When sandboxed, the process we launch is the outer ``bwrap``; the program itself runs two levels
down (outer bwrap → bwrap as pid 1 of the new pid namespace → program). bwrap does not forward
signals, so a graceful stop signals the program directly, and a hard kill hits the outer bwrap,
whose death takes the whole pid namespace with it (``--die-with-parent``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from otomat.runtime.backends import procutil
from otomat.runtime.backends.sandbox import Launch

log = logging.getLogger("otomat.runtime.process")

READ_CHUNK = 65536
MAX_PENDING_LINE = 16 * 1024
CONTROL_LINE_LIMIT = 64 * 1024
DRAIN_TIMEOUT = 2.0

LineSink = Callable[[list[str]], None]
EventHandler = Callable[[dict[str, Any]], None]


class Child:
    """A running (or exited) launched process.

    ``sink`` receives captured output lines and ``handler`` control events; both can be swapped
    when a warm spare is handed to an instance. Until then output is buffered in memory.
    """

    def __init__(self, proc: asyncio.subprocess.Process, launch: Launch, control_fd: int) -> None:
        self.proc = proc
        self.launch = launch
        self.pid = proc.pid
        self.start_time = procutil.start_time(proc.pid) or 0
        self.started_monotonic = time.monotonic()
        self.last_event_at = time.monotonic()
        self.standby = asyncio.Event()  # a spare said its imports are done
        self.sends_heartbeats = False  # opted into the hang watchdog by sending one
        self.buffer: deque[str] = deque(maxlen=200)
        self.sink: LineSink = self.buffer.extend
        self.handler: EventHandler = lambda event: None
        self._control_fd = control_fd
        self._out_task: asyncio.Task[None] | None = None
        self._ctl_task: asyncio.Task[None] | None = None
        self._ctl_transport: asyncio.BaseTransport | None = None

    @property
    def sandboxed(self) -> bool:
        return self.launch.sandboxed

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def start_pumps(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=CONTROL_LINE_LIMIT)
        pipe = os.fdopen(self._control_fd, "rb", buffering=0)
        self._ctl_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        self._ctl_task = asyncio.create_task(self._pump_control(reader))
        self._out_task = asyncio.create_task(self._pump_output())

    def attach(self, sink: LineSink, handler: EventHandler) -> None:
        """Route output and events to an instance; flush what was buffered before."""
        if self.buffer:
            sink(list(self.buffer))
            self.buffer.clear()
        self.sink = sink
        self.handler = handler

    def _emit(self, lines: list[str]) -> None:
        try:
            self.sink(lines)
        except Exception:
            log.exception("cannot write the output of pid %s", self.pid)

    async def _pump_output(self) -> None:
        assert self.proc.stdout is not None
        pending = b""
        while True:
            chunk = await self.proc.stdout.read(READ_CHUNK)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > MAX_PENDING_LINE:  # no newline for 16 KiB: cut it here
                lines.append(pending)
                pending = b""
            if lines:
                self._emit([line.decode(errors="replace").rstrip("\r") for line in lines])
        if pending:
            self._emit([pending.decode(errors="replace")])

    async def _pump_control(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # a line over the limit: dropped by the reader, skip it
                continue
            if not line:
                break
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if not isinstance(event, dict):
                continue
            self.last_event_at = time.monotonic()
            if event.get("event") == "spare":
                self.standby.set()
            elif event.get("event") == "heartbeat":
                self.sends_heartbeats = True
            try:
                self.handler(event)
            except Exception:
                log.exception("control event handler failed for pid %s", self.pid)

    async def send_line(self, data: bytes) -> bool:
        """Write ``data`` to stdin and close it; False when the process is gone."""
        stdin = self.proc.stdin
        if stdin is None:
            return False
        try:
            stdin.write(data)
            await stdin.drain()
            stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    async def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    def program_pids(self) -> list[int]:
        """The program's processes (without bwrap wrappers), outermost first."""
        if not self.sandboxed:
            return [self.pid, *procutil.descendants(self.pid)]
        return [p for p in procutil.descendants(self.pid) if not procutil.is_bwrap(p)]

    def signal_program(self, sig: int) -> None:
        """Deliver ``sig`` to the program (all its processes), not to the bwrap wrapper."""
        if self.returncode is not None:
            return
        if not self.sandboxed:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            return
        targets = self.program_pids()
        if not targets:  # not exec'd yet: the wrapper's death takes the namespace down
            targets = [self.pid]
        for pid in targets:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL everything: the wrapper, its descendants and its process group."""
        procutil.kill_tree(self.pid, signal.SIGKILL)

    async def wait(self) -> int:
        """Wait for the exit and for the pipes to drain; return the exit code as reported by
        asyncio (negative signal number without sandbox, 128 + signal through bwrap)."""
        code = await self.proc.wait()
        tasks = [t for t in (self._out_task, self._ctl_task) if t is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT)
            for task in pending:  # a straggler still holds the pipe: stop listening
                task.cancel()
        if not self.sandboxed:
            # Stragglers in the process group (a daemonised child) die with it. Sandboxed ones
            # died with the pid namespace already. Pids are allocated cyclically, so the group
            # id cannot have been reused within these milliseconds.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        if self._ctl_transport is not None:
            self._ctl_transport.close()
        return code

    async def terminate(self, timeout: float) -> int:
        """SIGTERM the program, SIGKILL after ``timeout`` seconds; return the exit code."""
        if self.returncode is None:
            self.signal_program(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.proc.wait()), timeout)
            except TimeoutError:
                log.warning("pid %s ignored SIGTERM for %.1f s; killing it", self.pid, timeout)
                self.kill()
        return await self.wait()


def describe_exit(code: int | None, sandboxed: bool) -> str:
    """``"exit code 1"`` or ``"killed by SIGKILL"``."""
    if code is None:
        return "still running"
    signum = -code if code < 0 else (code - 128 if sandboxed and code > 128 else 0)
    if signum > 0:
        try:
            return f"killed by {signal.Signals(signum).name}"
        except ValueError:
            return f"killed by signal {signum}"
    return f"exit code {code}"
