"""The host's side of the control channel: JSON lines on the fd named by ``OTOMAT_CONTROL_FD``.

Control events go to their own pipe rather than stdout so a product printing to stdout can never
forge a "ready" or a heartbeat, and the log stays plain text.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from otomat.botkit.protocol import CONTROL_FD_ENV


class ControlChannel:
    """Writes control events; a no-op when the host was started without a control fd.

    Writes are non-blocking and lossy by design: if the runner stops reading and the pipe buffer
    (64 KiB) fills up, events are dropped instead of freezing the bot. A vanished runner (EPIPE)
    is ignored the same way; the sandbox kills the host in that case anyway.
    """

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        if fd is not None:
            os.set_blocking(fd, False)

    @classmethod
    def from_env(cls) -> ControlChannel:
        """Use the fd in ``OTOMAT_CONTROL_FD`` if it names an open descriptor, else none."""
        raw = os.environ.get(CONTROL_FD_ENV, "")
        try:
            fd = int(raw)
            os.fstat(fd)
        except (ValueError, OSError):
            return cls(None)
        return cls(fd)

    def send(self, event: str, **fields: Any) -> bool:
        """Write one event line; return whether it was written in full."""
        if self.fd is None:
            return False
        line = json.dumps({"event": event, **fields}, separators=(",", ":")) + "\n"
        data = line.encode()
        try:
            # Lines are far below PIPE_BUF (4 KiB), so one write is atomic or fails whole.
            return os.write(self.fd, data) == len(data)
        except BlockingIOError:
            print("otomat: control channel full, event dropped", file=sys.stderr)
            return False
        except OSError:
            return False
