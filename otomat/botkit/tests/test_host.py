"""The host process's pieces: start line parsing, entry loading, the control channel."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from otomat.botkit.control import ControlChannel
from otomat.botkit.host import StartLine, load_entry
from otomat.botkit.testing import TEST_TOKEN

GOOD = {
    "instance_id": "i-1",
    "config": {"bot_token": TEST_TOKEN, "welcome_text": "hi"},
    "api_url": "http://127.0.0.1:8081",
    "data_dir": "/data",
}


def test_a_start_line_is_parsed() -> None:
    start = StartLine.parse(json.dumps({**GOOD, "heartbeat_seconds": 1}).encode() + b"\n")
    assert start.instance_id == "i-1"
    assert start.config["bot_token"] == TEST_TOKEN
    assert start.data_dir == Path("/data")
    assert start.heartbeat_seconds == 1.0


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b"not json " + TEST_TOKEN.encode(), "not JSON"),
        (b"[]", "JSON object"),
        (json.dumps({**GOOD, "config": {}}).encode(), "bot_token"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "api_url"}).encode(), "api_url"),
        (json.dumps({**GOOD, "heartbeat_seconds": 0}).encode(), "heartbeat"),
    ],
)
def test_a_bad_start_line_is_refused_without_echoing_secrets(raw: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error) as info:
        StartLine.parse(raw)
    assert TEST_TOKEN not in str(info.value)


def test_load_entry_imports_from_the_product_dir(tmp_path: Path) -> None:
    pkg = tmp_path / "hostprobe_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bot.py").write_text("def build_router(ctx):\n    return 'router'\n")
    factory = load_entry(tmp_path, "hostprobe_pkg.bot:build_router")
    assert factory(None) == "router"
    with pytest.raises(ValueError):
        load_entry(tmp_path, "hostprobe_pkg.bot")
    with pytest.raises(AttributeError):
        load_entry(tmp_path, "hostprobe_pkg.bot:missing")


def test_control_events_are_json_lines_on_their_own_fd() -> None:
    read_fd, write_fd = os.pipe()
    try:
        channel = ControlChannel(write_fd)
        assert channel.send("heartbeat", updates=3, errors=0)
        line = os.read(read_fd, 4096)
        assert json.loads(line) == {"event": "heartbeat", "updates": 3, "errors": 0}
        assert line.endswith(b"\n")
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert ControlChannel(None).send("ready") is False


def test_control_channel_from_env_ignores_a_closed_fd(monkeypatch: pytest.MonkeyPatch) -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    os.close(write_fd)
    monkeypatch.setenv("OTOMAT_CONTROL_FD", str(write_fd))
    assert ControlChannel.from_env().fd is None


FLAKY_PRODUCT = """
import asyncio

from aiogram import F, Router
from aiogram.types import Message

from otomat.botkit import BotContext


def build_router(ctx: BotContext) -> Router:
    router = Router()

    @router.message(F.text == "/boom")
    async def boom(message: Message, ctx: BotContext) -> None:
        raise RuntimeError("kaboom")

    @ctx.scheduler.handler("later")
    async def later(ctx: BotContext, bot, payload: dict) -> None:
        await bot.send_message(payload["chat"], f"later {payload['n']}")
        if payload["n"] == 2:
            await asyncio.sleep(60)  # still running when SIGTERM arrives

    @router.message(F.text.startswith("/later"))
    async def schedule(message: Message, ctx: BotContext) -> None:
        n = int(message.text.split()[1])
        ctx.scheduler.run_at(0.1, "later", {"chat": message.chat.id, "n": n}, key=f"later:{n}")

    @router.message(F.text)
    async def echo(message: Message, ctx: BotContext) -> None:
        n = ctx.store.incr("seen")
        await message.answer(f"{ctx.instance_id} {ctx.setting('prefix')} {message.text} #{n}")

    return router
