"""``python -m otomat.runtime.shared_host`` driven by hand: its refusals of bad input.

A host is a long-lived process carrying many customers' bots, so a malformed command must be
answered with a ``rejected`` event and change nothing — never take the host down.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otomat.botkit.protocol import CONTROL_FD_ENV, EXIT_CONFIG_ERROR
from otomat.runtime.hoststore import STORE_FD_ENV

pytestmark = pytest.mark.slow
TOKEN = "5550001:AAH-secretsecretsecretsecretsecret0"


def run_host(
    args: list[str], stdin: bytes, tmp_path: Path, fds: dict[str, int] | None = None
) -> tuple[int, list[dict], str]:
    """Run a host to completion (``fds``: more descriptors to pass, by environment variable);
    returns (exit code, control events, output)."""
    read_fd, write_fd = os.pipe()
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        CONTROL_FD_ENV: str(write_fd),
        **{name: str(fd) for name, fd in (fds or {}).items()},
    }
    proc = subprocess.run(
        [sys.executable, "-m", "otomat.runtime.shared_host", *args],
        input=stdin,
        capture_output=True,
        env=env,
        pass_fds=(write_fd, *(fds or {}).values()),
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        events = [json.loads(line) for line in pipe.read().splitlines()]
    return proc.returncode, events, (proc.stdout + proc.stderr).decode()


def product(tmp_path: Path) -> Path:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "__init__.py").write_text("")
    (tmp_path / "p" / "bot.py").write_text(
        textwrap.dedent(
            """
            from aiogram import Router

            def build_router(ctx):
                return Router()
            """
        )
    )
    return tmp_path


def test_bad_commands_are_rejected_and_the_host_keeps_running(tmp_path: Path) -> None:
    source = product(tmp_path)
    lines = [
        b"not json",
        b"[1, 2]",
        b'{"cmd": "launch", "instance_id": "alice"}',
        b'{"cmd": "remove"}',
        json.dumps(
            {"cmd": "add", "instance_id": "alice", "config": {"bot_token": TOKEN}}
        ).encode(),  # no api_url, data_dir, log_path
        b'{"cmd": "remove", "instance_id": "nobody"}',
    ]
    code, events, output = run_host(
        ["--source", str(source), "--entry", "p.bot:build_router"],
        b"\n".join(lines) + b"\n",
        tmp_path,
    )
    assert code == 0  # stdin closed: a clean stop
    kinds = [e["event"] for e in events]
    assert kinds[0] == "host_ready"
    rejected = [e for e in events if e["event"] == "rejected"]
    assert len(rejected) == 5
    assert "not JSON" in rejected[0]["message"]
    assert "api_url" in rejected[4]["message"] and rejected[4]["instance_id"] == "alice"
    assert {"event": "removed", "instance_id": "nobody"} in events
    assert TOKEN not in output and TOKEN not in json.dumps(events)
    assert not (tmp_path / "alice").exists()


def test_a_bad_entry_or_bad_arguments_end_the_host_clearly(tmp_path: Path) -> None:
    source = product(tmp_path)
    code, events, output = run_host(
        ["--source", str(source), "--entry", "p.missing:build_router"], b"", tmp_path
    )
    assert code == EXIT_CONFIG_ERROR
    assert events == [{"event": "fatal", "reason": "entry", "message": "bad entry"}]
    assert "cannot load entry point p.missing:build_router" in output
    code, events, output = run_host(
        ["--source", str(source), "--entry", "p.bot:build_router", "--concurrency", "0"],
        b"",
        tmp_path,
    )
    assert code == 2 and events == [] and "--concurrency" in output


def test_the_remote_store_needs_its_socket_and_a_token_per_instance(tmp_path: Path) -> None:
    source = product(tmp_path)
    args = ["--source", str(source), "--entry", "p.bot:build_router", "--store", "remote"]
    code, events, output = run_host(args, b"", tmp_path)
    assert code == 2 and events == [] and "OTOMAT_STORE_FD" in output  # no socket: no host

    ours, theirs = socket.socketpair()
    add = {
        "cmd": "add", "instance_id": "alice", "config": {"bot_token": TOKEN},
        "api_url": "http://127.0.0.1:9", "data_dir": str(tmp_path / "alice"), "log_path": None,
    }  # fmt: skip
    lines = [
        json.dumps({**add, "store": 5}).encode(),
        json.dumps({**add, "store": ""}).encode(),
        json.dumps(add).encode(),  # no token at all
        json.dumps({**add, "log_path": 7, "store": "t" * 43}).encode(),
    ]
    code, events, output = run_host(
        args, b"\n".join(lines) + b"\n", tmp_path, fds={STORE_FD_ENV: theirs.fileno()}
    )
    ours.close()
    theirs.close()
    assert code == 0
    rejected = [e["message"] for e in events if e["event"] == "rejected"]
    assert rejected == [
        "add: store must be a non-empty string or null",
        "add: store must be a non-empty string or null",
        "add: store token missing",
        "add: log_path must be a non-empty string or null",
    ]
    assert not (tmp_path / "alice").exists() and TOKEN not in output
