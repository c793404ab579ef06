"""429 flood limits, the emulator clock and the 48-hour delete limit."""

from __future__ import annotations

import subprocess
import sys

from otomat.tgemu.ratelimit import RateLimits
from otomat.tgemu.testing import EmulatorServer

from .conftest import ALICE, BOB


def test_private_chat_floods_get_429_with_retry_after(emu, started):
    token = started["token"]
    statuses = [emu.bot_api(token, "sendMessage", chat_id=ALICE, text=f"n{n}")[0] for n in range(7)]
    assert statuses[:5] == [200] * 5  # the burst
    status, body = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="again")
    assert status == 429
    assert body == {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {body['parameters']['retry_after']}",
        "parameters": {"retry_after": body["parameters"]["retry_after"]},
    }
    assert 1 <= body["parameters"]["retry_after"] <= 2
    # A refused send created nothing.
    assert len([m for m in emu.messages("greeter_bot", ALICE) if m["from_bot"]]) == 5
    # Another chat is not affected.
    emu.send("greeter_bot", user_id=BOB, text="/start")
    assert emu.bot_api(token, "sendMessage", chat_id=BOB, text="hi")[0] == 200


def test_group_and_bot_wide_limits_and_switching_off():
    limits = RateLimits(bot_per_second=3, group_per_minute=2, private_chat_burst=10)
    with EmulatorServer(rate_limits=limits) as emu:
        token = emu.create_bot("greeter_bot")["token"]
        group = emu.control(
            "POST",
            "/groups",
            {"title": "G", "member_user_ids": [ALICE], "bot_usernames": ["greeter_bot"]},
        )
        codes = [
            emu.bot_api(token, "sendMessage", chat_id=group["id"], text="x")[0] for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        _status, body = emu.bot_api(token, "sendMessage", chat_id=group["id"], text="x")
        assert body["parameters"]["retry_after"] >= 25  # 2 per minute: ~30 s until the next
        for user in (ALICE, BOB):
            emu.send("greeter_bot", user_id=user, text="/start")
        # 2 group messages + this one use up the bot's 3 per second.
        codes = [emu.bot_api(token, "sendMessage", chat_id=u, text="y")[0] for u in (ALICE, BOB)]
        assert 429 in codes
        assert emu.control("PUT", "/rate_limits", {"enabled": False})["enabled"] is False
        codes = {emu.bot_api(token, "sendMessage", chat_id=ALICE, text="z")[0] for _ in range(20)}
        assert codes == {200}
        current = emu.control("GET", "/rate_limits")
        assert current["group_per_minute"] == 2 and current["enabled"] is False


def test_bad_rate_limit_settings_change_nothing(emu):
    before = emu.control("GET", "/rate_limits")
    for body in (
        {"enabled": "yes"},
        {"bot_per_second": 0},
        {"bot_per_second": "fast"},
        {"private_chat_burst": 1.5},
        {"speed": 3},
        [1],
    ):
        status, _answer = emu.request("PUT", "/control/rate_limits", body)
        assert status == 400, body
    assert emu.control("GET", "/rate_limits") == before == RateLimits().to_json()


def test_the_clock_moves_dates_and_old_messages_cannot_be_deleted(emu, started):
    token = started["token"]
    clock = emu.control("GET", "/clock")
    assert clock["offset_seconds"] == 0
    old = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="old")[1]["result"]
    young = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="young")[1]["result"]
    moved = emu.control("POST", "/clock", {"advance_seconds": 47 * 3600})
    assert moved["now"] >= clock["now"] + 47 * 3600
    assert (
        emu.bot_api(token, "deleteMessage", chat_id=ALICE, message_id=young["message_id"])[0] == 200
    )
    status, body = emu.bot_api(
        token, "deleteMessage", chat_id=ALICE, message_id=young["message_id"]
    )
    assert (status, body["description"]) == (400, "Bad Request: message to delete not found")
    emu.control("POST", "/clock", {"advance_seconds": 3600 + 5})
    status, body = emu.bot_api(token, "deleteMessage", chat_id=ALICE, message_id=old["message_id"])
    assert (status, body["description"]) == (
        400,
        "Bad Request: message can't be deleted for everyone",
    )
    assert [m["text"] for m in emu.messages("greeter_bot", ALICE) if not m["deleted"]][-1] == "old"
    new = emu.bot_api(token, "sendMessage", chat_id=ALICE, text="new")[1]["result"]
    assert new["date"] >= old["date"] + 48 * 3600
    for body in (
        {"advance_seconds": -5},
        {"advance_seconds": "soon"},
        {},
        {"advance_seconds": 1e12},
    ):
        assert emu.request("POST", "/control/clock", body)[0] == 400, body
    assert emu.control("GET", "/clock")["offset_seconds"] == 48 * 3600 + 5
    emu.control("POST", "/reset")
    assert emu.control("GET", "/clock")["offset_seconds"] == 0


def test_cli_rejects_bad_rate_flags():
    result = subprocess.run(
        [sys.executable, "-m", "otomat.tgemu", "--bot-rate", "0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "--bot-rate" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "otomat.tgemu", "--rate-limits", "maybe"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "--rate-limits" in result.stderr


def test_cli_flags_set_the_rate_limits(tmp_path):
    import json
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "otomat.tgemu", "--port", str(port), "--rate-limits", "off",
         "--group-rate", "7", "--private-chat-burst", "3", "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/control/rate_limits", timeout=2
                ) as resp:
                    limits = json.loads(resp.read())
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "emulator did not start"
                time.sleep(0.2)
        assert limits["enabled"] is False
        assert (limits["group_per_minute"], limits["private_chat_burst"]) == (7, 3)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
