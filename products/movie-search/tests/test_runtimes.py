"""The product unchanged under the platform's real hosts, as separate processes:

* ``process`` runtime (``python -m otomat.botkit.host``): an answer is deleted by the *next*
  host process on the same data dir after the first one was stopped before the deletion was due;
* ``shared`` runtime (``python -m otomat.runtime.shared_host``): two instances in one process,
  each answering from its own index.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from movie_fakesites import FakeSites
from movie_search.index import Index, reindex

from otomat.botkit import SQLiteStore
from otomat.tgemu.testing import EmulatorServer

PRODUCT_DIR = Path(__file__).resolve().parents[1]
USER = 2002


def start(module: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-m",
            module,
            "--source",
            str(PRODUCT_DIR),
            "--entry",
            "movie_search.bot:build_router",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_until(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_process_host_deletes_an_answer_after_a_restart(tmp_path: Path, sites: FakeSites) -> None:
    data = tmp_path / "data"
    config = {"sites": [sites.url("wordpress")], "auto_delete_minutes": 0.1}  # 6 s
    reindex(Index(data / "index.sqlite3"), config["sites"])
    with EmulatorServer() as emu:
        token = emu.create_bot("proc_movies_bot")["token"]
        line = json.dumps(
            {
                "instance_id": "p1",
                "config": {"bot_token": token, **config},
                "api_url": emu.url,
                "data_dir": str(data),
            }
        )
        first = start("otomat.botkit.host", tmp_path / "host.log")
        try:
            first.stdin.write(line.encode() + b"\n")  # type: ignore[union-attr]
            first.stdin.close()  # type: ignore[union-attr]
            sent = emu.send("proc_movies_bot", user_id=USER, text="/search matrix")
            [reply] = emu.messages("proc_movies_bot", USER, after=sent["message_id"], wait=20)
            assert "The Matrix (1999)" in reply["text"]
            answered = time.time()
        finally:
            stop(first)
        assert first.returncode == 0, (tmp_path / "host.log").read_text()
        time.sleep(max(0.0, answered + 6.5 - time.time()))  # due while no host runs
        assert not emu.messages("proc_movies_bot", USER)[-1]["deleted"]
        second = start("otomat.botkit.host", tmp_path / "host.log")
        try:
            second.stdin.write(line.encode() + b"\n")  # type: ignore[union-attr]
            second.stdin.close()  # type: ignore[union-attr]
            wait_until(lambda: emu.messages("proc_movies_bot", USER)[-1]["deleted"])
        finally:
            stop(second)
        assert "Traceback" not in (tmp_path / "host.log").read_text()


def test_shared_host_serves_two_instances_from_their_own_indexes(
    tmp_path: Path, sites: FakeSites
) -> None:
    with EmulatorServer() as emu:
        host = start("otomat.runtime.shared_host", tmp_path / "shared.log")
        try:
            for name, site in (("wp", "wordpress"), ("atom", "atom")):
                data = tmp_path / name
                reindex(Index(data / "index.sqlite3"), [sites.url(site)])
                token = emu.create_bot(f"{name}_movies_bot")["token"]
                command = {
                    "cmd": "add",
                    "instance_id": name,
                    "config": {
                        "bot_token": token,
                        "sites": [sites.url(site)],
                        "auto_delete_minutes": 60,
                    },
                    "api_url": emu.url,
                    "data_dir": str(data),
                    "log_path": str(tmp_path / f"{name}.log"),
                }
                host.stdin.write(json.dumps(command).encode() + b"\n")  # type: ignore[union-attr]
                host.stdin.flush()  # type: ignore[union-attr]

            def ask(bot: str, text: str) -> str:
                sent = emu.send(bot, user_id=USER, text=text)
                [reply] = emu.messages(bot, USER, after=sent["message_id"], wait=20)
                return reply["text"]

            assert "The Matrix (1999)" in ask("wp_movies_bot", "matrix")
            assert ask("atom_movies_bot", "matrix").startswith("Nothing found for “matrix”")
            assert "Amélie (2001)" in ask("atom_movies_bot", "amelie")
        finally:
            host.stdin.close()  # type: ignore[union-attr]
            stop(host)
    # Each instance persisted its own deletions (due in an hour) in its own store.
    for name, answers in (("wp", 1), ("atom", 2)):
        store = SQLiteStore(tmp_path / name / "store.sqlite3")
        try:
            jobs = store.job_list("delete_message")
            assert len(jobs) == answers, (name, jobs)
        finally:
            store.close()
