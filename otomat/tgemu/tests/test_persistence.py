"""The state file: a restart keeps tokens, chats and pending updates; bad files are refused."""

from __future__ import annotations

import json
import os
import time

import pytest

from otomat.tgemu.persistence import load_state, open_state, write_atomically
from otomat.tgemu.state import EmulatorState
from otomat.tgemu.testing import EmulatorServer

from .conftest import ALICE


def test_a_restart_keeps_bots_chats_and_pending_updates(tmp_path):
    path = tmp_path / "emu.json"
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


def test_changes_are_written_without_a_shutdown(tmp_path):
    path = tmp_path / "emu.json"
    with EmulatorServer(state_path=path) as emu:
        emu.create_bot("greeter_bot")
        for _ in range(40):
            if path.exists() and "greeter_bot" in path.read_text():
                break
            time.sleep(0.05)
        else:
            pytest.fail("state file was not written within 2 s of the change")


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


def test_a_missing_or_empty_file_starts_empty(tmp_path):
    assert open_state(tmp_path / "absent.json").bots == {}
    (tmp_path / "empty.json").write_text("")
    assert open_state(tmp_path / "empty.json").bots == {}


def test_writes_are_atomic_and_private(tmp_path):
    path = tmp_path / "sub" / "state.json"
    write_atomically(path, '{"a": 1}')
    write_atomically(path, '{"a": 2}')
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temp files left
    assert os.stat(path).st_mode & 0o077 == 0  # tokens inside: not world-readable
