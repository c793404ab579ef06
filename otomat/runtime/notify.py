"""Wake the runner at once after a change (a datagram on a Unix socket in RUN_DIR).

Best effort by design: if no runner listens, nothing happens, and the runner's periodic reconcile
picks the change up anyway."""

from __future__ import annotations

import socket
from pathlib import Path

from django.conf import settings


def runner_socket_path() -> Path:
    return Path(settings.RUN_DIR) / "runner.sock"


def poke_runner() -> None:
    path = runner_socket_path()
    if not path.exists():
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"reconcile", str(path))
    except OSError:
        pass  # no runner, or its queue is full: it is already awake then


def on_runner_needed(**_kwargs) -> None:
    """Receiver of ``otomat.instances.signals.runner_needed`` (connected in ``apps.py``)."""
    poke_runner()
