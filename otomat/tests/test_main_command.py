"""`otomat run`, the main command, on a fresh data directory: it sets everything up, prints the
URLs and credentials, serves pages, and Ctrl-C stops every process it started. Its console stays
quiet: the banner is among the last lines printed, a few event lines a minute follow it, and the
services' chatter goes to their log files under the data directory."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from otomat.testing.processes import free_port, processes_in, wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(os.environ.get("OTOMAT_DATABASE_URL")),
        reason="runs the main command on its own SQLite data directory: the SQLite run covers it",
    ),
]

BANNER_END = "Stop with Ctrl-C."
# After the banner, within this many seconds (a minute's worth of the scheduler's five-second
# jobs, which printed about 100 lines a minute before), at most this many console lines.
QUIET_WINDOW_SECONDS = 30
QUIET_MAX_LINES = 5
CHATTER = ("apscheduler", "django_tasks", "enqueued", "Task id=", "Content-Type:", "[fakepay]")


def console_lines(log: Path) -> list[str]:
    return log.read_text().splitlines()


def count_in(path: Path, text: str) -> int:
    return path.read_text().count(text) if path.exists() else 0


def test_the_main_command_runs_everything_and_stops_cleanly(tmp_path):
    data = tmp_path / "data"
    port, emu_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTOMAT_")}
    env["OTOMAT_DATA_DIR"] = str(data)
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "otomat.cli",
                "run",
                "--port",
                str(port),
                "--emulator-port",
                str(emu_port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        wait_until(
            lambda: "Stop with Ctrl-C" in log.read_text(),
            90,
            message=f"no banner:\n{log.read_text()[-3000:] if log.exists() else ''}",
        )
        banner = log.read_text()
        banner_seen = time.monotonic()
        banner_line = next(i for i, x in enumerate(console_lines(log)) if BANNER_END in x)
        logs = data / "logs"
        polls_before = count_in(logs / "scheduler.log", "enqueued poll-owner-bot")
        assert f"http://127.0.0.1:{port}/" in banner
        assert f"http://127.0.0.1:{emu_port}/" in banner
        password = re.search(r"Customer: demo@otomat.local / (\S+)", banner).group(1)
        token = re.search(r"paste it in the install form\): (\S+)", banner).group(1)
        assert httpx.get(f"http://127.0.0.1:{port}/catalog/", timeout=10).status_code == 200
        # Every service beats: the runner, the worker, the scheduler (and the web server).
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200,
            60,
            message=httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).text,
        )
        assert "Greeter Bot" in httpx.get(f"http://127.0.0.1:{port}/catalog/").text
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as web:
            web.get("/accounts/login/")
            response = web.post(
                "/accounts/login/",
                data={
                    "username": "demo@otomat.local",
                    "password": password,
                    "csrfmiddlewaretoken": web.cookies["csrftoken"],
                },
                headers={"Referer": f"http://127.0.0.1:{port}/accounts/login/"},
            )
            assert response.status_code == 302
            form = web.get("/instances/install/greeter/")
            assert form.status_code == 200
            response = web.post(
                "/instances/install/greeter/",
                data={
                    "csrfmiddlewaretoken": web.cookies["csrftoken"],
                    "instance_name": "demo",
                    "bot_token": token,
                    "welcome_text": "Halo {name}",
                    "language": "id",
                    "show_buttons": "on",
                    "max_daily_greetings": "3",
                    "reply_delay_seconds": "0",
                    "admins": "",
                    "help__text": "",
                    "help__contact": "",
                },
                headers={"Referer": f"http://127.0.0.1:{port}/"},
            )
            assert response.status_code == 302, response.text[:2000]
        emu = httpx.Client(base_url=f"http://127.0.0.1:{emu_port}", timeout=30)
        sent = emu.post(
            "/control/bots/demo_greeter_bot/messages",
            json={"user_id": 5, "first_name": "Budi", "text": "/start"},
        ).json()

        def answered():
            replies = emu.get(
                "/control/bots/demo_greeter_bot/chats/5/messages",
                params={"after": sent["message_id"], "wait": 2},
            ).json()
            replies = replies if isinstance(replies, list) else replies.get("messages", [])
            return [m["text"] for m in replies if m.get("from_bot")]

        assert wait_until(answered, 30) == ["Halo Budi"]

        # The demo Movie Search Bot answers from its shared host (sandboxed when bubblewrap
        # works, its store served by the runner: the host has no database URL).
        # Until its first indexing of the demo blog ends it says it is still reading the
        # sites, so ask again while it does.
        def movie_found():
            asked = emu.post(
                "/control/bots/demo_movies_bot/messages",
                json={"user_id": 6, "first_name": "Sari", "text": "/search matrix"},
            ).json()
            replies = emu.get(
                "/control/bots/demo_movies_bot/chats/6/messages",
                params={"after": asked["message_id"], "wait": 5},
            ).json()
            replies = replies if isinstance(replies, list) else replies.get("messages", [])
            return [m["text"] for m in replies if m.get("from_bot") and "Matrix" in m["text"]]

        assert "The Matrix (1999)" in wait_until(movie_found, 60, message="no movie answer")[0]
        # Two instances: the demo Movie Search Bot the command installs (it runs in its
        # product's shared host, so no process of its own) and the greeter, in its own process.
        assert "Demo Movie Search Bot: @demo_movies_bot" in banner

        def greeter_directory():
            found = list((data / "instances").iterdir())
            owning = [d for d in found if processes_in(d)]
            return owning if len(found) == 2 and len(owning) == 1 else None

        (greeter,) = wait_until(greeter_directory, 30, message="the greeter's own process")
        assert len(processes_in(greeter)) == 1

        # The console: the services kept chattering (the scheduler enqueues jobs every five
        # seconds, the worker runs them), into their log files only.
        time.sleep(max(0.0, QUIET_WINDOW_SECONDS - (time.monotonic() - banner_seen)))
        lines = console_lines(log)
        after = [line for line in lines[banner_line + 2 :] if line.strip()]  # past its "===="
        assert len(after) <= QUIET_MAX_LINES, "\n".join(after)  # the banner is among the last
        assert not [line for line in lines if any(word in line for word in CHATTER)]
        # The events that did happen are one line each: the two demo instances running.
        assert any('instance "demo" (Greeter Bot, Demo Customer) running' in x for x in after)
        assert count_in(logs / "scheduler.log", "enqueued poll-owner-bot") >= polls_before + 4
        assert "django_tasks" in (logs / "worker.log").read_text()
        assert "runner started" in (logs / "runner.log").read_text()
        assert "Telegram emulator listening" in (logs / "emulator.log").read_text()
        assert f"Logs:                  {logs}/<service>.log" in banner
        # Mail is kept in the outbox (the demo ticket's acknowledgement), not printed.
        assert f"http://127.0.0.1:{port}/notify/outbox/" in banner

        def kept_mail():
            with contextlib.closing(sqlite3.connect(data / "otomat.sqlite3")) as db:
                return db.execute("SELECT subject FROM notify_outboxmessage").fetchall()

        assert any("[T-000001]" in subject for (subject,) in wait_until(kept_mail, 30))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(40)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0
    assert "[otomat] stopped." in log.read_text()
    time.sleep(0.5)
    assert processes_in(greeter) == []
    assert (data / "demo-credentials.json").exists()  # the next run reuses the same passwords
