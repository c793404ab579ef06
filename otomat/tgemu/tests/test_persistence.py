"""The state store: a restart keeps tokens, chats and pending updates; writes are incremental and
survive kill -9; old JSON state files are migrated once; bad files are refused, not overwritten."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from otomat.tgemu.persistence import Persister, load_state, open_state, store_path_for
from otomat.tgemu.state import Changes, EmulatorState, Limits
from otomat.tgemu.testing import EmulatorServer

from .conftest import ALICE, BOB

REPO_ROOT = Path(__file__).resolve().parents[3]


def _comparable(state: EmulatorState) -> dict:
    data = state.to_json()
    data.pop("saved_at")
    return data


def _store_rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_restart_keeps_bots_chats_and_pending_updates(tmp_path):
    path = tmp_path / "emu.sqlite3"
    with EmulatorServer(state_path=path) as emu:
        bot = emu.create_bot("greeter_bot", "Greeter")
        token = bot["token"]
        emu.bot_api(token, "setMyCommands", commands=[{"command": "start", "description": "Start"}])
        emu.send("greeter_bot", user_id=ALICE, first_name="Alice", text="/start")
        emu.bot_api(token, "sendMessage", chat_id=ALICE, text="Welcome")
        emu.send("greeter_bot", user_id=ALICE, text="still pending")
        group = emu.control(
            "POST",
            "/groups",
            {"title": "Team", "member_user_ids": [ALICE], "bot_usernames": ["greeter_bot"]},
        )
        pending_before = emu.bot_api(token, "getUpdates")[1]["result"]
    assert path.exists()

    with EmulatorServer(state_path=path) as emu:
        assert emu.bot_api(token, "getMe")[1]["result"]["username"] == "greeter_bot"
        assert emu.bot_api(token, "getMyCommands")[1]["result"] == [
            {"command": "start", "description": "Start"}
        ]
        assert emu.bot_api(token, "getUpdates")[1]["result"] == pending_before
        history = emu.messages("greeter_bot", ALICE)
        assert [m["text"] for m in history] == ["/start", "Welcome", "still pending"]
        # Ids keep growing after the restart: no message or update id is reused.
        new = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="again")[1]["result"]
        assert new["message_id"] == 4
        emu.send("greeter_bot", user_id=ALICE, text="later")
        ids = [u["update_id"] for u in emu.bot_api(token, "getUpdates")[1]["result"]]
        assert ids[-1] == pending_before[-1]["update_id"] + 1
        assert emu.control("GET", f"/groups/{group['id']}")["title"] == "Team"


def test_the_store_matches_memory_after_edits_deletions_evictions_and_confirmations(tmp_path):
    """Every kind of change reaches the store: what is reloaded equals what was in memory."""
    path = tmp_path / "emu.sqlite3"
    limits = Limits(max_messages_per_chat=5, max_pending_updates=4)
    with EmulatorServer(state_path=path, limits=limits) as emu:
        keep = emu.create_bot("keeper_bot", "Keeper")["token"]
        gone = emu.create_bot("goner_bot", "Goner")["token"]
        for n in range(8):  # evicts the 3 oldest messages and 4 oldest updates
            emu.send("keeper_bot", user_id=ALICE, text=f"hello {n}")
        emu.send("goner_bot", user_id=BOB, text="hi")
        sent = emu.bot_api(keep, "sendMessage", chat_id=ALICE, text="draft")[1]["result"]
        emu.bot_api(
            keep, "editMessageText", chat_id=ALICE, message_id=sent["message_id"], text="final"
        )
        emu.bot_api(keep, "deleteMessage", chat_id=ALICE, message_id=sent["message_id"] - 1)
        updates = emu.bot_api(keep, "getUpdates")[1]["result"]
        emu.bot_api(keep, "getUpdates", offset=updates[1]["update_id"])  # confirms one
        emu.bot_api(gone, "setWebhook", url="http://127.0.0.1:9/hook")
        emu.control("DELETE", "/bots/goner_bot")
        emu.control("POST", "/clock", {"advance_seconds": 60})
        expected = _comparable(emu.state)
    reloaded = open_state(path, limits=limits)
    assert _comparable(reloaded) == expected
    assert [b.username for b in reloaded.bots.values()] == ["keeper_bot"]
    # Evicted and deleted records are gone from the store, not only hidden.
    assert _store_rows(path, "SELECT count(*) FROM messages") == [(5,)]
    assert _store_rows(path, "SELECT count(*) FROM updates") == [(3,)]


def test_changes_are_written_without_a_shutdown(tmp_path):
    path = tmp_path / "emu.sqlite3"
    with EmulatorServer(state_path=path) as emu:
        emu.create_bot("greeter_bot")
        for _ in range(40):
            if _store_rows(path, "SELECT count(*) FROM bots WHERE data LIKE '%greeter_bot%'")[0][0]:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the store did not receive the bot within 2 s of the change")


def test_one_new_message_writes_a_few_rows_whatever_the_history(tmp_path):
    """The cost of a write follows what changed, not how much is stored."""
    state = EmulatorState(path=tmp_path / "emu.sqlite3")
    bot = state.create_bot("greeter_bot", "Greeter")
    for uid in range(2000, 2020):
        user = state.upsert_user(uid)
        for n in range(300):
            state.user_sends(bot, user, f"message {n}")
    persister = Persister(state, state.path)
    state.changes = Changes()
    conv = state.conversations[("private", bot.id, 2000)]
    state.add_message(conv, sender_kind="bot", sender_id=bot.id, text="one more", entities=[])
    rows = sum(len(r) for _, r in persister._batch(state.changes))
    assert rows <= 4  # the message, its chat's header and the trim of evicted messages


def test_a_kill_during_writes_loses_at_most_the_last_moment_and_never_corrupts(tmp_path):
    path = tmp_path / "emu.sqlite3"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "otomat.tgemu", "--port", str(port), "--state", str(path)]
    cmd += ["--rate-limits", "off"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def post(path_: str, body: dict) -> dict:
        req = urllib.request.Request(
            url + path_, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    try:
        for _ in range(100):
            try:
                token = post("/control/bots", {"username": "greeter_bot"})["token"]
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("emulator did not start")
        post("/control/bots/greeter_bot/messages", {"user_id": ALICE, "text": "/start"})
        acknowledged: list[int] = []
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                try:
                    result = post(f"/bot{token}/sendMessage", {"chat_id": ALICE, "text": "x"})
                except OSError:
                    return
                acknowledged.append(result["result"]["message_id"])

        thread = threading.Thread(target=hammer)
        thread.start()
        for _ in range(600):  # until some writes have reached the store, mid-stream
            stored = _store_rows(path, "SELECT count(*) FROM messages")[0][0]
            if len(acknowledged) > 50 and stored > 1:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        thread.join(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _store_rows(path, "PRAGMA integrity_check") == [("ok",)]
    state = open_state(path)
    conv = state.conversations[("private", next(iter(state.bots)), ALICE)]
    ids = list(conv.messages)
    # A prefix of what was sent: nothing out of order, no hole, nothing half-written.
    assert ids == list(range(1, len(ids) + 1))
    assert conv.next_message_id == len(ids) + 1
    assert 1 < len(ids) <= len(acknowledged) + 1
    # A restart after the kill serves the bot and goes on from the stored history.
    with EmulatorServer(state_path=path) as emu:
        status, body = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="after the crash")
        assert status == 200 and body["result"]["message_id"] == len(ids) + 1


def test_an_old_json_state_file_is_migrated_once(tmp_path):
    old = EmulatorState()
    bot = old.create_bot("greeter_bot", "Greeter")
    old.user_sends(bot, old.upsert_user(ALICE, first_name="Alice"), "/start")
    json_path = tmp_path / "tgemu.json"
    json_path.write_text(json.dumps(old.to_json()))

    state = open_state(json_path)
    assert state.path == tmp_path / "tgemu.sqlite3" == store_path_for(json_path)
    assert state.bots[bot.id].token == bot.token
    assert not json_path.exists()
    assert (tmp_path / "tgemu.json.migrated").exists()  # kept, renamed: never migrated twice
    assert [p.name for p in tmp_path.iterdir() if "migrating" in p.name] == []
    with EmulatorServer(state_path=json_path) as emu:  # the same --state keeps working
        assert emu.messages("greeter_bot", ALICE)[0]["text"] == "/start"


def test_a_corrupt_state_file_is_refused_not_overwritten(tmp_path):
    path = tmp_path / "emu.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"emu\.json"):
        open_state(path)
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="version"):
        load_state(path, EmulatorState())
    path.write_text(json.dumps({"version": 1, "bots": [{"id": 1}]}))
    with pytest.raises(ValueError, match="malformed"):
        open_state(path)
    assert path.read_text() == json.dumps({"version": 1, "bots": [{"id": 1}]})
    assert not (tmp_path / "emu.sqlite3").exists()

    garbage = tmp_path / "emu.sqlite3"
    garbage.write_bytes(b"garbage, not a database")
    with pytest.raises(ValueError, match=r"emu\.sqlite3.*not an emulator state store"):
        open_state(garbage)
    assert garbage.read_bytes() == b"garbage, not a database"

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="not an emulator state store"):
        open_state(other)
    assert _store_rows(other, "SELECT name FROM sqlite_master") == [("invoices",)]


def test_a_missing_or_empty_file_starts_empty(tmp_path):
    assert open_state(tmp_path / "absent.json").bots == {}
    assert open_state(tmp_path / "absent.sqlite3").bots == {}
    (tmp_path / "empty.json").write_text("")
    assert open_state(tmp_path / "empty.json").bots == {}


def test_the_store_is_private(tmp_path):
    path = tmp_path / "sub" / "state.sqlite3"
    with EmulatorServer(state_path=path) as emu:
        emu.create_bot("greeter_bot")
    assert os.stat(path).st_mode & 0o077 == 0  # tokens inside: not world-readable
