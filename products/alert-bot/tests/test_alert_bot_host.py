"""The product under the real process-runtime host (``python -m otomat.botkit.host``), restarted.

Checks that the manifest's entry loads in a fresh process, that the host runs the product's
scheduled checks, and that the de-duplication state and subscriptions survive a restart.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alert_bot.sources import parse_line

from otomat.testing.processes import Emulator

PRODUCT = Path(__file__).resolve().parents[1]
REPO = PRODUCT.parents[1]
BOT = "alert_host_bot"


class Down(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def down_site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Down)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    emu = Emulator(tmp_path / "tgemu.json")
    yield emu
    emu.close()


def start_host(start: dict) -> subprocess.Popen:
    host = subprocess.Popen(
        [
            *(sys.executable, "-m", "otomat.botkit.host"),
            *("--source", str(PRODUCT), "--entry", "alert_bot.bot:build_router"),
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)},
    )
    host.stdin.write(json.dumps(start).encode() + b"\n")
    host.stdin.close()
    return host


def stop_host(host: subprocess.Popen) -> str:
    host.send_signal(signal.SIGTERM)
    try:
        assert host.wait(10) == 0
    finally:
        if host.poll() is None:
            host.kill()
            host.wait(5)
    return host.stderr.read().decode()


def alerts(emu: Emulator, user_id: int) -> list[str]:
    return [
        m.get("text", "") for m in emu.bot_replies(BOT, user_id, 0) if "DOWN" in m.get("text", "")
    ]


@pytest.mark.slow
def test_the_host_runs_checks_and_a_restart_keeps_state(
    tmp_path: Path, emulator: Emulator, down_site: str
) -> None:
    token = emulator.create_bot(BOT)
    line = f"up {down_site} every 60"
    start = {
        "instance_id": "alerts",
        "config": {"bot_token": token, "admins": ["1001"]},
        "api_url": emulator.url,
        "data_dir": str(tmp_path / "data"),
    }
    host = start_host(start)
    try:
        assert "Subscribed" in (emulator.ask(BOT, "/subscribe", timeout=30) or "")
        assert "Watching" in (emulator.ask(BOT, f"/watch {line}") or "")
        deadline = time.monotonic() + 15
        while not alerts(emulator, 1001) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(alerts(emulator, 1001)) == 1  # the first check found it down
    finally:
        stderr = stop_host(host)
    assert token not in stderr

    host = start_host(start)  # a restart: same data directory
    try:
        listing = emulator.ask(BOT, "/sources", timeout=30) or ""
        assert parse_line(line).id in listing and "HTTP status 503" in listing
        assert "already subscribed" in (emulator.ask(BOT, "/subscribe") or "")
        time.sleep(0.5)
        assert len(alerts(emulator, 1001)) == 1  # no repeated alert after the restart
    finally:
        stop_host(host)