"""


@pytest.fixture
def tgemu(tmp_path: Path):
    from otomat.testing.processes import Emulator

    emu = Emulator(tmp_path / "tgemu.json")
    yield emu
    emu.close()


def read_event(reader, kind: str, deadline: float) -> dict:
    """Next control event of ``kind`` (skipping others) before ``deadline``."""
    import select
    import time

    while time.monotonic() < deadline:
        ready, _, _ = select.select([reader], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = reader.readline()
        if not line:
            break
        event = json.loads(line)
        if event["event"] == kind:
            return event
    raise AssertionError(f"no {kind} event")


@pytest.mark.slow
def test_the_host_serves_counts_errors_and_stops_on_sigterm(tmp_path: Path, tgemu) -> None:
    import signal
    import subprocess
    import sys
    import time

    product = tmp_path / "product" / "flaky"
    product.mkdir(parents=True)
    (product / "__init__.py").write_text("")
    (product / "bot.py").write_text(FLAKY_PRODUCT)
    token = tgemu.create_bot("flaky_bot")
    read_fd, write_fd = os.pipe()
    repo = Path(__file__).resolve().parents[3]
    host = subprocess.Popen(
        [
            *(sys.executable, "-m", "otomat.botkit.host"),
            *("--source", str(product.parent), "--entry", "flaky.bot:build_router"),
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(repo),
            "OTOMAT_CONTROL_FD": str(write_fd),
        },
        pass_fds=(write_fd,),
    )
    os.close(write_fd)
    events = os.fdopen(read_fd)
    try:
        deadline = time.monotonic() + 30
        read_event(events, "spare", deadline)  # imported, waiting for its start line
        start = {
            "instance_id": "alice",
            "config": {"bot_token": token, "prefix": "says"},
            "api_url": tgemu.url,
            "data_dir": str(tmp_path / "data"),
            "heartbeat_seconds": 0.3,
        }
        before = time.time()
        host.stdin.write(json.dumps(start).encode() + b"\n")
        host.stdin.close()
        assert read_event(events, "ready", deadline)["username"] == "flaky_bot"
        assert tgemu.ask("flaky_bot", "/boom", timeout=1) is None
        assert read_event(events, "error", deadline)["message"] == "RuntimeError: kaboom"
        assert tgemu.ask("flaky_bot", "hello") == "alice says hello #1"  # still running
        beat = read_event(events, "heartbeat", deadline)
        while beat["updates"] < 2:
            beat = read_event(events, "heartbeat", deadline)
        last_update = beat.pop("last_update")
        assert beat == {"event": "heartbeat", "updates": 2, "errors": 1}
        assert before <= last_update <= time.time()  # when the last update was handled
        # botkit v2: the host runs the instance's scheduler beside polling.
        assert tgemu.ask("flaky_bot", "/later 1") == "later 1"
        assert tgemu.ask("flaky_bot", "/later 2") == "later 2"  # its handler then hangs
        stopping = time.monotonic()
        host.send_signal(signal.SIGTERM)
        assert host.wait(5) == 0
        assert time.monotonic() - stopping < 3
    finally:
        if host.poll() is None:
            host.kill()
        events.close()
    stderr = host.stderr.read().decode()
    assert "handler failed" in stderr and "kaboom" in stderr
    assert token not in stderr
    assert (tmp_path / "data" / "store.sqlite3").exists()
    # The job cut short by SIGTERM is still persisted (it runs again after a restart); the
    # finished one is gone.
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "store.sqlite3") as conn:
        assert conn.execute("SELECT key FROM jobs").fetchall() == [("later:2",)]


@pytest.mark.slow
def test_the_host_waits_for_an_unreachable_bot_api_and_still_stops_at_once(tmp_path: Path) -> None:
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    repo = Path(__file__).resolve().parents[3]
    host = subprocess.Popen(
        [
            *(sys.executable, "-m", "otomat.botkit.host"),
            *(
                "--source",
                str(repo / "products" / "greeter"),
                "--entry",
                "greeter.bot:build_router",
            ),
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(repo)},
    )
    start = {**GOOD, "api_url": f"http://127.0.0.1:{port}", "data_dir": str(tmp_path)}
    host.stdin.write(json.dumps(start).encode() + b"\n")
    host.stdin.close()
    first_line = host.stderr.readline().decode()
    assert "Bot API not reachable" in first_line and "retrying in 1 s" in first_line
    stopping = time.monotonic()
    host.send_signal(signal.SIGTERM)
    assert host.wait(5) == 0
    assert time.monotonic() - stopping < 2
    assert TEST_TOKEN not in first_line + host.stderr.read().decode()
