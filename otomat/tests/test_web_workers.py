"""``otomat web`` runs several server processes (``OTOMAT_WEB_WORKERS``): one process uses one
core. Each worker loads the application itself, so each beats on its own."""

from __future__ import annotations

import io
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import redirect_stderr

import httpx
import pytest
import uvicorn

from otomat.cli import main


@pytest.fixture
def served(monkeypatch):
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    return calls


def test_it_starts_as_many_workers_as_the_setting_says(served, settings):
    settings.WEB_WORKERS = 3
    assert main(["web", "--port", "8123"]) == 0
    (app, kwargs), *_ = served
    assert app == "otomat.asgi:application"  # an import string: each worker loads it
    assert kwargs["workers"] == 3 and kwargs["port"] == 8123


def test_the_command_line_overrides_the_setting(served, settings):
    settings.WEB_WORKERS = 3
    assert main(["web", "--workers", "1"]) == 0
    assert served[0][1]["workers"] == 1


def test_it_refuses_zero_workers_and_starts_nothing(served):
    err = io.StringIO()
    with redirect_stderr(err):
        assert main(["web", "--workers", "0"]) == 2
    assert "at least 1" in err.getvalue()
    assert served == []


def test_the_setting_refuses_a_bad_value(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from otomat.lib.env import env_int

    monkeypatch.setenv("OTOMAT_WEB_WORKERS", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env_int("OTOMAT_WEB_WORKERS", 2, minimum=1)
    monkeypatch.setenv("OTOMAT_WEB_WORKERS", "many")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env_int("OTOMAT_WEB_WORKERS", 2, minimum=1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_workers_answer_and_each_writes_its_heartbeat(tmp_path):
    env = {
        **os.environ,
        "OTOMAT_DATA_DIR": str(tmp_path),
        "OTOMAT_HEARTBEAT_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("OTOMAT_DATABASE_URL", None)  # the embedded SQLite file of this data dir
    cli = [sys.executable, "-m", "otomat.cli"]
    subprocess.run([*cli, "manage", "migrate", "-v0"], env=env, check=True, timeout=240)
    port = _free_port()
    web = subprocess.Popen(
        [*cli, "web", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        rows: list[tuple[str, int]] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    with sqlite3.connect(tmp_path / "otomat.sqlite3") as db:
                        rows = db.execute(
                            "SELECT service, pid FROM ops_serviceheartbeat WHERE service='web'"
                        ).fetchall()
                    if len(rows) == 2:
                        break
            except (httpx.HTTPError, sqlite3.OperationalError):
                pass
            time.sleep(0.5)
        assert len({pid for _, pid in rows}) == 2, rows
        assert web.pid not in {pid for _, pid in rows}  # the parent only minds the workers
    finally:
        web.send_signal(signal.SIGTERM)
        try:
            web.wait(timeout=20)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait()
